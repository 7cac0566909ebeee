"""``enclave export`` as scripts use it: JSON shapes and exit codes (ARCHITECTURE §9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from enclave.cli import export
from tests.export_review.factories import GOOD_CSV, ExportEnv, make_project


@pytest.fixture
def cli(env: ExportEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    make_project(env, committee=3, cross_border=True)
    monkeypatch.setenv("ENCLAVE_HOME", str(env.paths.home))
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", str(env.sessions.kw["bind"].url))
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> dict | list:
        result = runner.invoke(export.app, [*args, "--json"])
        assert result.exit_code == code, result.output
        return json.loads(result.stdout)

    return run


def test_the_whole_flow(cli, env: ExportEnv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    table = env.write("table.csv", GOOD_CSV)
    submitted = cli(
        "submit", "--project", "cardio-2026", "--user", "bob", "--justification", "T1", str(table)
    )
    request_id = submitted["request"]
    assert submitted["state"] == "in_review"
    shown = cli("show", request_id)
    assert {"id", "project", "requester", "state", "files", "votes", "decision"} <= shown.keys()
    assert shown["files"][0]["name"] == "table.csv" and len(shown["files"][0]["sha256"]) == 64
    # No prepared data here, so the pseudonym check fails closed and approval needs an override.
    assert [f["code"] for f in shown["files"][0]["findings"]] == ["key_space_unavailable"]
    assert cli("vote", request_id, "approve", "--user", "rev1", code=3)["error"]["code"] == (
        "export_override_required"
    )
    ok = "--override"
    cli("vote", request_id, "approve", "--user", "rev1", ok, "no person-level values: read by hand")
    assert cli("show", request_id, "--user", "rev2")["votes"] == []
    error = cli("vote", request_id, "approve", "--user", "rev1", ok, "again", code=4)
    assert error["error"]["code"] == "export_already_voted" and error["error"]["message_zh"]
    cli("vote", request_id, "approve", "--user", "rev2", "--file", "table.csv", ok, "read it")
    assert cli("vote", request_id, "approve", "--user", "rev3", ok, "read it")["state"] == "approved"
    assert cli("release", request_id, "--user", "bob", code=4)["error"]["code"] == "export_self_review"
    assert cli("download", request_id, "--user", "bob", "--out", str(tmp_path / "x"), code=4)
    assert cli("release", request_id, "--user", "rev1")["state"] == "released"
    got = cli("download", request_id, "--user", "bob", "--out", str(tmp_path / "out"))
    assert Path(got["manifest"]).is_file()
    assert (tmp_path / "out" / "files" / "table.csv").read_text() == GOOD_CSV
    listed = cli("list", "--project", "cardio-2026", "--state", "released")
    assert [r["id"] for r in listed] == [request_id]
    assert cli("list", "--user", "mallory") == []


def test_exit_codes(cli, env: ExportEnv) -> None:  # type: ignore[no-untyped-def]
    table = env.write("table.csv", GOOD_CSV)
    base = ["submit", "--project", "cardio-2026", "--justification", "T1"]
    assert cli(*base, "--user", "rev1", str(table), code=4)["error"]["code"] == "export_not_analyst"
    assert cli(*base, "--user", "bob", str(env.write("x.exe", b"MZ")), code=3)["error"]["code"] == (
        "export_checks_blocked"
    )
    assert cli(*base, "--user", "bob", "--abroad", "--records", "200", str(table))["state"] == "in_review"
    capped = cli(*base, "--user", "bob", "--abroad", "--records", "60", str(table), code=3)
    assert capped["error"]["code"] == "cross_border_cap"
    assert cli("show", "exp-nope", code=2)["error"]["code"] == "export_not_found"
    assert cli("list", "--state", "bogus", code=2)["error"]["code"] == "export_state_unknown"
    assert cli(*base, "--user", "bob", str(env.work / "missing.csv"), code=2)["error"]["code"] == (
        "export_file_unreadable"
    )


def test_refusals_are_audited_with_their_code(cli, env: ExportEnv) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from enclave.db.models import AuditEvent

    table = env.write("table.csv", GOOD_CSV)
    base = ["submit", "--project", "cardio-2026", "--justification", "T1"]
    cli(*base, "--user", "bob", "--abroad", "--records", "200", str(table))
    cli(*base, "--user", "bob", "--abroad", "--records", "60", str(table), code=3)
    request_id = cli(*base, "--user", "bob", str(table))["request"]
    cli("vote", request_id, "approve", "--user", "bob", code=4)
    with env.sessions() as session:
        refused = session.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused")).all()
        seen = [(e.action, e.actor, json.loads(e.details_json)["code"]) for e in refused]
    assert seen == [
        ("export.submit", "bob", "cross_border_cap"),
        ("export.vote", "bob", "export_self_review"),
    ]
