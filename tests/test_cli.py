"""The CLI contracts (ARCHITECTURE §9): JSON shapes, error shape, exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_yaml
from tests.harness.cli import enclave_cli
from tests.harness.factories import (
    NO_APPLICATION_ARGS,
    PATIENT_COLUMNS,
    VISIT_COLUMNS,
    patients_table,
    project_spec,
    visits_table,
    write_dataset,
)

run = enclave_cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ENCLAVE_DATABASE_URL", raising=False)
    home = tmp_path / "home"
    run(home, "init", "--actor", "steward")
    return home


def register_all(home: Path, tmp_path: Path) -> None:
    for name, table, columns in (
        ("patients", patients_table(), PATIENT_COLUMNS),
        ("visits", visits_table(), VISIT_COLUMNS),
    ):
        out = run(
            home, "dataset", "register", str(write_dataset(tmp_path / "src", name, table, columns)), "--json"
        )
        assert out["created"] is True


def assert_error_shape(payload: dict[str, Any], code: str) -> None:
    error = payload["error"]
    assert error["code"] == code
    assert error["message"] and error["message_zh"]
    for reason in error.get("reasons", []):
        assert set(reason) >= {"code", "message", "message_zh"}


def test_uninitialised_home_is_a_clear_error(tmp_path: Path) -> None:
    out = run(tmp_path / "nowhere", "dataset", "list", "--json", code=2)
    assert_error_shape(out, "not_initialised")


def test_catalog_and_project_round_trip(home: Path, tmp_path: Path) -> None:
    register_all(home, tmp_path)
    listing = run(home, "dataset", "list", "--json")
    assert [d["name"] for d in listing] == ["patients", "visits"]
    shown = run(home, "dataset", "show", "patients", "--json")
    assert shown["spec"]["person_key"] == "pid" and shown["rows"] == 50

    spec = write_yaml(tmp_path / "project.yaml", project_spec())
    created = run(home, "project", "create", str(spec), *NO_APPLICATION_ARGS, "--no-prepare", "--json")
    assert created["project"] == "cardio-2026" and created["state"] == "approved"
    project = run(home, "project", "show", "cardio-2026", "--json")
    assert project["spec"]["committee"] == ["carol", "dave", "erin"]
    assert [p["id"] for p in run(home, "project", "list", "--json")] == ["cardio-2026"]

    verified = run(home, "audit", "verify", "--json")
    assert verified["ok"] is True and verified["checked"] == 5
    actions = [e["action"] for e in run(home, "audit", "tail", "--json")]
    assert actions == [
        "enclave.init",
        "dataset.register",
        "dataset.register",
        "project.create_without_application",
        "project.create",
    ]


@pytest.mark.parametrize(
    ("change", "code", "exit_code"),
    [
        ({"committee": ["carol", "bob", "erin"]}, "spec_invalid", 2),
        ({"datasets": {"patients": ["age"]}}, "project_spec_invalid", 2),
        ({"datasets": {"labs": ["pid"]}}, "project_spec_invalid", 2),
    ],
)
def test_bad_project_specs_exit_2_with_the_error_shape(
    home: Path, tmp_path: Path, change: dict[str, Any], code: str, exit_code: int
) -> None:
    register_all(home, tmp_path)
    spec = write_yaml(tmp_path / "project.yaml", project_spec(**change))
    out = run(home, "project", "create", str(spec), *NO_APPLICATION_ARGS, "--json", code=exit_code)
    assert_error_shape(out, code)
    assert run(home, "project", "list", "--json") == []
    refused = run(home, "audit", "tail", "--action", "project.create_refused", "--json")
    assert refused[-1]["outcome"] == "refused" and refused[-1]["details"]["code"] == code


def test_not_shareable_exits_3_and_override_is_audited(home: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    run(
        home,
        "dataset",
        "register",
        str(write_dataset(src, "patients", patients_table(), PATIENT_COLUMNS, level=5)),
    )
    run(home, "dataset", "register", str(write_dataset(src, "visits", visits_table(), VISIT_COLUMNS)))
    spec = str(write_yaml(tmp_path / "project.yaml", project_spec()))
    create = ("project", "create", spec, *NO_APPLICATION_ARGS, "--no-prepare")
    assert_error_shape(run(home, *create, "--json", code=3), "dataset_not_shareable")
    out = run(home, *create, "--override-share", "patients", "--json", code=2)
    assert_error_shape(out, "override_malformed")
    run(home, *create, "--override-share", "patients=ethics ref 42", "--json")
    overrides = run(home, "audit", "tail", "--action", "dataset.share_override", "--json")
    assert overrides[0]["details"]["reason"] == "ethics ref 42"


def test_unknown_project_and_lifecycle_errors(home: Path, tmp_path: Path) -> None:
    assert_error_shape(run(home, "project", "show", "nope", "--json", code=2), "project_not_found")
    register_all(home, tmp_path)
    spec = write_yaml(tmp_path / "project.yaml", project_spec())
    run(home, "project", "create", str(spec), *NO_APPLICATION_ARGS, "--no-prepare")
    assert run(home, "project", "expire", "cardio-2026", "--json")["state"] == "expired"
    out = run(home, "project", "resume", "cardio-2026", "--reason", "x", "--json", code=4)
    assert_error_shape(out, "project_state_invalid")
    swept = run(home, "project", "sweep", "--today", "not-a-date", "--json", code=2)
    assert_error_shape(swept, "date_invalid")


def test_audit_verify_exits_1_on_a_broken_chain(home: Path) -> None:
    import sqlite3

    con = sqlite3.connect(home / "state.db")
    con.execute("DROP TRIGGER audit_events_no_update")
    con.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1")
    con.commit()
    con.close()
    out = run(home, "audit", "verify", "--json", code=1)
    assert out["ok"] is False and out["checked"] == 0 and out["broken_seq"] == 1
    assert out["code"] == "audit_record_changed" and out["problem"] == "record content changed"
