"""The command line's human output (issue 16, item 3): rows as rich tables, one object as a key/value
table, and progress on stderr for long operations (a bar on a terminal, a plain line per step
otherwise, nothing with ``--json``); ``--json`` output stays the same."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from enclave.cli import app, common
from enclave.cli import export as export_cli
from tests.conftest import write_yaml
from tests.harness.factories import (
    NO_APPLICATION_ARGS,
    PATIENT_COLUMNS,
    VISIT_COLUMNS,
    patients_table,
    project_spec,
    visits_table,
    write_dataset,
)

runner = CliRunner()


def invoke(home: Path, *args: str) -> Result:
    result = runner.invoke(app, ["--home", str(home), *args], env={"ENCLAVE_DATABASE_URL": ""})
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ENCLAVE_DATABASE_URL", raising=False)
    home = tmp_path / "home"
    invoke(home, "init")
    return home


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """stderr as a terminal: what the progress bar draws lands here."""
    drawn = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=drawn, force_terminal=True, width=120))
    return drawn


def plain(out: io.StringIO) -> Console:
    return Console(file=out, force_terminal=False, width=80)


def dataset_spec(tmp_path: Path, name: str = "patients") -> str:
    table, columns = (
        (patients_table(), PATIENT_COLUMNS) if name == "patients" else (visits_table(), VISIT_COLUMNS)
    )
    return str(write_dataset(tmp_path / "src", name, table, columns))


# ---- tables -------------------------------------------------------------------------------------------


def test_a_table_has_its_headers_and_keeps_rows_whole_and_literal_off_a_terminal() -> None:
    out = io.StringIO()
    long_title = "a title " * 30
    common.print_table(
        ("id", "title", "state"), [("p-1", long_title.strip(), "[bold]x[/]"), ("p-2", None, 3)], to=plain(out)
    )
    lines = out.getvalue().splitlines()
    assert [cell.strip() for cell in lines[1].strip("┃").split("┃")] == ["id", "title", "state"]
    assert [cell.strip() for cell in lines[3].strip("│").split("│")] == [
        "p-1",
        long_title.strip(),
        "[bold]x[/]",
    ]
    assert [cell.strip() for cell in lines[4].strip("│").split("│")] == ["p-2", "", "3"]
    assert "\x1b[" not in out.getvalue(), "no colours off a terminal"


def test_one_object_is_a_key_value_table() -> None:
    out = io.StringIO()
    common.print_record({"id": "p-1", "state": "active"}, to=plain(out))
    rows = [
        [c.strip() for c in line.strip("┃│").split(line[0])] for line in out.getvalue().splitlines()[1:-1]
    ]
    assert rows[0] == ["field", "value"] and rows[2:] == [["id", "p-1"], ["state", "active"]]


def cells(output: str) -> list[list[str]]:
    """The header and body rows of the tables in ``output``."""
    return [
        [cell.strip() for cell in line.strip()[1:-1].split(line.strip()[0])]
        for line in output.splitlines()
        if line.strip()[:1] in ("┃", "│")
    ]


def test_project_show_lists_members_and_datasets_as_tables(home: Path, tmp_path: Path) -> None:
    for name in ("patients", "visits"):
        invoke(home, "dataset", "register", dataset_spec(tmp_path, name), "--json")
    spec = write_yaml(tmp_path / "project.yaml", project_spec())
    invoke(home, "project", "create", str(spec), *NO_APPLICATION_ARGS, "--no-prepare", "--json")
    shown = cells(invoke(home, "project", "show", "cardio-2026").stdout)
    assert ["role", "user"] in shown and ["dataset", "columns"] in shown
    assert ["pi", "alice"] in shown
    assert any(row[0] == "patients" and row[1].startswith("pid, ") for row in shown)
    as_json = json.loads(invoke(home, "project", "show", "cardio-2026", "--json").stdout)
    assert as_json["id"] == "cardio-2026" and "members" in as_json


def test_audit_tail_is_a_table(home: Path) -> None:
    rows = cells(invoke(home, "audit", "tail").stdout)
    assert rows[0] == ["seq", "time", "actor", "action", "object", "project", "outcome", "details"]
    assert rows[1][0] == "1" and rows[1][3] == "enclave.init"


class FakeExports:
    """The export service as the CLI sees it: two requests, one released with progress."""

    rows: ClassVar[list[dict[str, Any]]] = [
        {"id": "exp-1", "project": "cardio", "requester": "bob", "state": "in_review", "version": 1},
        {"id": "exp-2", "project": "cardio", "requester": "[red]eve[/]", "state": "released", "version": 2},
    ]

    def list(self, **_: Any) -> list[dict[str, Any]]:
        return self.rows

    def release(self, request: str, *, user: str, progress: Any = None) -> dict[str, Any]:
        for done in range(3):
            progress("publishing", done, 2)
        return {"request": request, "state": "released", "location": "/outbox/x", "released_by": user}


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> FakeExports:
    fake = FakeExports()
    monkeypatch.setattr(export_cli, "_service", lambda _ctx: fake)
    return fake


def test_export_list_is_a_table_and_its_json_is_unchanged(home: Path, exports: FakeExports) -> None:
    rows = cells(invoke(home, "export", "list").stdout)
    assert rows == [
        ["id", "project", "requester", "state", "version"],
        ["exp-1", "cardio", "bob", "in_review", "v1"],
        ["exp-2", "cardio", "[red]eve[/]", "released", "v2"],
    ]
    result = invoke(home, "export", "list", "--json")
    assert result.stdout == json.dumps(exports.rows, ensure_ascii=False, indent=2) + "\n"


# ---- progress -----------------------------------------------------------------------------------------


def test_progress_is_a_bar_on_a_terminal_a_line_per_step_otherwise_and_nothing_with_json() -> None:
    drawn = io.StringIO()
    with common.ProgressView(
        "register x", unit="bytes", console=Console(file=drawn, force_terminal=True, width=120)
    ) as view:
        assert view.bar is not None
        view.update("hashing", 512, 1024)
        assert view.bar.tasks[0].description == "register x hashing"
    assert "0.5/1.0 kB" in drawn.getvalue(), "the bar counts bytes"

    lines = io.StringIO()
    with common.ProgressView("destroy p", console=plain(lines)) as view:
        for step, done in (("volumes", 0), ("volumes", 1), ("files", 2), ("files", 2)):
            view.update(step, done, 3)
    assert lines.getvalue().splitlines() == ["destroy p: volumes 0/3", "destroy p: files 2/3"]

    quiet = io.StringIO()
    with common.ProgressView("x", as_json=True, console=Console(file=quiet, force_terminal=True)) as view:
        assert view.bar is None
        view.update("step", 1, 2)
    assert quiet.getvalue() == ""


def test_register_draws_progress_on_a_terminal_only_and_never_with_json(
    home: Path, tmp_path: Path, terminal: io.StringIO
) -> None:
    spec = dataset_spec(tmp_path)
    result = invoke(home, "dataset", "register", spec)
    assert "registered patients" in result.stdout and "hashing" not in result.stdout
    assert "register patients.yaml copying" in terminal.getvalue()

    terminal.truncate(0)
    result = invoke(home, "dataset", "register", spec, "--json")
    assert json.loads(result.stdout)["created"] is False
    assert result.stderr == "" and terminal.getvalue() == ""


def test_off_a_terminal_progress_is_one_plain_line_per_step_on_stderr(home: Path, tmp_path: Path) -> None:
    result = invoke(home, "dataset", "register", dataset_spec(tmp_path))
    size = (tmp_path / "src" / "patients.parquet").stat().st_size
    assert result.stderr.splitlines() == [
        f"register patients.yaml: hashing {size:,} bytes",
        f"register patients.yaml: copying {size:,} bytes",
    ]
    assert "hashing" not in result.stdout


def test_prepare_and_destroy_report_their_steps_and_json_stays_clean(home: Path, tmp_path: Path) -> None:
    for name in ("patients", "visits"):
        invoke(home, "dataset", "register", dataset_spec(tmp_path, name), "--json")
    spec = write_yaml(tmp_path / "project.yaml", project_spec())
    created = invoke(home, "project", "create", str(spec), *NO_APPLICATION_ARGS)
    steps = created.stderr.splitlines()
    assert "prepare cardio-2026: patients: counting persons 0/2" in steps
    assert "prepare cardio-2026: visits: counting persons 1/2" in steps
    assert "project cardio-2026 created" in created.stdout and "counting" not in created.stdout

    again = invoke(home, "project", "prepare", "cardio-2026", "--json")
    assert again.stderr == "" and json.loads(again.stdout)["spec_version"] == 2

    invoke(home, "project", "expire", "cardio-2026", "--json")
    destroyed = invoke(home, "project", "destroy", "cardio-2026")
    steps = destroyed.stderr.splitlines()
    assert steps[0].startswith("destroy cardio-2026: volumes 0/")
    assert steps[-1].startswith("destroy cardio-2026: destroyed ")
    assert {"objects", "files", "secrets", "records", "certificate"} <= {line.split()[2] for line in steps}


def test_export_release_progress_goes_to_stderr_not_into_json(
    home: Path, exports: FakeExports, terminal: io.StringIO
) -> None:
    result = invoke(home, "export", "release", "exp-2", "--user", "rev1", "--json")
    assert json.loads(result.stdout)["state"] == "released" and terminal.getvalue() == ""
    result = invoke(home, "export", "release", "exp-2", "--user", "rev1")
    assert result.stdout == "released exp-2 to /outbox/x\n"
    assert "release exp-2 publishing" in terminal.getvalue()


def test_demo_data_shows_patients_generated(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo-data", "--out", str(tmp_path / "d"), "--patients", "50"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == ["demo data: generating 0/50 patients"]
    result = runner.invoke(app, ["demo-data", "--out", str(tmp_path / "e"), "--patients", "50", "--json"])
    assert result.stderr == "" and json.loads(result.stdout)["datasets"][0]["rows"] == 50


def test_dataset_show_is_a_key_value_table_then_its_columns(home: Path, tmp_path: Path) -> None:
    invoke(home, "dataset", "register", dataset_spec(tmp_path), "--json")
    rows = cells(invoke(home, "dataset", "show", "patients").stdout)
    assert rows[0] == ["field", "value"] and ["name", "patients"] in rows and ["rows", "50"] in rows
    assert ["column", "role", "generalize"] in rows and ["pid", "person_key", ""] in rows
    assert json.loads(invoke(home, "dataset", "show", "patients", "--json").stdout)["rows"] == 50
