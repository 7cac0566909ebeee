"""Exports from batch runs and the reproducibility check (issue 12), on SQLite and PostgreSQL.

Runs are driven without Docker: ``Run``/``RunOutput``/``RunQuery`` rows and files in the run store
are written here, and a rerun is finished by hand before ``reproduction.record`` (the worker's
finish hook) is called, as the worker would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from enclave import audit
from enclave.cli import export as export_cli
from enclave.config import Paths
from enclave.db.models import ExportRequest, Run, RunOutput
from enclave.errors import BadInput, Forbidden, NotFound, Refused
from enclave.runs import service as runs
from enclave.runs.states import RunActor, RunState, move
from export_review import release as releasing
from export_review import reproduction, submission, views
from export_review.digest import request_digest
from export_review.submission import file_store
from tests.export_review.factories import (
    PROJECT,
    ExportEnv,
    cast,
    make_project,
)
from tests.export_review.factories import (
    release as release_request,
)
from tests.export_review.run_factories import SUMMARY, TABLE, finish_rerun, make_run
from tests.runs.factories import TABLE_NOTEBOOK, fake_prepared

OTHER = "other-2026"
NOTE = b"all groups have at least 15 people\n"


@pytest.fixture
def env(sessions: sessionmaker[Session], paths: Paths, tmp_path: Path) -> ExportEnv:
    (tmp_path / "work").mkdir()
    environment = ExportEnv(sessions, paths, tmp_path / "work")
    make_project(environment, extra_members=[("mallory", "analyst")])
    make_project(environment, project_id=OTHER)
    fake_prepared(paths, PROJECT)
    fake_prepared(paths, OTHER)
    return environment


def submit(env: ExportEnv, run_id: str | None, files: dict[str, bytes] | None = None, **kwargs: Any) -> str:
    paths = [env.write(name, data) for name, data in (files or {}).items()]
    with env.session() as s:
        return submission.submit(
            s,
            env.paths,
            project_id=kwargs.pop("project_id", PROJECT),
            requester=kwargs.pop("requester", "bob"),
            justification="Table 1 of the paper",
            files=paths,
            settings=env.settings,
            key_space=lambda _project: env.key_space,
            run_id=run_id,
            **kwargs,
        ).id


def reruns(env: ExportEnv, request_id: str) -> list[Run]:
    with env.session() as s:
        rows = list(
            s.scalars(select(Run).where(Run.export_request_id == request_id).order_by(Run.created_at))
        )
        for row in rows:
            s.expunge(row)
        return rows


def show(env: ExportEnv, request_id: str, viewer: str | None = None) -> dict[str, Any]:
    with env.session() as s:
        return views.describe(s, env.paths, request_id, settings=env.settings, viewer=viewer)


def sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# ---- submission from a run ---------------------------------------------------------------------


def test_an_export_from_a_run_needs_no_upload(env: ExportEnv) -> None:
    run_id = make_run(env)
    request_id = submit(env, run_id)
    shown = show(env, request_id, "bob")
    assert shown["state"] == "in_review"
    assert {f["name"]: f["sha256"] for f in shown["files"]} == {
        "summary.csv": sha(SUMMARY),
        "table.csv": sha(TABLE),
    }
    for f in shown["files"]:  # copied into the export store by hash
        assert file_store(env.paths).path_for(f["sha256"]).read_bytes() in (TABLE, SUMMARY)
    origin = shown["provenance"]
    assert origin["run"] == run_id and origin["user"] == "bob"
    assert origin["notebook"] == {"name": "table.ipynb", "sha256": sha(TABLE_NOTEBOOK)}
    assert origin["parameters"] == {"scale": 2}
    assert origin["data_version"] == 1 and origin["image_digest"] == "sha256:" + "ab" * 32
    assert [q["sql"] for q in origin["queries"]] == ["SELECT dx, count(*) FROM patients GROUP BY dx"]
    assert all(f["from_run"] and not f["edited_after_run"] for f in origin["files"])
    # A rerun of the same run is queued for the check, and the request says so.
    (rerun,) = reruns(env, request_id)
    assert rerun.kind == "rerun" and rerun.rerun_of == run_id and rerun.state == "queued"
    assert rerun.user == "bob" and rerun.data_version == 1 and rerun.notebook_sha256 == sha(TABLE_NOTEBOOK)
    assert shown["reproduction"]["state"] == "pending" and shown["reproduction"]["rerun"] == rerun.id
    with env.session() as s:
        actions = [(e.action, e.object) for e in audit.tail(s, limit=50)]
    assert ("run.rerun", f"run:{rerun.id}") in actions
    assert ("export.submit", f"export:{request_id}") in actions
    # The reviewers sign a digest that covers the provenance.
    request = env.request(request_id)
    without = request_digest(
        request_id=request.id,
        version=request.version,
        previous_id=None,
        project=PROJECT,
        requester="bob",
        justification=request.justification,
        abroad=False,
        records=request.records,
        files=[(f["name"], f["sha256"], f["size"]) for f in shown["files"]],
    )
    assert request.digest != without


def test_named_outputs_only(env: ExportEnv) -> None:
    run_id = make_run(env, outputs={"table.csv": TABLE, "summary.csv": SUMMARY, "note.txt": NOTE})
    request_id = submit(env, run_id, outputs=["table.csv", "note.txt"])
    assert sorted(f["name"] for f in show(env, request_id)["files"]) == ["note.txt", "table.csv"]
    with pytest.raises(NotFound) as unknown:
        submit(env, run_id, outputs=["nope.csv"])
    assert unknown.value.code == "run_output_not_found"
    with pytest.raises(BadInput) as twice:
        submit(env, run_id, outputs=["table.csv", "table.csv"])
    assert twice.value.code == "export_output_repeated"
    with pytest.raises(BadInput) as no_run:
        submit(env, None, {"table.csv": TABLE}, outputs=["table.csv"])
    assert no_run.value.code == "export_outputs_without_run"


def test_an_output_in_a_folder_is_not_a_portable_name(env: ExportEnv) -> None:
    run_id = make_run(env, outputs={"figs/table.csv": TABLE})
    with pytest.raises(BadInput) as error:
        submit(env, run_id)
    assert error.value.code == "export_file_name_invalid"
    assert error.value.details["files"] == ["figs/table.csv"]


def test_a_file_given_with_the_run_is_compared_by_name(env: ExportEnv) -> None:
    run_id = make_run(env)
    edited = TABLE.replace(b"a,25", b"a,26")
    request_id = submit(env, run_id, {"table.csv": edited, "extra.txt": NOTE})
    shown = show(env, request_id)
    origins = {f["name"]: f for f in shown["provenance"]["files"]}
    assert origins["table.csv"]["edited_after_run"] and origins["table.csv"]["run_sha256"] == sha(TABLE)
    assert origins["table.csv"]["sha256"] == sha(edited)
    assert not origins["extra.txt"]["from_run"] and not origins["extra.txt"]["edited_after_run"]
    assert origins["summary.csv"]["from_run"] and not origins["summary.csv"]["edited_after_run"]
    stored = {f["name"]: f["sha256"] for f in shown["files"]}
    assert stored["table.csv"] == sha(edited)  # the request holds what the analyst gave
    # The rerun writes exactly what the run wrote: the edited file is still not reproduced.
    (rerun,) = reruns(env, request_id)
    result = finish_rerun(env, rerun.id, {"table.csv": TABLE, "summary.csv": SUMMARY})
    assert result is not None and result["verdict"] == "not_reproduced"
    statuses = {f["name"]: f["status"] for f in result["files"]}
    assert statuses == {
        "table.csv": "edited_after_run",
        "extra.txt": "not_in_run",
        "summary.csv": "identical",
    }
    edited_file = next(f for f in result["files"] if f["name"] == "table.csv")
    assert edited_file["table"]["tables"][0]["examples"] == [[1, "n", "26", "25"]]


def test_a_tampered_run_output_is_refused(env: ExportEnv) -> None:
    run_id = make_run(env)
    stored = runs.run_store(env.paths).path_for(sha(TABLE))
    os.chmod(stored, 0o640)
    stored.write_bytes(TABLE.replace(b"c,15", b"c,16"))
    with pytest.raises(Refused) as error:
        submit(env, run_id)
    assert error.value.code == "run_output_tampered"
    assert error.value.details == {"run": run_id, "file": "table.csv"}
    with env.session() as s:
        assert s.scalars(select(ExportRequest)).all() == []
        assert s.scalars(select(Run).where(Run.kind == "rerun")).all() == []
    assert not list((file_store(env.paths).root / ".staging").glob("*"))


@pytest.mark.parametrize(
    ("case", "code", "error"),
    [
        ("other_users_run", "run_not_found", NotFound),
        ("pi_takes_analysts_run", "export_run_not_own", Forbidden),
        ("failed_run", "export_run_not_succeeded", Forbidden),
        ("running_run", "export_run_not_succeeded", Forbidden),
        ("other_project", "export_run_other_project", Forbidden),
        ("a_rerun", "export_run_is_rerun", Forbidden),
        ("unknown_run", "run_not_found", NotFound),
        ("not_an_analyst", "export_not_analyst", Forbidden),
    ],
)
def test_refusals(env: ExportEnv, case: str, code: str, error: type[Exception]) -> None:
    requester = {"pi_takes_analysts_run": "alice", "not_an_analyst": "rev1"}.get(case, "bob")
    project = PROJECT
    if case == "other_users_run":
        run_id = make_run(env, user="mallory")
    elif case in ("pi_takes_analysts_run", "not_an_analyst"):
        run_id = make_run(env, user="bob")
    elif case == "failed_run":
        run_id = make_run(env, state=RunState.FAILED)
    elif case == "running_run":
        run_id = make_run(env, state=RunState.RUNNING)
    elif case == "other_project":
        run_id = make_run(env, project=OTHER)
    elif case == "a_rerun":
        first = submit(env, make_run(env))
        run_id = reruns(env, first)[0].id
    else:
        run_id = "run-000000000000"
    with pytest.raises(error) as raised:
        submit(env, run_id, requester=requester, project_id=project)
    assert raised.value.code == code  # type: ignore[attr-defined]
    assert raised.value.message_zh  # type: ignore[attr-defined]


# ---- the reproducibility check -----------------------------------------------------------------


def test_identical_rerun_reproduces(env: ExportEnv) -> None:
    request_id = submit(env, make_run(env))
    (rerun,) = reruns(env, request_id)
    result = finish_rerun(env, rerun.id, {"table.csv": TABLE, "summary.csv": SUMMARY, "log.txt": b"x"})
    assert result is not None and result["verdict"] == "reproduced"
    assert result["rerun_only"] == ["log.txt"] and result["export_request"] == request_id
    shown = show(env, request_id, "rev1")["reproduction"]
    assert shown["state"] == "reproduced" and shown["result"]["verdict"] == "reproduced"
    with env.session() as s:
        stored = json.loads(runs.get_run(s, rerun.id).reproduction_json or "{}")
        assert stored["verdict"] == "reproduced"
        events = [e for e in audit.tail(s, limit=50) if e.action == "run.reproduce"]
        assert events and events[-1].object == f"run:{rerun.id}" and events[-1].outcome == "reproduced"
        assert json.loads(events[-1].details_json)["export_request"] == request_id
        assert audit.verify(s).ok


def test_different_table_is_not_reproduced_with_the_cell_diff(env: ExportEnv) -> None:
    request_id = submit(env, make_run(env))
    (rerun,) = reruns(env, request_id)
    noisy = SUMMARY.replace(b"2.25", b"2.2500000001")
    result = finish_rerun(env, rerun.id, {"table.csv": TABLE.replace(b"b,40", b"b,41"), "summary.csv": noisy})
    assert result is not None and result["verdict"] == "not_reproduced"
    files = {f["name"]: f for f in result["files"]}
    table = files["table.csv"]
    assert table["status"] == "different"
    assert table["table"]["tables"][0]["examples"] == [[2, "n", "40", "41"]]
    assert table["nondeterminism"].startswith("numbers differ")
    assert files["summary.csv"]["numbers"]["max_abs_diff"] == pytest.approx(1e-10)
    shown = show(env, request_id, "rev2")["reproduction"]
    assert shown["state"] == "not_reproduced"
    assert "table.csv" in shown["result"]["summary"] and shown["result"]["summary_zh"]


def test_a_missing_output_and_a_changed_rerun_output(env: ExportEnv) -> None:
    request_id = submit(env, make_run(env))
    (rerun,) = reruns(env, request_id)
    with env.session() as s:
        run = runs.get_run(s, rerun.id)
        move(s, run, RunState.RUNNING, RunActor.WORKER, by="worker")
        changed = TABLE + b"d,99\n"
        s.add(
            RunOutput(
                run_id=run.id, name="table.csv", sha256=runs.store_bytes(env.paths, changed, "t"), size=1
            )
        )
        move(s, run, RunState.SUCCEEDED, RunActor.WORKER, by="worker")
    # The rerun's stored output is changed after it was recorded.
    stored = runs.run_store(env.paths).path_for(sha(changed))
    os.chmod(stored, 0o640)
    stored.write_bytes(TABLE)
    with env.session() as s:
        result = reproduction.record(s, env.paths, runs.get_run(s, rerun.id))
    assert result is not None
    assert {f["name"]: f["status"] for f in result["files"]} == {
        "summary.csv": "missing",
        "table.csv": "rerun_output_changed",
    }


def test_a_tampered_export_copy_is_named(env: ExportEnv) -> None:
    request_id = submit(env, make_run(env))
    copy = file_store(env.paths).path_for(sha(TABLE))
    os.chmod(copy, 0o640)
    copy.write_bytes(TABLE.replace(b"a,25", b"a,5"))
    (rerun,) = reruns(env, request_id)
    result = finish_rerun(env, rerun.id, {"table.csv": TABLE, "summary.csv": SUMMARY})
    assert result is not None and result["verdict"] == "not_reproduced"
    table = next(f for f in result["files"] if f["name"] == "table.csv")
    assert table["stored_copy_changed"] and "stored copy" in table["reason"]


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (RunState.FAILED, "rerun_failed"),
        (RunState.TIMED_OUT, "rerun_timed_out"),
        (RunState.CANCELLED, "rerun_cancelled"),
    ],
)
def test_a_rerun_that_did_not_succeed(env: ExportEnv, state: RunState, code: str) -> None:
    request_id = submit(env, make_run(env))
    (rerun,) = reruns(env, request_id)
    error = {"code": "kernel_died", "message": "the kernel died", "message_zh": "内核崩溃"}
    result = finish_rerun(env, rerun.id, {}, state=state, error=error)
    assert result is not None and result["verdict"] == "not_reproduced"
    assert result["reason"]["code"] == code and result["reason"]["state"] == state.value
    assert "the kernel died" in result["reason"]["message"] and "内核崩溃" in result["reason"]["message_zh"]
    assert show(env, request_id)["reproduction"]["state"] == "not_reproduced"


def test_data_version_changed_since_the_run(env: ExportEnv) -> None:
    request_id = submit(env, make_run(env))
    (rerun,) = reruns(env, request_id)
    fake_prepared(env.paths, PROJECT, version=2)
    result = finish_rerun(env, rerun.id, {"table.csv": TABLE, "summary.csv": SUMMARY})
    assert result is not None and result["verdict"] == "not_reproduced"
    assert result["reason"]["code"] == "data_version_changed"
    assert result["reason"]["run_version"] == 1 and result["reason"]["current_version"] == 2
    assert {f["status"] for f in result["files"]} == {"identical"}  # shown, but not enough


def test_record_ignores_other_runs(env: ExportEnv) -> None:
    run_id = make_run(env)
    with env.session() as s:
        assert reproduction.record(s, env.paths, runs.get_run(s, run_id)) is None
        plain = runs.rerun(s, env.paths, run_id=run_id, actor="bob")
        assert reproduction.record(s, env.paths, plain) is None


def test_a_rerun_pointing_at_another_request_is_not_compared(env: ExportEnv) -> None:
    request_id = submit(env, make_run(env))
    other_run = make_run(env)
    with env.session() as s:
        forged = runs.rerun(s, env.paths, run_id=other_run, actor="bob", export_request_id=request_id)
        forged_id = forged.id
    result = finish_rerun(env, forged_id, {"table.csv": TABLE, "summary.csv": SUMMARY})
    assert result is not None and result["reason"]["code"] == "export_request_mismatch"


# ---- asking for another rerun ------------------------------------------------------------------


def ask(env: ExportEnv, request_id: str, user: str) -> dict[str, Any]:
    with env.session() as s:
        return reproduction.request_rerun(s, env.paths, request_id, user=user, stewards=env.settings.stewards)


def test_a_reviewer_asks_for_another_rerun(env: ExportEnv) -> None:
    request_id = submit(env, make_run(env))
    (first,) = reruns(env, request_id)
    with pytest.raises(Forbidden) as pending:
        ask(env, request_id, "rev1")
    assert pending.value.code == "export_rerun_pending"
    finish_rerun(env, first.id, {"table.csv": TABLE})  # summary.csv missing: not reproduced
    assert show(env, request_id)["reproduction"]["state"] == "not_reproduced"
    asked = ask(env, request_id, "rev1")
    assert asked["state"] == "pending" and asked["rerun"] != first.id
    shown = show(env, request_id, "rev1")["reproduction"]
    assert shown["state"] == "pending" and shown["rerun"] == asked["rerun"]
    assert [h["state"] for h in shown["history"]] == ["pending", "not_reproduced"]
    finish_rerun(env, asked["rerun"], {"table.csv": TABLE, "summary.csv": SUMMARY})
    assert show(env, request_id)["reproduction"]["state"] == "reproduced"
    with env.session() as s:
        asked_by = [
            e.actor
            for e in audit.tail(s, limit=100)
            if e.action == "run.rerun" and e.object == f"run:{asked['rerun']}"
        ]
    assert asked_by == ["rev1"]
    # The requester may ask too (documented in export_review.reproduction).
    assert ask(env, request_id, "bob")["state"] == "pending"


def test_who_may_ask_for_a_rerun(env: ExportEnv) -> None:
    request_id = submit(env, make_run(env))
    (first,) = reruns(env, request_id)
    finish_rerun(env, first.id, {"table.csv": TABLE, "summary.csv": SUMMARY})
    for user, code in (("mallory", "export_rerun_forbidden"), ("alice", "export_rerun_forbidden")):
        with pytest.raises(Forbidden) as error:
            ask(env, request_id, user)
        assert error.value.code == code
    with pytest.raises(Forbidden) as stranger:
        ask(env, request_id, "nobody")
    assert stranger.value.code == "export_not_member"
    plain = submission_of_files(env)
    with pytest.raises(BadInput) as not_from_run:
        ask(env, plain, "rev1")
    assert not_from_run.value.code == "export_not_from_run"
    with env.session() as s:
        submission.withdraw(s, request_id, user="bob")
    with pytest.raises(Forbidden) as withdrawn:
        ask(env, request_id, "rev1")
    assert withdrawn.value.code == "export_state_invalid"


def submission_of_files(env: ExportEnv) -> str:
    return submit(env, None, {"plain.csv": TABLE})


def test_a_plain_request_has_no_provenance(env: ExportEnv) -> None:
    shown = show(env, submission_of_files(env))
    assert shown["provenance"] is None and shown["reproduction"] is None


# ---- the release manifest ----------------------------------------------------------------------


def released_manifest(env: ExportEnv, request_id: str, out_dir: Path) -> dict[str, Any]:
    """The manifest bob downloads to ``out_dir`` once the three reviewers approved and it was released."""
    for reviewer in ("rev1", "rev2", "rev3"):
        cast(env, request_id, reviewer, override="read by hand")
    release_request(env, request_id)
    with env.session() as s:
        downloaded = releasing.download(
            s, env.paths, request_id, user="bob", out_dir=out_dir, outbox=env.box()
        )
    return json.loads(Path(downloaded["manifest"]).read_text())


def test_the_manifest_carries_the_provenance_and_the_reproduction(env: ExportEnv, tmp_path: Path) -> None:
    request_id = submit(env, make_run(env))
    (rerun,) = reruns(env, request_id)
    finish_rerun(env, rerun.id, {"table.csv": TABLE, "summary.csv": SUMMARY})
    manifest = released_manifest(env, request_id, tmp_path / "out")
    assert manifest["provenance"] == show(env, request_id)["provenance"]
    assert manifest["provenance"]["run"] == show(env, request_id)["provenance"]["run"]
    assert manifest["reproduction"]["state"] == "reproduced"
    assert manifest["reproduction"]["rerun"] == rerun.id
    assert {f["status"] for f in manifest["reproduction"]["files"]} == {"identical"}
    # No per-cell values of the rerun leave with the release: they were never reviewed.
    assert set(manifest["reproduction"]["files"][0]) == {"name", "status", "reason", "reason_zh"}


def test_a_plain_manifest_has_no_provenance(env: ExportEnv, tmp_path: Path) -> None:
    manifest = released_manifest(env, submission_of_files(env), tmp_path / "o")
    assert "provenance" not in manifest and "reproduction" not in manifest


def test_an_edited_provenance_is_not_released(env: ExportEnv) -> None:
    """The votes sign a digest that covers the provenance: editing it afterwards stops the release."""
    request_id = submit(env, make_run(env))
    for reviewer in ("rev1", "rev2", "rev3"):
        cast(env, request_id, reviewer, override="read by hand")
    with env.session() as s:
        request = s.get(ExportRequest, request_id)
        assert request is not None and request.state == "approved"
        origin = json.loads(request.provenance_json or "{}")
        origin["parameters"] = {"scale": 3}
        request.provenance_json = json.dumps(origin)
    with pytest.raises(Refused) as error:
        release_request(env, request_id)
    assert error.value.code == "export_approval_unverified"
    assert "export_digest_mismatch" in [r.code for r in error.value.reasons]


# ---- the command line --------------------------------------------------------------------------


@pytest.fixture
def cli(env: ExportEnv, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ENCLAVE_HOME", str(env.paths.home))
    monkeypatch.setenv(
        "ENCLAVE_DATABASE_URL", env.sessions.kw["bind"].url.render_as_string(hide_password=False)
    )
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> dict:
        result = runner.invoke(export_cli.app, [*args, "--json"])
        assert result.exit_code == code, result.output
        return json.loads(result.stdout)

    return run


def test_the_command_line(cli, env: ExportEnv) -> None:  # type: ignore[no-untyped-def]
    run_id = make_run(env, outputs={"table.csv": TABLE, "summary.csv": SUMMARY, "note.txt": NOTE})
    base = ["submit", "--project", PROJECT, "--user", "bob", "--justification", "T1", "--run", run_id]
    submitted = cli(*base, "--output", "table.csv", "--output", "summary.csv")
    assert submitted["state"] == "in_review" and submitted["reproduction"] == "pending"
    request_id = submitted["request"]
    shown = cli("show", request_id)
    assert {"id", "project", "requester", "state", "files", "votes", "decision"} <= shown.keys()
    assert sorted(f["name"] for f in shown["files"]) == ["summary.csv", "table.csv"]
    assert all(len(f["sha256"]) == 64 and isinstance(f["findings"], list) for f in shown["files"])
    assert shown["provenance"]["run"] == run_id and shown["provenance"]["parameters"] == {"scale": 2}
    assert shown["reproduction"]["state"] == "pending"
    rerun_id = shown["reproduction"]["rerun"]
    finish_rerun(env, rerun_id, {"table.csv": TABLE, "summary.csv": SUMMARY.replace(b"3.0", b"3.1")})
    shown = cli("show", request_id, "--user", "rev1")
    assert shown["reproduction"]["state"] == "not_reproduced"
    summary = next(f for f in shown["reproduction"]["result"]["files"] if f["name"] == "summary.csv")
    assert summary["table"]["tables"][0]["examples"] == [[3, "mean", "3.0", "3.1"]]
    text = CliRunner().invoke(export_cli.app, ["show", request_id])
    assert text.exit_code == 0 and f"from run {run_id}" in text.stdout and "not_reproduced" in text.stdout
    again = cli("rerun", request_id, "--user", "rev2")
    assert again["state"] == "pending" and again["rerun"] != rerun_id
    assert cli("rerun", request_id, "--user", "rev2", code=4)["error"]["code"] == "export_rerun_pending"
    assert cli("rerun", request_id, "--user", "mallory", code=4)["error"]["code"] == "export_rerun_forbidden"
    edited = env.write("table.csv", TABLE.replace(b"a,25", b"a,30"))
    with_file = cli(*base, str(edited))
    origin = cli("show", with_file["request"])["provenance"]
    assert next(f for f in origin["files"] if f["name"] == "table.csv")["edited_after_run"]
    refused = cli(*base[:-1], make_run(env, user="mallory"), code=2)
    assert refused["error"]["code"] == "run_not_found"
    with env.session() as s:
        refusals = [e for e in audit.tail(s, limit=200) if e.outcome == "refused" and e.action == "run.rerun"]
    assert len(refusals) == 2
