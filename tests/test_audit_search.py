"""The security auditor's audit search and CSV export (R-ROLE-4, R-AUD-7), on SQLite and PostgreSQL:
filters, time zones, paging, validation, the read-only path, the audit of each search, CSV injection,
and the ``enclave audit search`` command."""

from __future__ import annotations

import csv
import io
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from enclave import audit, audit_search, roles
from enclave.cli import app
from enclave.db import session_scope
from enclave.db.models import AuditEvent, Base, StaffRole
from enclave.errors import BadInput, Forbidden
from enclave.roles import Role

# (ts, actor, action, object, project, details): UTC times; Asia/Shanghai is 8 hours ahead.
SEEDED = [
    ("2026-10-31T15:59:59.999999+00:00", "alice", "query.run", "query:1", "cardio", {"sql": "select 1"}),
    ("2026-10-31T16:00:00.000000+00:00", "alice", "export.submit", "export:e1", "cardio", {"files": 2}),
    ("2026-11-01T09:00:00.000000+00:00", "bob", "export.vote", "export:e1", "cardio", {"choice": "approve"}),
    ("2026-11-01T15:59:59.999999+00:00", "carol", "user.login_fail", "user:carol", None, {"reason": "bad"}),
    ("2026-11-01T16:00:00.000000+00:00", "carol", "user.loginx", "user:carol", None, {"note": "100% 高血压"}),
    ("2026-11-02T01:00:00.000000+00:00", "dave", "project.create", "project:onco", "onco", {"k": 5}),
]


@pytest.fixture(autouse=True)
def shanghai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCLAVE_TIMEZONE", "Asia/Shanghai")


@pytest.fixture
def seeded(sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> sessionmaker[Session]:
    for ts, actor, action, obj, project, details in SEEDED:
        monkeypatch.setattr(audit, "now_iso", lambda ts=ts: ts)
        with session_scope(sessions) as s:
            audit.record(s, action, actor=actor, obj=obj, project=project, details=details)
    monkeypatch.undo()
    monkeypatch.setenv("ENCLAVE_TIMEZONE", "Asia/Shanghai")
    with session_scope(sessions) as s:
        roles.grant(s, "audrey", Role.SECURITY_AUDITOR, actor="root")
    return sessions


def found(sessions: sessionmaker[Session], **filters: Any) -> list[str]:
    """The actions (newest first) a search finds among the seeded records."""
    with session_scope(sessions) as s:
        rows = audit_search.search(s, **filters)
    seeded_seqs = len(SEEDED)
    return [r["action"] for r in rows if r["seq"] <= seeded_seqs]


# ---- filters -----------------------------------------------------------------------------------------


def test_filters_by_actor_project_and_action(seeded: sessionmaker[Session]) -> None:
    assert found(seeded) == [
        "project.create",
        "user.loginx",
        "user.login_fail",
        "export.vote",
        "export.submit",
        "query.run",
    ]
    assert found(seeded, user="alice") == ["export.submit", "query.run"]
    assert found(seeded, user="ALICE") == []  # actors are exact
    assert found(seeded, project="cardio", user="bob") == ["export.vote"]
    assert found(seeded, action="export.vote") == ["export.vote"]
    assert found(seeded, action="export.") == ["export.vote", "export.submit"]
    assert found(seeded, action="export.*") == ["export.vote", "export.submit"]
    assert found(seeded, action="export") == []  # no dot, no star: an exact name
    # "_" is a literal underscore, not LIKE's any-one-character
    assert found(seeded, action="user.login_*") == ["user.login_fail"]


def test_dates_are_whole_days_in_the_enclave_time_zone(seeded: sessionmaker[Session]) -> None:
    # 2026-11-01 in Shanghai runs from 2026-10-31T16:00Z to 2026-11-01T15:59:59.999999Z
    assert found(seeded, since="2026-11-01", until="2026-11-01") == [
        "user.login_fail",
        "export.vote",
        "export.submit",
    ]
    assert found(seeded, until="2026-10-31") == ["query.run"]
    assert found(seeded, since="2026-11-02") == ["project.create", "user.loginx"]


def test_times_with_and_without_a_zone(seeded: sessionmaker[Session]) -> None:
    assert found(seeded, since="2026-11-01T09:00:00Z", until="2026-11-01T09:00:00Z") == ["export.vote"]
    assert found(seeded, since="2026-11-01T17:00:00+08:00", until="2026-11-01T17:00:00") == ["export.vote"]
    assert found(seeded, since="2026-11-02T00:00:00+08:00") == ["project.create", "user.loginx"]
    assert found(seeded, since="2026-11-02T08:00:00+08:00") == ["project.create"]


def test_text_is_a_literal_case_insensitive_substring(seeded: sessionmaker[Session]) -> None:
    assert found(seeded, text="高血压") == ["user.loginx"]
    assert found(seeded, text="APPROVE") == ["export.vote"]
    assert found(seeded, text="PROJECT:ONCO") == ["project.create"]
    assert found(seeded, text="100%") == ["user.loginx"]
    assert found(seeded, text="%") == ["user.loginx"]  # not LIKE's "anything"
    assert found(seeded, text="'; DELETE FROM audit_events; --") == []
    assert len(found(seeded)) == len(SEEDED)


def test_newest_first_with_limit_and_offset(seeded: sessionmaker[Session]) -> None:
    with session_scope(seeded) as s:
        every = audit_search.search(s, limit=audit_search.MAX_LIMIT)
        pages = [audit_search.search(s, limit=2, offset=o) for o in (0, 2, 4, 6)]
    seqs = [r["seq"] for r in every]
    assert seqs == sorted(seqs, reverse=True)
    assert [r["seq"] for page in pages for r in page] == seqs


def test_rows_carry_the_record_and_its_hash(seeded: sessionmaker[Session]) -> None:
    with session_scope(seeded) as s:
        [row] = audit_search.search(s, action="export.vote")
        stored = s.get(AuditEvent, row["seq"])
        assert stored is not None
    assert tuple(row) == audit_search.COLUMNS
    assert row["details"] == {"choice": "approve"}
    assert row["hash"] == stored.hash and row["ts"] == stored.ts and row["source"] == stored.source
    assert row["project"] == "cardio" and row["outcome"] == "success" and row["object"] == "export:e1"


BAD_FILTERS: list[dict[str, Any]] = [
    {"since": "yesterday"},
    {"since": "2026-13-01"},
    {"until": "2026-11-01T25:00"},
    {"until": "9999-12-31"},
    {"since": "2026-11-02", "until": "2026-11-01"},
    {"limit": 0},
    {"limit": audit_search.MAX_LIMIT + 1},
    {"offset": -1},
    {"action": "export.%"},
    {"action": "Export.vote"},
    {"action": "x'; DROP TABLE audit_events; --"},
    {"text": "a\x00b"},
    {"user": "x" * 201},
]


def test_bad_filters_are_bad_input(seeded: sessionmaker[Session]) -> None:
    with session_scope(seeded) as s:
        for filters in BAD_FILTERS:
            with pytest.raises(BadInput) as caught:
                audit_search.search(s, **filters)
            assert caught.value.code == "audit_filter_invalid", filters
            assert caught.value.details["field"] in filters and caught.value.message_zh


# ---- read-only, and audited ----------------------------------------------------------------------------


def test_the_read_only_path_cannot_write(seeded: sessionmaker[Session]) -> None:
    with session_scope(seeded) as s:
        for statement in (
            update(AuditEvent).values(actor="mallory"),
            insert(StaffRole).values(username="x", role="steward", granted_by="x", granted_at="x"),
            text("DELETE FROM audit_events"),
        ):
            with pytest.raises(DBAPIError), audit_search.read_only_connection(s) as conn:
                conn.execute(statement)
    with session_scope(seeded) as s:
        assert audit.verify(s).ok
        # the pooled connections went back writable
        for _ in range(5):
            audit_search.search(s)
        roles.grant(s, "bob", Role.STEWARD, actor="root")
    with session_scope(seeded) as s:
        assert roles.holders(s, Role.STEWARD) == ["bob"]


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table.name: sorted(tuple(map(str, row)) for row in session.execute(select(table)))
        for table in Base.metadata.sorted_tables
    }


def test_a_search_writes_nothing_but_its_own_record(seeded: sessionmaker[Session]) -> None:
    with session_scope(seeded) as s:
        before = snapshot(s)
    with session_scope(seeded) as s:
        rows = audit_search.audited_search(s, auditor="audrey", action="export.", since="2026-11-01")
    assert [r["action"] for r in rows] == ["export.vote", "export.submit"]
    with session_scope(seeded) as s:
        after = snapshot(s)
        newest = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert audit.verify(s).ok
    assert newest is not None and newest.action == "audit.search" == audit.AuditAction.AUDIT_SEARCH
    assert (newest.actor, newest.object, newest.outcome) == ("audrey", "audit_log", "success")
    assert json.loads(newest.details_json) == {
        "filters": {"action": "export.", "since": "2026-11-01"},
        "results": 2,
    }
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"audit_events", "audit_head"}
    assert len(after["audit_events"]) == len(before["audit_events"]) + 1


@pytest.mark.parametrize("role", [None, Role.SECURITY_ADMIN, Role.STEWARD, Role.COMMITTEE])
def test_only_a_security_auditor_may_search(seeded: sessionmaker[Session], role: Role | None) -> None:
    if role is not None:
        with session_scope(seeded) as s:
            roles.grant(s, "sam", role, actor="root")
    with pytest.raises(Forbidden) as caught, session_scope(seeded) as s:
        audit_search.audited_search(s, auditor="sam", user="alice")
    assert caught.value.code == "role_required" and caught.value.details["role"] == "security_auditor"


def test_a_revoked_auditor_cannot_search(seeded: sessionmaker[Session]) -> None:
    with session_scope(seeded) as s:
        audit_search.check_auditor(s, "audrey")
        roles.revoke(s, "audrey", Role.SECURITY_AUDITOR, actor="root")
    with pytest.raises(Forbidden), session_scope(seeded) as s:
        audit_search.audited_search(s, auditor="audrey")


# ---- CSV ---------------------------------------------------------------------------------------------


def row(**fields: Any) -> dict[str, Any]:
    base = {c: "" for c in audit_search.COLUMNS}
    return {**base, "seq": 1, "details": {}, **fields}


@pytest.mark.parametrize("attack", ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_cells_never_run_as_formulas(attack: str) -> None:
    out = audit_search.to_csv([row(actor=attack, object=attack, project=attack, source=attack)])
    [_, cells] = list(csv.reader(io.StringIO(out)))
    for cell in cells[2], cells[4], cells[5], cells[7]:
        assert cell == "'" + attack


def test_csv_has_a_stable_header_and_round_trips_text() -> None:
    rows = [
        row(
            seq=7,
            actor="李雷",
            object='x,"y"\nz',
            details={"sql": "SELECT a, b", "zh": "高血压"},
            project=None,
        ),
        row(seq=8, actor="bob", details={"n": -1}),
    ]
    out = audit_search.to_csv(rows)
    assert out.splitlines()[0] == "seq,ts,actor,action,object,project,outcome,source,details,hash"
    header, first, second = list(csv.reader(io.StringIO(out)))
    assert header == list(audit_search.COLUMNS)
    assert first[0] == "7" and first[2] == "李雷" and first[4] == 'x,"y"\nz' and first[5] == ""
    assert json.loads(first[8]) == {"sql": "SELECT a, b", "zh": "高血压"}
    assert second[8] == '{"n":-1}'
    assert audit_search.to_csv([]) == ",".join(audit_search.COLUMNS) + "\r\n"


# ---- enclave audit search ----------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli(seeded: sessionmaker[Session], database_url: str, tmp_path: Path) -> Iterator[Any]:
    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(
            app,
            ["--home", str(tmp_path / "home"), "audit", "search", *args],
            env={"ENCLAVE_DATABASE_URL": database_url},
        )
        assert result.exit_code == code, result.output
        return json.loads(result.stdout) if "--json" in args else result.stdout

    yield run


def newest(sessions: sessionmaker[Session]) -> AuditEvent:
    with session_scope(sessions) as s:
        event = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert event is not None
        return event


def test_cli_search_as_json(cli: Any, seeded: sessionmaker[Session]) -> None:
    rows = cli("--user", "audrey", "--actor", "alice", "--since", "2026-10-31", "--json")
    assert [r["action"] for r in rows] == ["export.submit", "query.run"]
    assert newest(seeded).action == "audit.search"
    text_out = cli("--user", "audrey", "--action", "export.")
    assert "export.vote" in text_out and "export.submit" in text_out and "query.run" not in text_out


def test_cli_search_to_csv(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "audit.csv"
    printed = cli("--user", "audrey", "--project", "cardio", "--csv", str(out))
    assert "3 records" in printed
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, so spreadsheets read the Chinese text
    records = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["action"] for r in records] == ["export.vote", "export.submit", "query.run"]


def test_cli_refuses_a_non_auditor_and_audits_the_refusal(cli: Any, seeded: sessionmaker[Session]) -> None:
    error = cli("--user", "bob", "--json", code=4)
    assert error["error"]["code"] == "role_required"
    refusal = newest(seeded)
    assert (refusal.action, refusal.actor, refusal.outcome) == ("audit.search", "bob", "refused")
    assert json.loads(refusal.details_json)["code"] == "role_required"


def test_cli_bad_input(cli: Any, tmp_path: Path) -> None:
    assert (
        cli("--user", "audrey", "--since", "soon", "--json", code=2)["error"]["code"]
        == "audit_filter_invalid"
    )
    assert (
        cli("--user", "audrey", "--limit", "0", "--json", code=2)["error"]["code"] == "audit_filter_invalid"
    )
    both = cli("--user", "audrey", "--csv", str(tmp_path / "x.csv"), "--json", code=2)
    assert both["error"]["code"] == "audit_output_conflict"
    assert not (tmp_path / "x.csv").exists()
