"""The analyst client (``enclave_client.runs``) against the real runs service behind a real hub, with a
workspace's server token: submit from the home, status, list, logs, outputs, downloads, the
executed notebook, templates, cancel (also by interrupting a wait), and the service's refusals as
bilingual ``RunError``s; on SQLite and PostgreSQL (the stack of tests/runs/test_app.py)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from enclave_client import QueryError, RunError, runs

from tests.runs.factories import TABLE_NOTEBOOK, interrupted
from tests.runs.test_app import OTHER, PROJECT, RunsStack, add_regional_template, finish, stack, state_of

__all__ = ["stack"]  # the hub and the runs service, as test_app.py starts them


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "analyst"
    (home / "analysis").mkdir(parents=True)
    (home / "analysis" / "table.ipynb").write_bytes(TABLE_NOTEBOOK)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home / "analysis")
    return home


@pytest.fixture
def bob(stack: RunsStack, home: Path, monkeypatch: pytest.MonkeyPatch) -> RunsStack:
    """What the spawner puts in bob's workspace for the project."""
    monkeypatch.setenv("ENCLAVE_RUNS_URL", stack.service_url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", stack.server_token("bob"))
    monkeypatch.setenv("JUPYTERHUB_SERVER_NAME", PROJECT)
    monkeypatch.delenv("ENCLAVE_PROJECT", raising=False)
    return stack


def test_submit_from_the_home_status_list_logs_and_cancel(bob: RunsStack, home: Path) -> None:
    run = runs.submit("table.ipynb", {"scale": 3}, timeout_s=300)
    assert run.state == "queued" and run.data["user"] == "bob" and run.data["project"] == PROJECT
    assert run.data["parameters"] == {"scale": 3} and run.data["timeout_s"] == 300
    # The file's own bytes were stored: the analyst can check the run against the file.
    sha256 = hashlib.sha256(TABLE_NOTEBOOK).hexdigest()
    assert run.data["notebook"] == {"name": "table.ipynb", "sha256": sha256}
    assert run.progress == {"cells_done": 0, "cells_total": 2}
    assert runs.status(run.id).state == "queued"
    assert run.id in [r.id for r in runs.list()]
    assert runs.logs(run.id) == "" and runs.outputs(run.id) == []
    assert runs.cancel(run.id).state == "cancelled"
    assert state_of(bob, run.id) == "cancelled"
    with pytest.raises(RunError) as caught:
        runs.cancel(run.id)
    assert (caught.value.status, caught.value.code) == (403, "run_state_invalid")
    assert caught.value.message_zh


def test_the_services_refusals_are_bilingual_run_errors(bob: RunsStack, home: Path) -> None:
    cases = [
        ({"class": 1}, "run_parameter_name_invalid"),
        ({"scale": {"nested": 1}}, "run_parameter_invalid"),
        ({f"p{i}": i for i in range(60)}, "run_parameters_invalid"),
    ]
    for parameters, code in cases:
        with pytest.raises(RunError) as caught:
            runs.submit("table.ipynb", parameters)
        error = caught.value
        assert (error.status, error.code) == (400, code), error
        assert error.message and error.message_zh and isinstance(error, QueryError)
    r_notebook = '{"nbformat": 4, "cells": [], "metadata": {"kernelspec": {"name": "ir"}}}'
    (home / "analysis" / "r.ipynb").write_text(r_notebook)
    with pytest.raises(RunError) as caught:
        runs.submit("r.ipynb")
    assert caught.value.code == "run_notebook_kernel"
    (home / "analysis" / "bad name!.ipynb").write_bytes(TABLE_NOTEBOOK)
    with pytest.raises(RunError) as caught:
        runs.submit("bad name!.ipynb")
    assert caught.value.code == "run_notebook_name_invalid"


def test_outputs_downloads_and_the_executed_notebook(bob: RunsStack, tmp_path: Path) -> None:
    run = runs.submit("table.ipynb", {"scale": 2})
    finish(bob, run.id, {"table.csv": b"group,n\na,20\n", "figs/plot.txt": b"plot"}, executed=TABLE_NOTEBOOK)
    done = runs.status(run.id)
    assert done.state == "succeeded" and done.check() is done
    names = {o["name"]: o for o in runs.outputs(run.id)}
    assert set(names) == {"table.csv", "figs/plot.txt"}
    assert names["table.csv"]["sha256"] == hashlib.sha256(b"group,n\na,20\n").hexdigest()
    folder = tmp_path / "results"
    folder.mkdir()
    assert runs.download(run.id, "figs/plot.txt", to=folder).read_bytes() == b"plot"
    assert (folder / "figs" / "plot.txt").is_file()
    assert runs.download(run.id, "table.csv", to=folder / "t.csv").read_bytes() == b"group,n\na,20\n"
    assert runs.executed(run.id, to=folder).read_bytes() == TABLE_NOTEBOOK
    assert "Ending Cell 1" in runs.logs(run.id)
    with pytest.raises(RunError) as caught:
        runs.download(run.id, "missing.csv", to=folder)
    assert (caught.value.status, caught.value.code) == (404, "run_output_not_found")
    assert not (folder / "missing.csv").exists()


def test_wait_returns_when_the_worker_finishes(bob: RunsStack) -> None:
    run = runs.submit("table.ipynb")
    timer = threading.Timer(1.0, finish, args=(bob, run.id, {"table.csv": b"x"}))
    timer.start()
    try:
        waited = run.wait(progress=lambda run, elapsed: None, poll_s=0.2)
    finally:
        timer.join()
    assert waited.state == "succeeded" and [o["name"] for o in waited.outputs] == ["table.csv"]


def test_interrupting_the_wait_cancels_the_run_on_the_service(
    bob: RunsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    interrupted(1.0, lambda: runs.submit("table.ipynb", wait=True))
    run_id = capsys.readouterr().err.split(": cancel requested")[0].rsplit(None, 1)[-1]
    assert run_id.startswith("run-")
    assert runs.status(run_id).state == "cancelled" and state_of(bob, run_id) == "cancelled"


def test_templates_by_name(bob: RunsStack) -> None:
    add_regional_template(bob)
    assert [t["name"] for t in runs.templates()] == ["regional"]
    run = runs.submit(None, {"region": "east"}, template="regional")
    assert run.data["template"] == "regional" and run.data["parameters"] == {"region": "east"}
    with pytest.raises(RunError) as caught:
        runs.submit(None, {"limit": 5}, template="regional")
    assert caught.value.code == "run_parameter_not_declared"


def test_another_users_run_and_a_forged_token_see_nothing(
    bob: RunsStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = runs.submit("table.ipynb").id
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", bob.server_token("mallory"))  # an analyst, not the PI
    with pytest.raises(RunError) as caught:
        runs.status(theirs)
    assert (caught.value.status, caught.value.code) == (404, "run_not_found")
    assert theirs not in [r.id for r in runs.list()]
    with pytest.raises(RunError) as caught:
        runs.cancel(theirs)
    assert caught.value.code == "run_not_found" and state_of(bob, theirs) == "queued"
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", bob.server_token("bob", OTHER))
    monkeypatch.setenv("JUPYTERHUB_SERVER_NAME", OTHER)
    with pytest.raises(RunError) as caught:
        runs.status(theirs)  # bob's run, but a token of his other project
    assert caught.value.code == "run_not_found"
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "f" * 64)
    with pytest.raises(RunError) as caught:
        runs.list()
    assert (caught.value.status, caught.value.code) == (401, "token_invalid")
