"""The batch-run service's rules: who may submit, what a notebook and its parameters may be, who
sees and cancels which run, templates, reruns and run tokens (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit
from enclave.config import Paths
from enclave.errors import BadInput, Forbidden, NotFound, Refused
from enclave.roles import Role, grant
from enclave.runs import notebooks, service, tokens
from enclave.runs.states import RunActor, RunState, move
from tests.export_review.factories import ExportEnv, make_project
from tests.runs.factories import TABLE_NOTEBOOK, fake_prepared, notebook_bytes

PROJECT = "cardio-2026"


@pytest.fixture
def env(sessions: sessionmaker[Session], paths: Paths, tmp_path) -> ExportEnv:
    (tmp_path / "work").mkdir()
    environment = ExportEnv(sessions, paths, tmp_path / "work")
    make_project(environment, extra_members=[("mallory", "analyst")])
    fake_prepared(paths, PROJECT)
    return environment


def submit(env: ExportEnv, user: str = "bob", **fields) -> str:
    arguments = {
        "project": PROJECT,
        "user": user,
        "notebook": TABLE_NOTEBOOK,
        "notebook_name": "table.ipynb",
        "parameters": {"scale": 2},
        "actor": user,
        **fields,
    }
    with env.session() as s:
        return service.submit(s, env.paths, **arguments).id


def test_submit_records_the_provenance_and_queues(env: ExportEnv) -> None:
    run_id = submit(env)
    with env.session() as s:
        run = service.get_run(s, run_id)
        described = service.describe(s, run)
        assert described["state"] == "queued"
        assert described["parameters"] == {"scale": 2}
        assert described["data_version"] == 1
        assert described["progress"] == {"cells_done": 0, "cells_total": 2}
        assert service.read_stored(env.paths, run.notebook_sha256) == TABLE_NOTEBOOK
        submitted = [e for e in audit.tail(s, limit=50) if e.action == "run.submit"]
        assert submitted and json.loads(submitted[-1].details_json)["notebook_sha256"] == run.notebook_sha256


def test_a_run_always_uses_its_own_analysts_identity(env: ExportEnv) -> None:
    with pytest.raises(Forbidden) as refused:
        submit(env, user="bob", actor="alice")
    assert refused.value.code == "run_not_own"


@pytest.mark.parametrize("user", ["rev1", "outsider"])
def test_only_analysts_of_the_project_may_submit(env: ExportEnv, user: str) -> None:
    with pytest.raises(Forbidden) as refused:
        submit(env, user=user)
    assert refused.value.code == "not_a_project_analyst"


def test_a_suspended_project_refuses_runs(env: ExportEnv) -> None:
    with env.session() as s:
        from enclave.db.models import Project

        s.get(Project, PROJECT).state = "suspended"
    with pytest.raises(Forbidden) as refused:
        submit(env)
    assert refused.value.code == "project_not_active"


@pytest.mark.parametrize(
    ("notebook", "code"),
    [
        (b"not json", "run_notebook_invalid"),
        (b"[]", "run_notebook_invalid"),
        (json.dumps({"nbformat": 3, "cells": []}).encode(), "run_notebook_invalid"),
        (
            json.dumps({"nbformat": 4, "cells": [], "metadata": {"kernelspec": {"name": "ir"}}}).encode(),
            "run_notebook_kernel",
        ),
    ],
)
def test_a_broken_notebook_is_refused_and_nothing_is_stored(
    env: ExportEnv, notebook: bytes, code: str
) -> None:
    with pytest.raises(BadInput) as refused:
        submit(env, notebook=notebook)
    assert refused.value.code == code
    with env.session() as s:
        assert service.list_runs(s, viewer="bob") == []


def test_a_huge_notebook_is_refused(env: ExportEnv) -> None:
    with pytest.raises(Refused) as refused:
        submit(env, notebook=b" " * (notebooks.MAX_NOTEBOOK_BYTES + 1))
    assert refused.value.code == "run_notebook_too_large"


@pytest.mark.parametrize("name", ["../x.ipynb", "a/b.ipynb", "x.py", ".hidden.ipynb", ""])
def test_notebook_names_are_plain_file_names(env: ExportEnv, name: str) -> None:
    with pytest.raises(BadInput) as refused:
        submit(env, notebook_name=name)
    assert refused.value.code == "run_notebook_name_invalid"


@pytest.mark.parametrize(
    ("parameters", "code"),
    [
        ({"__import__": 1}, "run_parameter_name_invalid"),
        ({"import": 1}, "run_parameter_name_invalid"),
        ({"x; import os": 1}, "run_parameter_name_invalid"),
        ({"x": {"nested": 1}}, "run_parameter_invalid"),
        ({"x": float("nan")}, "run_parameter_invalid"),
        ({"x": "a" * 5000}, "run_parameter_invalid"),
        ([1, 2], "run_parameters_invalid"),
    ],
)
def test_parameters_can_never_become_code(env: ExportEnv, parameters, code: str) -> None:
    with pytest.raises(BadInput) as refused:
        submit(env, parameters=parameters)
    assert refused.value.code == code


def test_runs_are_seen_by_their_analyst_the_pi_and_stewards_only(env: ExportEnv) -> None:
    run_id = submit(env)
    with env.session() as s:
        grant(s, "sam", Role.STEWARD, actor="admin")
    with env.session() as s:
        for viewer in ("bob", "alice", "sam"):  # alice is the PI
            assert service.get_visible(s, run_id, viewer).id == run_id
        for viewer in ("mallory", "rev1", "nobody"):
            with pytest.raises(NotFound):
                service.get_visible(s, run_id, viewer)
        assert [r.id for r in service.list_runs(s, viewer="mallory")] == []
        for viewer in ("alice", "sam"):  # the list follows the same rule as get_visible
            assert [r.id for r in service.list_runs(s, viewer=viewer)] == [run_id]
        assert [r.id for r in service.list_runs(s, viewer="bob", project=PROJECT)] == [run_id]


def test_cancel_a_queued_run_and_never_anothers(env: ExportEnv) -> None:
    run_id = submit(env)
    with env.session() as s, pytest.raises(NotFound):
        service.cancel(s, run_id, actor="mallory")
    with env.session() as s, pytest.raises(Forbidden) as refused:
        service.cancel(s, run_id, actor="alice")  # the PI sees it but may not cancel it
    assert refused.value.code == "run_not_own"
    with env.session() as s:
        assert service.cancel(s, run_id, actor="bob").state == "cancelled"
    with env.session() as s, pytest.raises(Forbidden) as refused:
        service.cancel(s, run_id, actor="bob")
    assert refused.value.code == "run_state_invalid"


def test_cancelling_a_running_run_asks_the_worker(env: ExportEnv) -> None:
    run_id = submit(env)
    with env.session() as s:
        run = service.get_run(s, run_id)
        move(s, run, RunState.RUNNING, RunActor.WORKER, by="worker")
        token = tokens.issue(run)
    with env.session() as s:
        assert tokens.caller_for_token(s, token).run_id == run_id
        run = service.cancel(s, run_id, actor="bob")
        assert run.state == "running" and run.cancel_requested
    with env.session() as s, pytest.raises(Forbidden):
        tokens.caller_for_token(s, token)  # a run asked to stop makes no more queries


def test_the_analyst_cannot_move_a_run_the_workers_way(env: ExportEnv) -> None:
    run_id = submit(env)
    with env.session() as s, pytest.raises(Forbidden) as refused:
        move(s, service.get_run(s, run_id), RunState.RUNNING, RunActor.ANALYST, by="bob")
    assert refused.value.code == "run_transition_forbidden"


def test_run_tokens_hold_only_while_the_run_runs(env: ExportEnv) -> None:
    run_id = submit(env)
    with env.session() as s:
        run = service.get_run(s, run_id)
        token = tokens.issue(run)
    with env.session() as s, pytest.raises(Forbidden):
        tokens.caller_for_token(s, token)  # queued: not yet
    with env.session() as s:
        move(s, service.get_run(s, run_id), RunState.RUNNING, RunActor.WORKER, by="worker")
    with env.session() as s:
        caller = tokens.caller_for_token(s, token)
        assert (caller.user, caller.project) == ("bob", PROJECT)
        for forged in (token[:-1] + ("A" if token[-1] != "A" else "B"), tokens.RUN_TOKEN_PREFIX, "x" * 50):
            with pytest.raises(Forbidden):
                tokens.caller_for_token(s, forged)
    with env.session() as s:
        run = service.get_run(s, run_id)
        move(s, run, RunState.SUCCEEDED, RunActor.WORKER, by="worker")
        tokens.revoke(run)
    with env.session() as s, pytest.raises(Forbidden):
        tokens.caller_for_token(s, token)


def test_the_queue_per_analyst_is_capped(env: ExportEnv, monkeypatch) -> None:
    monkeypatch.setattr(service, "MAX_QUEUED_PER_ANALYST", 2)
    submit(env)
    submit(env)
    with pytest.raises(Refused) as refused:
        submit(env)
    assert refused.value.code == "run_queue_full"
    submit(env, user="alice")  # another analyst's queue is their own


TEMPLATE = notebook_bytes("open('out.txt', 'w').write(str(group))", parameters="group = 'sex'\nbins: int = 5")


def add_template(env: ExportEnv, actor: str = "sam", **fields) -> None:
    arguments = {
        "project": PROJECT,
        "name": "table-1",
        "title": "Table 1",
        "notebook": TEMPLATE,
        "notebook_name": "table1.ipynb",
        "actor": actor,
        **fields,
    }
    with env.session() as s:
        service.add_template(s, env.paths, **arguments)


def test_templates_are_approved_by_stewards_and_run_with_parameters_only(env: ExportEnv) -> None:
    with pytest.raises(Forbidden) as refused:
        add_template(env, actor="bob")
    assert refused.value.code == "role_required"
    with env.session() as s:
        grant(s, "sam", Role.STEWARD, actor="admin")
    add_template(env)
    with env.session() as s:
        [template] = service.list_templates(s, PROJECT)
        assert service.describe_template(template)["parameters"] == {"group": "sex", "bins": 5}
    run_id = submit(env, notebook=b"", notebook_name="", template="table-1", parameters={"group": "dx"})
    with env.session() as s:
        run = service.get_run(s, run_id)
        assert (
            run.template == "table-1"
            and run.notebook_sha256 == service.get_template(s, PROJECT, "table-1").notebook_sha256
        )
    with pytest.raises(BadInput) as refused:
        submit(env, notebook=b"", notebook_name="", template="table-1", parameters={"code": "1"})
    assert refused.value.code == "run_parameter_not_declared"
    with pytest.raises(BadInput) as refused:
        submit(env, notebook=TABLE_NOTEBOOK, template="table-1")
    assert refused.value.code == "run_template_with_notebook"
    with pytest.raises(Refused):
        add_template(env)  # never replaced
    with env.session() as s:
        service.retire_template(s, project=PROJECT, name="table-1", actor="sam")
    with pytest.raises(NotFound):
        submit(env, notebook=b"", notebook_name="", template="table-1")


@pytest.mark.parametrize(
    "cell",
    ["import os\nx = 1", "x = os.getcwd()", "x = y = 1", "def f(): pass"],
)
def test_a_templates_parameters_cell_holds_literals_only(env: ExportEnv, cell: str) -> None:
    with env.session() as s:
        grant(s, "sam", Role.STEWARD, actor="admin")
    with pytest.raises(BadInput) as refused:
        add_template(env, notebook=notebook_bytes("print(1)", parameters=cell))
    assert refused.value.code == "run_template_parameters_cell"


def test_a_rerun_repeats_a_succeeded_run_only(env: ExportEnv) -> None:
    run_id = submit(env)
    with env.session() as s, pytest.raises(Forbidden) as refused:
        service.rerun(s, env.paths, run_id=run_id, actor="rev1")
    assert refused.value.code == "run_not_rerunnable"
    with env.session() as s:
        run = service.get_run(s, run_id)
        move(s, run, RunState.RUNNING, RunActor.WORKER, by="worker")
        move(s, run, RunState.SUCCEEDED, RunActor.WORKER, by="worker")
    with env.session() as s:
        repeat = service.rerun(s, env.paths, run_id=run_id, actor="rev1", export_request_id="exp-1")
        original = service.get_run(s, run_id)
        assert (repeat.kind, repeat.rerun_of, repeat.user) == ("rerun", run_id, "bob")
        assert (repeat.notebook_sha256, repeat.parameters_json, repeat.data_version) == (
            original.notebook_sha256,
            original.parameters_json,
            original.data_version,
        )
        assert service.get_visible(s, repeat.id, "rev1").id == repeat.id  # the committee sees reruns
        with pytest.raises(Forbidden) as refused:
            service.cancel(s, repeat.id, actor="bob")  # the analyst cannot stop the review's check
        assert refused.value.code == "run_rerun_not_cancellable"
        with pytest.raises(NotFound):
            service.get_visible(s, run_id, "rev1")  # but not the analyst's own runs
        assert [r.id for r in service.list_runs(s, viewer="rev1")] == [repeat.id]


def test_unknown_or_malformed_run_ids_are_not_found(env: ExportEnv) -> None:
    with env.session() as s:
        for run_id in ("run-000000000000", "../etc", "run-ABC", ""):
            with pytest.raises(NotFound):
                service.get_visible(s, run_id, "bob")


def test_destruction_deletes_the_projects_run_files_but_not_a_shared_one(env: ExportEnv) -> None:
    from enclave.runs import retention

    make_project(env, project_id="other-2026")
    fake_prepared(env.paths, "other-2026")
    run_id = submit(env)
    own = notebook_bytes("print('only here')")
    own_id = submit(env, notebook=own)
    with env.session() as s:
        service.submit(
            s,
            env.paths,
            project="other-2026",
            user="bob",
            notebook=TABLE_NOTEBOOK,
            notebook_name="t.ipynb",
            parameters={},
            actor="bob",
        )
        shared_sha = service.get_run(s, run_id).notebook_sha256
        own_sha = service.get_run(s, own_id).notebook_sha256
        service.run_dir(env.paths, own_id).mkdir(parents=True)
    with env.session() as s:
        items = retention.destroy(s, env.paths, PROJECT)
    store = service.run_store(env.paths)
    assert not store.path_for(own_sha).exists()
    assert store.path_for(shared_sha).exists()  # the other project's run holds the same bytes
    assert {i["sha256"] for i in items if i["kind"] == "run_file"} == {own_sha}
    assert not service.run_dir(env.paths, own_id).exists()
    with env.session() as s:
        assert service.get_run(s, own_id).notebook_sha256 == own_sha  # the provenance row stays


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand files over")
def test_a_root_writer_hands_the_run_store_to_the_homes_owner(env: ExportEnv) -> None:
    os.chown(env.paths.home, 4321, 4321)
    run_id = submit(env)
    with env.session() as s:
        stored = service.run_store(env.paths).path_for(service.get_run(s, run_id).notebook_sha256)
    for path in (stored, stored.parent, env.paths.vault / "runs", env.paths.vault / "runs" / "files"):
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4321), path
