"""Submission: who may submit, the vault copy, blocking checks, the cross-border cap, revisions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DatabaseError

from enclave.db.models import ExportFile, ExportRequest, Project
from enclave.errors import BadInput, Forbidden, Refused
from enclave.filestore import FileStore
from export_review.submission import file_store
from export_review.workflow import ExportState
from tests.export_review.factories import ExportEnv, cast, make_project, make_request, submit


def stored_files(env: ExportEnv) -> list[Path]:
    root = file_store(env.paths).root
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_submission_copies_checks_and_queues(env: ExportEnv, project: str) -> None:
    request_id = submit(env, {"t.csv": "dx,n\nI10,3\nE11,40\n"})
    request = env.request(request_id)
    assert request.state == ExportState.IN_REVIEW
    [stored] = stored_files(env)
    assert len(stored.name) == 64
    assert not stat.S_IMODE(stored.stat().st_mode) & 0o222  # read-only in the vault
    (env.work / "t.csv").write_text("dx,n\nI10,300\n")  # the workspace copy changes afterwards
    assert file_store(env.paths).verify(stored.name)
    with env.session() as s:
        [row] = s.scalars(select(ExportFile)).all()
        assert row.failed and row.sha256 == stored.name
    assert env.audit_actions(request_id) == ["export.submit", "export.check", "export.check"]


@pytest.mark.parametrize(
    ("user", "code"), [("rev1", "export_not_analyst"), ("mallory", "export_not_analyst")]
)
def test_only_analysts_and_the_pi_submit(env: ExportEnv, project: str, user: str, code: str) -> None:
    with pytest.raises(Forbidden) as info:
        submit(env, requester=user)
    assert info.value.code == code
    assert submit(env, requester="alice")  # the PI


@pytest.mark.parametrize("state", ["suspended", "expired", "approved"])
def test_exports_are_frozen_unless_the_project_is_active(env: ExportEnv, state: str) -> None:
    make_project(env, state=state)
    with pytest.raises(Forbidden) as info:
        submit(env)
    assert info.value.code == "export_frozen"


def test_a_blocked_file_refuses_the_whole_request_and_writes_nothing(env: ExportEnv, project: str) -> None:
    with pytest.raises(Refused) as info:
        submit(env, {"t.csv": "dx,n\nI10,25\n", "tool.exe": b"MZ"})
    assert info.value.code == "export_checks_blocked"
    assert [r.code for r in info.value.reasons] == ["file_type_not_allowed"]
    with env.session() as s:
        assert s.scalar(select(func.count()).select_from(ExportRequest)) == 0
    assert stored_files(env) == []


def test_links_and_oversized_files_are_refused(env: ExportEnv, project: str) -> None:
    secret = env.paths.vault / "secret.csv"
    secret.parent.mkdir(parents=True)
    secret.write_text("dx,n\nI10,25\n")
    os.symlink(secret, env.work / "link.csv")
    with env.session() as s, pytest.raises(BadInput) as info:
        from export_review import submission

        submission.submit(
            s,
            env.paths,
            project_id=project,
            requester="bob",
            justification="x",
            files=[env.work / "link.csv"],
            settings=env.settings,
            key_space=lambda _: None,
        )
    assert info.value.code == "export_file_unreadable"
    env.settings = env.settings.model_copy(
        update={"checks": env.settings.checks.model_copy(update={"max_file_bytes": 8})}
    )
    with pytest.raises(Refused) as too_big:
        submit(env)
    assert too_big.value.code == "export_file_too_large"
    assert stored_files(env) == []


@pytest.mark.parametrize("bad", ["", "   "])
def test_a_justification_is_required(env: ExportEnv, project: str, bad: str) -> None:
    with pytest.raises(BadInput):
        submit(env, justification=bad)


def test_the_same_bytes_are_stored_once(env: ExportEnv, project: str) -> None:
    submit(env)
    submit(env)
    assert len(stored_files(env)) == 1


def test_cross_border_cap_200_then_60_is_refused(env: ExportEnv) -> None:
    make_project(env, cross_border=True)
    submit(env, abroad=True, records=200)
    with pytest.raises(Refused) as info:
        submit(env, abroad=True, records=60)
    assert info.value.code == "cross_border_cap"
    assert info.value.details == {"used": 200, "requested": 60, "cap": 250}
    submit(env, records=1000)  # domestic requests do not count


def test_cross_border_cap_200_then_50_is_allowed(env: ExportEnv) -> None:
    make_project(env, cross_border=True)
    submit(env, abroad=True, records=200)
    assert submit(env, abroad=True, records=50)
    with pytest.raises(Refused):
        submit(env, abroad=True, records=1)


def test_rejected_and_withdrawn_requests_give_their_records_back(env: ExportEnv) -> None:
    make_project(env, cross_border=True)
    make_request(env, ExportState.REJECTED, abroad=True, records=200)
    make_request(env, ExportState.WITHDRAWN, abroad=True, records=200)
    assert make_request(env, ExportState.RELEASED, abroad=True, records=250)
    with pytest.raises(Refused):
        submit(env, abroad=True, records=1)


def test_server_counts_rows_when_the_declared_number_is_lower(env: ExportEnv) -> None:
    make_project(env, cross_border=True)
    rows = "dx,n\n" + "".join(f"d{i},{10 + i}\n" for i in range(30))
    request_id = submit(env, {"t.csv": rows}, abroad=True, records=5)
    assert env.request(request_id).records == 30


def test_abroad_needs_a_project_approved_for_it(env: ExportEnv, project: str) -> None:
    with pytest.raises(Refused) as info:
        submit(env, abroad=True, records=1)
    assert info.value.code == "cross_border_not_approved"
    with pytest.raises(BadInput):
        make_project(env, project_id="other-proj", cross_border=True)
        submit(env, project_id="other-proj", abroad=True)


def test_changes_requested_leads_to_a_new_version(env: ExportEnv, project: str) -> None:
    first = make_request(env, ExportState.CHANGES_REQUESTED)
    before = env.request(first)
    second = submit(env, {"t2.csv": "dx,n\nI10,25\n"}, revises=first)
    after = env.request(first)
    assert (after.state, after.digest, after.updated_at) == (before.state, before.digest, before.updated_at)
    revision = env.request(second)
    assert (revision.version, revision.previous_id, revision.state) == (2, first, "in_review")
    with pytest.raises(Forbidden) as twice:
        submit(env, revises=first)
    assert twice.value.code == "export_already_revised"
    with pytest.raises(Forbidden):
        submit(env, revises=second)  # in review: nothing to revise
    with pytest.raises(Forbidden):
        submit(env, requester="alice", revises=first)  # someone else's request


def test_submitted_files_and_votes_never_change(env: ExportEnv, project: str) -> None:
    request_id = make_request(env, ExportState.IN_REVIEW)
    cast(env, request_id, "rev1")
    for statement in ("UPDATE export_files SET sha256 = 'x'", "DELETE FROM export_votes"):
        with pytest.raises(DatabaseError), env.session() as s:
            s.execute(text(statement))


def test_withdraw_only_by_the_requester(env: ExportEnv, project: str) -> None:
    request_id = make_request(env, ExportState.IN_REVIEW)
    from export_review import submission

    with env.session() as s, pytest.raises(Forbidden):
        submission.withdraw(s, request_id, user="alice")
    with env.session() as s:
        submission.withdraw(s, request_id, user="bob", reason="wrong table")
    assert env.state(request_id) == "withdrawn"
    with pytest.raises(Forbidden) as info:
        cast(env, request_id, "rev1")
    assert info.value.code == "export_not_in_review"
    assert env.audit_actions(request_id)[-1] == "export.withdraw"


def test_a_locked_project_freezes_exports(env: ExportEnv, project: str) -> None:
    request_id = make_request(env, ExportState.IN_REVIEW)
    with env.session() as s:
        s.execute(update(Project).values(locked=True))
    with pytest.raises(Forbidden) as info:
        cast(env, request_id, "rev1")
    assert info.value.code == "export_frozen"


def test_store_refuses_non_regular_files(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    with pytest.raises(BadInput) as info:
        store.stage(tmp_path, "dir", 100)
    assert info.value.code == "export_file_not_regular"
