"""Password age, the forced change at first login, the self-service change and TOTP enrolment
(R-SEC-1, R-SEC-2), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from enclave import db, totp, users
from enclave.cli import app
from enclave.config import Paths
from enclave.db.models import AuditEvent, LocalUser
from enclave.errors import BadInput, Forbidden

GOOD = "Correct-Horse-9-Battery"
NEW = "Fresh-Staple-7-Lantern"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def add(sessions: sessionmaker[Session], name: str = "alice", **kw: Any) -> None:
    with sessions() as session, session.begin():
        users.add_user(session, name, GOOD, actor="steward", **kw)
        users.get_user(session, name).password_changed_at = T0.isoformat(timespec="microseconds")


def login(sessions: sessionmaker[Session], paths: Paths, *args: Any, **kw: Any) -> users.LoginResult:
    kw.setdefault("now", T0)
    with sessions() as session, session.begin():
        return users.check_login(session, paths, *args, **kw)


def change(sessions: sessionmaker[Session], name: str, old: str, new: str, **kw: Any) -> None:
    kw.setdefault("now", T0)
    with sessions() as session, session.begin():
        users.change_password(session, name, old, new, **kw)


def row(sessions: sessionmaker[Session], name: str = "alice") -> LocalUser:
    with sessions() as session:
        found = users.get_user(session, name)
        session.expunge(found)
        return found


def reasons(sessions: sessionmaker[Session], action: str = "user.login_fail") -> list[str]:
    with sessions() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
        return [json.loads(e.details_json).get("reason", "") for e in rows]


# ---- password age (R-SEC-1: periodic change) ----------------------------------------------------------


def test_a_password_older_than_the_maximum_age_must_be_changed(
    sessions: sessionmaker[Session], paths: Paths
) -> None:
    add(sessions)
    assert login(sessions, paths, "alice", GOOD, now=T0 + timedelta(days=89)).ok
    old = login(sessions, paths, "alice", GOOD, now=T0 + timedelta(days=91))
    assert (old.ok, old.reason, old.change_required) == (False, "password_expired", True)
    assert login(sessions, paths, "alice", GOOD, now=T0 + timedelta(days=91), password_max_age_days=120).ok
    assert reasons(sessions) == ["password_expired"]
    assert row(sessions).failed_logins == 0  # the right password: not a failure


def test_the_maximum_age_comes_from_the_governance_settings(
    sessions: sessionmaker[Session], paths: Paths
) -> None:
    add(sessions)
    (paths.home / "governance.yaml").write_text("password_max_age_days: 30\n", encoding="utf-8")
    assert users.password_max_age(paths) == 30
    assert login(sessions, paths, "alice", GOOD, now=T0 + timedelta(days=29)).ok
    assert login(sessions, paths, "alice", GOOD, now=T0 + timedelta(days=31)).reason == "password_expired"
    change(sessions, "alice", GOOD, NEW, now=T0 + timedelta(days=31))
    assert login(sessions, paths, "alice", NEW, now=T0 + timedelta(days=40)).ok  # the age starts again


# ---- the forced change at first login and after a steward's reset --------------------------------------


def test_a_steward_made_password_must_be_changed_at_the_first_login(
    sessions: sessionmaker[Session], paths: Paths
) -> None:
    add(sessions, must_change_password=True)
    first = login(sessions, paths, "alice", GOOD)
    assert (first.ok, first.reason, first.change_required) == (False, "password_change_required", True)
    assert not login(sessions, paths, "alice", "Wrong-Password-1").change_required  # only with the password
    change(sessions, "alice", GOOD, NEW)
    after = row(sessions)
    assert after.must_change_password is False and after.password_changed_at.startswith("2026-12-01T09:00")
    assert login(sessions, paths, "alice", NEW).ok
    assert not login(sessions, paths, "alice", GOOD).ok
    with sessions() as session:
        changed = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.password")).one()
        assert (changed.actor, json.loads(changed.details_json)) == ("alice", {"self_service": True})
        assert GOOD not in changed.details_json and NEW not in changed.details_json


def test_a_stewards_reset_forces_a_change_and_the_users_own_does_not(
    sessions: sessionmaker[Session], paths: Paths
) -> None:
    add(sessions)
    with sessions() as session, session.begin():
        users.set_password(session, "alice", NEW, actor="steward")
    assert login(sessions, paths, "alice", NEW).reason == "password_change_required"
    with sessions() as session, session.begin():
        users.set_password(session, "alice", "Another-Good-Pass-7", actor="alice")
    assert login(sessions, paths, "alice", "Another-Good-Pass-7").ok


def test_enclave_user_add_forces_the_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENCLAVE_DATABASE_URL", raising=False)
    home = tmp_path / "home"
    runner = CliRunner()
    for args, stdin in (
        (["init", "--actor", "steward"], None),
        (["user", "add", "bob", "--json"], GOOD + "\n"),
    ):
        result = runner.invoke(app, ["--home", str(home), *args], input=stdin)
        assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(app, ["--home", str(home), "user", "list", "--json"]).stdout)
    assert [(u["name"], u["must_change_password"]) for u in listed] == [("bob", True)]
    paths = Paths(home)
    with db.session_scope(db.connect(f"sqlite:///{paths.state_db}")) as session:
        assert users.check_login(session, paths, "bob", GOOD).reason == "password_change_required"


# ---- the change itself -----------------------------------------------------------------------------------


def test_a_wrong_current_password_is_refused_and_counted_towards_the_lockout(
    sessions: sessionmaker[Session], paths: Paths
) -> None:
    add(sessions, must_change_password=True)
    for i in range(users.DEFAULT_MAX_FAILURES - 1):
        with pytest.raises(Forbidden) as refused:
            change(sessions, "alice", f"Wrong-Password-{i}", NEW)
        assert refused.value.code == "password_change_refused" and refused.value.message_zh
    assert row(sessions).failed_logins == users.DEFAULT_MAX_FAILURES - 1  # committed despite the error
    assert login(sessions, paths, "alice", "Wrong-Password-x").reason == "bad_password"  # the fifth
    assert row(sessions).locked_until is not None
    with pytest.raises(Forbidden):
        change(sessions, "alice", GOOD, NEW)  # locked: even the right password cannot change it
    assert reasons(sessions)[-1] == "account_locked"
    with pytest.raises(Forbidden):
        change(sessions, "mallory", GOOD, NEW)
    assert reasons(sessions)[-1] == "unknown_user"
    change(sessions, "alice", GOOD, NEW, now=T0 + timedelta(minutes=16))  # the lock ran out
    assert row(sessions).failed_logins == 0


def test_the_new_password_meets_the_policy_and_differs_from_the_old(
    sessions: sessionmaker[Session], paths: Paths
) -> None:
    add(sessions, must_change_password=True)
    for new, code in (
        ("short-1A", "password_weak"),
        ("alice-Secret-2026", "password_weak"),
        (GOOD, "password_reused"),
    ):
        with pytest.raises(BadInput) as refused:
            change(sessions, "alice", GOOD, new)
        assert refused.value.code == code
    assert row(sessions).must_change_password is True
    assert row(sessions).failed_logins == 0  # the right current password: nothing counted


def test_an_expired_account_cannot_change_its_password(sessions: sessionmaker[Session], paths: Paths) -> None:
    add(sessions)
    with sessions() as session, session.begin():
        users.get_user(session, "alice").expires_on = "2026-11-30"
    with pytest.raises(Forbidden) as refused:
        change(sessions, "alice", GOOD, NEW, today=datetime(2026, 12, 1).date())
    assert refused.value.code == "password_change_refused"
    assert reasons(sessions) == ["account_expired"]
    assert login(sessions, paths, "alice", NEW).reason == "bad_password"


def test_refresh_ends_a_session_that_must_change_or_has_ended(
    sessions: sessionmaker[Session], paths: Paths
) -> None:
    add(sessions)
    with sessions() as session:
        assert users.login_refusal(session, paths, "alice", now=T0) is None
        assert users.login_refusal(session, paths, "alice", now=T0 + timedelta(days=91)) == "password_expired"
        assert users.login_refusal(session, paths, "nobody", now=T0) == "unknown_user"
    for _ in range(users.DEFAULT_MAX_FAILURES):
        login(sessions, paths, "alice", "Wrong-Password-1")
    with sessions() as session, session.begin():
        assert users.login_refusal(session, paths, "alice", now=T0) is None  # others' guesses end nothing
        users.lock_user(session, "alice", actor="steward")
    with sessions() as session:
        assert users.login_refusal(session, paths, "alice", now=T0) == "account_disabled"


def test_wrong_passwords_cost_the_same_for_every_kind_of_account(
    sessions: sessionmaker[Session], paths: Paths
) -> None:
    """Unknown, expired, must-change and ordinary accounts: the same queries for a wrong password."""
    add(sessions, "alice")
    add(sessions, "bob", must_change_password=True)
    add(sessions, "carl")
    with sessions() as session, session.begin():
        users.get_user(session, "carl").expires_on = "2020-01-01"
    statements: list[str] = []
    engine = sessions.kw["bind"]

    def trace(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", trace)
    try:
        work = {}
        for name in ("alice", "bob", "carl", "mallory"):
            statements.clear()
            assert login(sessions, paths, name, "Wrong-Password-1").reason in ("bad_password", "unknown_user")
            work[name] = list(statements)
    finally:
        event.remove(engine, "before_cursor_execute", trace)
    assert work["alice"] == work["bob"] == work["carl"] == work["mallory"]


# ---- TOTP enrolment by the account holder ------------------------------------------------------------


def test_totp_enrolment_needs_a_current_code_and_then_every_login_does(
    sessions: sessionmaker[Session], paths: Paths
) -> None:
    add(sessions)
    secret = totp.new_secret()
    secret_b32 = totp.to_base32(secret)
    code = totp.totp(secret, T0.timestamp())
    wrong = "000000" if code != "000000" else "111111"

    def enrol(c: str, secret_text: str = secret_b32, **kw: Any) -> None:
        with sessions() as session, session.begin():
            users.enroll_totp(session, paths, "alice", secret_text, c, now=T0, **kw)

    with pytest.raises(BadInput) as refused:
        enrol(wrong)
    assert refused.value.code == "totp_code_wrong" and row(sessions).totp_secret is None
    with pytest.raises(BadInput) as refused:
        enrol(code, "not base32!")
    assert refused.value.code == "totp_secret_invalid"
    enrol(code)
    stored = row(sessions).totp_secret
    assert stored is not None and secret_b32 not in stored  # encrypted with the vault key
    assert login(sessions, paths, "alice", GOOD).reason == "totp_required"
    assert login(sessions, paths, "alice", GOOD, code).reason == "bad_totp"  # the confirming code is used
    later = T0 + timedelta(seconds=60)
    assert login(sessions, paths, "alice", GOOD, totp.totp(secret, later.timestamp()), now=later).ok

    # a new device: the current password first, a wrong one counted
    other = totp.new_secret()
    other_b32, other_code = totp.to_base32(other), totp.totp(other, T0.timestamp())
    with pytest.raises(Forbidden) as refused:
        enrol(other_code, other_b32)
    assert refused.value.code == "password_required"
    with pytest.raises(Forbidden) as refused:
        enrol(other_code, other_b32, password="Wrong-1-Pass")
    assert refused.value.code == "password_change_refused" and row(sessions).failed_logins == 1
    assert row(sessions).totp_secret == stored
    enrol(other_code, other_b32, password=GOOD)
    assert row(sessions).totp_secret != stored
    with sessions() as session:
        enabled = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.totp_enable")).all()
        assert [(e.actor, json.loads(e.details_json)) for e in enabled] == [
            ("alice", {"self_service": True})
        ] * 2
