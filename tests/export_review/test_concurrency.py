"""Reviewers voting at the same moment give exactly one decision, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from enclave.errors import EnclaveError
from export_review.workflow import ExportState
from tests.export_review.factories import ExportEnv, cast, make_project, make_request, submit


def race(env: ExportEnv, request_id: str, reviewers: list[str]) -> list[object]:
    barrier = threading.Barrier(len(reviewers))
    results: list[object] = []
    lock = threading.Lock()

    def run(reviewer: str) -> None:
        barrier.wait()
        try:
            outcome: object = cast(env, request_id, reviewer)
        except EnclaveError as error:
            outcome = error
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(r,)) for r in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_simultaneous_last_votes_give_one_decision(any_env: ExportEnv) -> None:
    make_project(any_env, committee=9)
    request_id = submit(any_env)
    for i in range(1, 7):
        cast(any_env, request_id, f"rev{i}")
    results = race(any_env, request_id, ["rev7", "rev8", "rev9"])
    decided = [r for r in results if isinstance(r, dict) and r["decision"]]
    refused = [r for r in results if isinstance(r, EnclaveError)]
    assert len(decided) == 1
    assert [e.code for e in refused] == ["export_not_in_review"] * 2  # type: ignore[attr-defined]
    assert any_env.state(request_id) == "approved"
    assert any_env.audit_actions(request_id).count("export.decide") == 1


def test_simultaneous_releases_release_once(any_env: ExportEnv) -> None:
    make_project(any_env)
    request_id = make_request(any_env, ExportState.APPROVED)
    barrier = threading.Barrier(3)
    errors: list[str] = []

    def run(user: str) -> None:
        from tests.export_review.factories import release

        barrier.wait()
        try:
            release(any_env, request_id, user)
        except EnclaveError as error:
            errors.append(error.code)

    threads = [threading.Thread(target=run, args=(u,)) for u in ("rev1", "rev2", "rev3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(errors) == ["export_state_invalid", "export_state_invalid"]
    assert any_env.audit_actions(request_id).count("export.release") == 1
