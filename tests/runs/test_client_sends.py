"""What the analyst client (``enclave_client.runs``) sends and how it maps answers.

These tests use the RECORDING STAND-IN of tests/runs/recording_service.py, never a model of the
service: it answers what each test scripts and records the requests. They cover the client's own
behaviour only: which paths it refuses before sending, how parameters are encoded, how an error
answer becomes a ``RunError``, and that interrupting a wait cancels the run. What the real service
decides is tested against it in tests/runs/test_client_runs.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from enclave_client import QueryError, RunError, runs

from tests.runs.factories import interrupted
from tests.runs.recording_service import Recorded, RecordingService, describe, recording_service

TOKEN = "server-token-of-alice"
NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3"}},
    "cells": [{"cell_type": "code", "metadata": {}, "source": "print(1)", "outputs": []}],
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder for the analyst, with a notebook in it, and the current directory inside."""
    home = tmp_path / "home" / "analyst"
    (home / "analysis").mkdir(parents=True)
    (home / "analysis" / "table1.ipynb").write_text(json.dumps(NOTEBOOK))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home / "analysis")
    return home


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Any:
    with recording_service() as recording:
        monkeypatch.setenv("ENCLAVE_RUNS_URL", recording.url)
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)
        monkeypatch.setenv("ENCLAVE_PROJECT", "cardio")
        yield recording


# ---- the notebook's path: inside the home, refused before anything is sent -----------------------


def test_a_notebook_in_the_home_is_sent_as_its_file_text(home: Path, service: RecordingService) -> None:
    run = runs.submit("table1.ipynb", {"year": 2024})
    assert run.id == run["id"] == "run-0123456789ab" and run.state == run["state"] == "queued"
    (request,) = service.requests
    assert request.method == "POST" and request.path == "/services/runs/api/runs"
    assert request.headers["Authorization"] == f"token {TOKEN}"
    assert request.headers["X-Enclave-Project"] == "cardio"
    # The file's text as it is, so that the run records the file's own sha256.
    assert request.body == {
        "notebook_name": "table1.ipynb",
        "notebook": (home / "analysis" / "table1.ipynb").read_text(),
        "parameters": {"year": 2024},
    }


def test_absolute_and_home_relative_paths_work_too(home: Path, service: RecordingService) -> None:
    runs.submit(home / "analysis" / "table1.ipynb")
    runs.submit("~/analysis/table1.ipynb")
    assert [r.body["notebook_name"] for r in service.requests] == ["table1.ipynb", "table1.ipynb"]


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../../outside.ipynb",
        "../../../analyst/../outside.ipynb",
        "/tmp/x.ipynb",
    ],
)
def test_paths_outside_the_home_are_refused_before_sending(
    home: Path, service: RecordingService, path: str
) -> None:
    (home.parent / "outside.ipynb").write_text(json.dumps(NOTEBOOK))
    with pytest.raises(RunError) as caught:
        runs.submit(path)
    assert caught.value.code == "run_path_outside_home"
    assert "主目录" in caught.value.message_zh and str(home) in caught.value.message
    assert service.requests == []


def test_a_symlink_in_the_home_pointing_outside_is_refused(home: Path, service: RecordingService) -> None:
    outside = home.parent / "secret.ipynb"
    outside.write_text(json.dumps(NOTEBOOK))
    (home / "analysis" / "link.ipynb").symlink_to(outside)
    (home / "analysis" / "dir").symlink_to(home.parent)
    for path in ("link.ipynb", "dir/secret.ipynb"):
        with pytest.raises(RunError) as caught:
            runs.submit(path)
        assert caught.value.code == "run_path_outside_home", path
    assert service.requests == []


def test_a_symlink_inside_the_home_is_followed(home: Path, service: RecordingService) -> None:
    (home / "latest.ipynb").symlink_to(home / "analysis" / "table1.ipynb")
    runs.submit("~/latest.ipynb")
    assert json.loads(service.requests[0].body["notebook"]) == NOTEBOOK


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("missing.ipynb", None, "run_notebook_not_found"),
        ("notes.txt", "hello", "run_notebook_not_a_notebook"),
        ("folder.ipynb", "dir", "run_notebook_not_a_notebook"),
        ("broken.ipynb", "{not json", "run_notebook_invalid"),
        ("list.ipynb", "[1, 2]", "run_notebook_invalid"),
    ],
)
def test_what_is_not_a_notebook_is_refused_before_sending(
    home: Path, service: RecordingService, name: str, content: str | None, code: str
) -> None:
    target = home / "analysis" / name
    if content == "dir":
        target.mkdir()
    elif content is not None:
        target.write_text(content)
    with pytest.raises(RunError) as caught:
        runs.submit(name)
    assert caught.value.code == code
    assert service.requests == []


def test_a_huge_notebook_is_refused_without_reading_it_all(home: Path, service: RecordingService) -> None:
    huge = home / "analysis" / "huge.ipynb"
    with huge.open("wb") as handle:
        handle.truncate(runs.MAX_NOTEBOOK_BYTES + 1)  # sparse: the test writes almost nothing
    with pytest.raises(RunError) as caught:
        runs.submit("huge.ipynb")
    assert caught.value.code == "run_notebook_too_large"
    assert service.requests == []


def test_a_template_is_sent_by_name_without_a_notebook(home: Path, service: RecordingService) -> None:
    runs.submit(None, {"year": 2024}, template="table1", timeout_s=600)
    assert service.requests[0].body == {"template": "table1", "parameters": {"year": 2024}, "timeout_s": 600}
    with pytest.raises(RunError) as caught:
        runs.submit("table1.ipynb", template="table1")
    assert caught.value.code == "run_template_with_notebook"
    with pytest.raises(RunError):
        runs.submit(None)
    assert len(service.requests) == 1


# ---- parameters ---------------------------------------------------------------------------------


def test_parameters_are_sent_as_plain_json(home: Path, service: RecordingService) -> None:
    np = pytest.importorskip("numpy")
    runs.submit(
        "table1.ipynb",
        {"year": np.int64(2024), "rate": np.float64(0.5), "sites": ("a", "b"), "flag": True, "none": None},
    )
    assert service.requests[0].body["parameters"] == {
        "year": 2024,
        "rate": 0.5,
        "sites": ["a", "b"],
        "flag": True,
        "none": None,
    }
    assert runs.submit("table1.ipynb").data and service.requests[1].body["parameters"] == {}


@pytest.mark.parametrize(
    ("parameters", "code"),
    [
        ({"rate": float("nan")}, "run_parameter_invalid"),
        ({"rate": [1.0, float("inf")]}, "run_parameter_invalid"),
        ({"when": object()}, "run_parameter_invalid"),
        ({"data": {1, 2}}, "run_parameter_invalid"),
        ({"blob": b"bytes"}, "run_parameter_invalid"),
        ({1: "not a name"}, "run_parameter_name_invalid"),
        ({"nested": {2: "x"}}, "run_parameter_name_invalid"),
        (["year", 2024], "run_parameters_invalid"),
        ("year=2024", "run_parameters_invalid"),
    ],
)
def test_parameters_json_cannot_carry_are_refused_before_sending(
    home: Path, service: RecordingService, parameters: Any, code: str
) -> None:
    with pytest.raises(RunError) as caught:
        runs.submit("table1.ipynb", parameters)
    assert caught.value.code == code  # the service's codes for the same faults
    assert caught.value.message and caught.value.message_zh
    assert service.requests == []


def test_what_json_carries_is_left_to_the_service(home: Path, service: RecordingService) -> None:
    runs.submit("table1.ipynb", {"class": 1, "nested": {"a": (1, 2)}})
    assert service.requests[0].body["parameters"] == {"class": 1, "nested": {"a": [1, 2]}}


def test_a_notebook_json_cannot_carry_is_refused_before_sending(
    home: Path, service: RecordingService
) -> None:
    for name, data in [("nan.ipynb", b'{"nbformat": 4, "x": NaN}'), ("latin.ipynb", b'{"x": "\xe9"}')]:
        (home / "analysis" / name).write_bytes(data)
        with pytest.raises(RunError) as caught:
            runs.submit(name)
        assert caught.value.code == "run_notebook_invalid", name
    for notebook in ({"x": float("nan")}, '{"x": Infinity}', "[]"):
        with pytest.raises(RunError) as caught:
            runs.submit_notebook(notebook, "t.ipynb")
        assert caught.value.code == "run_notebook_invalid", notebook
    assert service.requests == []


# ---- answers and errors -------------------------------------------------------------------------


def test_the_services_error_becomes_a_bilingual_run_error(home: Path, service: RecordingService) -> None:
    errors = [{"code": "run_parameter_name_invalid", "message": {"en": "bad name", "zh": "参数名无效"}}]
    service.script = lambda request: (400, {"errors": errors})
    with pytest.raises(RunError) as caught:
        runs.submit("table1.ipynb", {"class": 1})
    error = caught.value
    assert isinstance(error, QueryError)  # `except QueryError` catches it too
    assert (error.status, error.code, error.message, error.message_zh) == (
        400,
        "run_parameter_name_invalid",
        "bad name",
        "参数名无效",
    )
    assert "批处理作业" in error._repr_html_() and "参数名无效" in error._repr_html_()


@pytest.mark.parametrize(
    ("status", "payload", "code"),
    [(502, b"<html>Bad gateway</html>", "http_502"), (403, b'{"errors": []}', "http_403")],
)
def test_an_answer_without_the_error_shape_still_maps(
    home: Path, service: RecordingService, status: int, payload: bytes, code: str
) -> None:
    service.script = lambda request: (status, payload)
    with pytest.raises(RunError) as caught:
        runs.status("run-0123456789ab")
    assert caught.value.code == code and caught.value.status == status


def test_an_unreachable_or_unconfigured_service_says_so(
    home: Path, service: RecordingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_RUNS_URL", "http://127.0.0.1:9/")
    with pytest.raises(RunError) as caught:
        runs.list()
    assert caught.value.code == "runs_unreachable"
    monkeypatch.delenv("ENCLAVE_RUNS_URL")
    with pytest.raises(RunError) as caught:
        runs.list()
    assert caught.value.code == "runs_not_configured" and "ENCLAVE_RUNS_URL" in caught.value.message


def test_run_ids_and_output_names_cannot_change_the_url(home: Path, service: RecordingService) -> None:
    for run_id in ("../api/runs", "run-0123456789ab/../x", "run-0123456789ab\n", "RUN-1", ""):
        with pytest.raises(RunError) as caught:
            runs.status(run_id)
        assert caught.value.code == "run_not_found"
    for name in ("../x", "a/../../b", "/etc/passwd", "", "a//b"):
        with pytest.raises(RunError) as caught:
            runs.download("run-0123456789ab", name)
        assert caught.value.code == "run_output_not_found"
    assert service.requests == []


def test_calls_use_the_contracts_paths(home: Path, service: RecordingService, tmp_path: Path) -> None:
    def script(request: Recorded) -> tuple[int, Any]:
        if request.path.endswith("/log"):
            return 200, "cell 1 done\n"
        if "/outputs/" in request.path or request.path.endswith("/executed"):
            return 200, b"a,b\n1,2\n"
        if request.path.endswith("api/runs") and request.method == "GET":
            return 200, {"runs": [describe(), describe("run-ba9876543210", "running")]}
        outputs = [{"name": "tables/t 1.csv", "sha256": "1" * 64, "size": 8}]
        return 200, describe(state="succeeded", outputs=outputs)

    service.script = script
    run_id = "run-0123456789ab"
    (tmp_path / "out").mkdir()
    assert [r.state for r in runs.list()] == ["queued", "running"]
    assert runs.outputs(run_id) == [{"name": "tables/t 1.csv", "sha256": "1" * 64, "size": 8}]
    assert runs.logs(run_id) == "cell 1 done\n"
    written = runs.download(run_id, "tables/t 1.csv", to=tmp_path / "out")
    assert written == tmp_path / "out" / "tables" / "t 1.csv" and written.read_bytes() == b"a,b\n1,2\n"
    assert runs.download(run_id, "tables/t 1.csv", to=tmp_path / "named.csv") == tmp_path / "named.csv"
    assert runs.cancel(run_id).state == "succeeded"
    executed = runs.executed(run_id, to=tmp_path)
    assert executed.name == f"{run_id}.executed.ipynb"
    assert [(r.method, r.path) for r in service.requests] == [
        ("GET", "/services/runs/api/runs"),
        ("GET", f"/services/runs/api/runs/{run_id}"),
        ("GET", f"/services/runs/api/runs/{run_id}/log"),
        ("GET", f"/services/runs/api/runs/{run_id}/outputs/tables/t%201.csv"),
        ("GET", f"/services/runs/api/runs/{run_id}/outputs/tables/t%201.csv"),
        ("DELETE", f"/services/runs/api/runs/{run_id}"),
        ("GET", f"/services/runs/api/runs/{run_id}/executed"),
    ]
    assert not [p for p in (tmp_path / "out" / "tables").iterdir() if p.name.startswith(".download-")]


def test_a_failed_download_leaves_no_partial_file(
    home: Path, service: RecordingService, tmp_path: Path
) -> None:
    service.script = lambda request: (404, {"errors": [{"code": "run_output_not_found", "message": {}}]})
    folder = tmp_path / "downloads"
    folder.mkdir()
    with pytest.raises(RunError):
        runs.download("run-0123456789ab", "t.csv", to=folder)
    assert os.listdir(folder) == []


# ---- waiting ------------------------------------------------------------------------------------


def _states(*states: str, cells_total: int = 4) -> Any:
    """Answers a submit, then each poll with the next state (the last one repeats)."""
    answers = iter(states)
    last = {"state": states[-1]}

    def script(request: Recorded) -> tuple[int, Any]:
        if request.method == "DELETE":
            return 200, describe(state="cancelled")
        state = next(answers, last["state"])
        done = {"queued": 0, "running": 2}.get(state, cells_total)
        return (201 if request.method == "POST" else 200), describe(
            state=state, progress={"cells_done": done, "cells_total": cells_total}
        )

    return script


def test_wait_polls_until_the_run_ends_and_shows_cells(
    home: Path, service: RecordingService, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "POLL_S", 0.01)
    service.script = _states("queued", "running", "running", "succeeded")
    run = runs.submit("table1.ipynb", wait=True)
    assert run.state == "succeeded" and run.check() is run
    shown = capsys.readouterr().err
    assert "running / 运行中 · cells 2/4" in shown and "succeeded / 已成功" in shown
    assert "interrupt to cancel / 中断以取消" in shown
    assert [r.method for r in service.requests] == ["POST", "GET", "GET", "GET"]


def test_a_failed_run_is_returned_and_check_raises_its_error(
    home: Path, service: RecordingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "POLL_S", 0.01)
    error = {"code": "run_cell_error", "message": "Cell 3 raised", "message_zh": "第 3 个单元格出错"}

    def script(request: Recorded) -> tuple[int, Any]:
        return 200, describe(state="failed", error=error)

    service.script = script
    run = runs.status("run-0123456789ab").wait(progress=lambda run, elapsed: None)
    assert run.state == "failed"
    with pytest.raises(RunError) as caught:
        run.check()
    assert (caught.value.code, caught.value.message_zh) == ("run_cell_error", "第 3 个单元格出错")
    assert 'data-state="failed"' in run._repr_html_()


def test_interrupting_the_wait_cancels_the_run(
    home: Path, service: RecordingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "POLL_S", 0.05)
    service.script = _states("queued", "running")  # never ends by itself
    interrupted(0.5, lambda: runs.submit("table1.ipynb", wait=True))
    assert service.requests[-1].method == "DELETE"
    assert service.requests[-1].path == "/services/runs/api/runs/run-0123456789ab"


def test_a_wait_limit_leaves_the_run_going(
    home: Path, service: RecordingService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "POLL_S", 0.01)
    service.script = _states("running")
    run = runs.submit("table1.ipynb")
    with pytest.raises(RunError) as caught:
        run.wait(timeout_s=0.1, progress=lambda run, elapsed: None)
    assert caught.value.code == "run_wait_timeout"
    assert "DELETE" not in [r.method for r in service.requests]
