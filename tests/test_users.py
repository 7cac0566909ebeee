"""Local accounts: hashing, the password policy, TOTP (RFC 6238 vectors), lockout, the CLI, audit."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from enclave import audit, passwords, totp, users
from enclave.cli import app
from enclave.config import Paths
from enclave.db.models import AuditEvent
from enclave.errors import BadInput, NotFound

GOOD = "Correct-Horse-9-Battery"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def events(session: Session, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
    )


# ---- hashing ---------------------------------------------------------------------------------------


def test_hash_is_salted_and_verifies_only_the_same_password() -> None:
    first, second = passwords.hash_password(GOOD), passwords.hash_password(GOOD)
    assert first != second  # a fresh salt each time
    assert GOOD not in first
    assert passwords.verify_password(GOOD, first) and passwords.verify_password(GOOD, second)
    assert not passwords.verify_password(GOOD + "x", first)
    assert not passwords.verify_password(GOOD.lower(), first)
    assert not passwords.verify_password("", first)


@pytest.mark.parametrize(
    "stored", ["", "plain", "md5$1$2$3$aa$bb", "scrypt$x$8$1$00$00", "scrypt$16384$8$1$zz$00"]
)
def test_malformed_hashes_never_match(stored: str) -> None:
    assert passwords.verify_password(GOOD, stored) is False


def test_unicode_is_normalised_before_hashing() -> None:
    composed, decomposed = "Passwort-\u00e9-12345", "Passwort-e\u0301-12345"
    assert passwords.verify_password(decomposed, passwords.hash_password(composed))


@pytest.mark.parametrize(
    ("password", "codes"),
    [
        ("Short-1a", {"password_too_short"}),
        ("alice-Secret-2026", {"password_contains_username"}),
        ("ALICE-secret-2026", {"password_contains_username"}),
        ("alllowercaseletters", {"password_too_simple"}),
        ("abc", {"password_too_short", "password_too_simple"}),
        (" Leading-space-123", {"password_has_control_characters"}),
        ("Tab\tinside-Pass123", {"password_has_control_characters"}),
        ("x" * 1025 + "A1", {"password_too_long"}),
    ],
)
def test_policy_names_every_broken_rule(password: str, codes: set[str]) -> None:
    with pytest.raises(BadInput) as refused:
        passwords.check_policy("alice", password)
    assert refused.value.code == "password_weak"
    assert {r.code for r in refused.value.reasons} == codes
    assert all(r.message and r.message_zh for r in refused.value.reasons)


@pytest.mark.parametrize("password", [GOOD, "数据安全领地-口令-2026", "correct horse battery 7"])
def test_policy_accepts_strong_passwords(password: str) -> None:
    passwords.check_policy("alice", password)


# ---- TOTP ------------------------------------------------------------------------------------------

# RFC 6238 Appendix B: 8-digit codes for SHA-1, SHA-256 and SHA-512 seeds.
SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), RFC6238)
def test_totp_matches_rfc6238_vectors(at: int, sha1: str, sha256: str, sha512: str) -> None:
    for digest, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        assert totp.totp(SEEDS[digest], at, digits=8, digest=digest) == expected


def test_totp_accepts_one_step_of_drift_and_no_more() -> None:
    secret, at = totp.new_secret(), 1_800_000_015.0
    now_step = totp.time_step(at)
    for offset in (-1, 0, 1):
        code = totp.totp(secret, at + 30 * offset)
        assert totp.matching_step(secret, code, at) == now_step + offset
    for offset in (-2, 2):
        code = totp.totp(secret, at + 30 * offset)
        if code not in {totp.totp(secret, at + 30 * o) for o in (-1, 0, 1)}:
            assert totp.matching_step(secret, code, at) is None
    assert totp.matching_step(secret, "12345", at) is None
    assert totp.matching_step(secret, "abcdef", at) is None


def test_base32_and_uri_round_trip() -> None:
    secret = totp.new_secret()
    assert totp.from_base32(totp.to_base32(secret)) == secret
    uri = totp.provisioning_uri(secret, "alice")
    assert uri.startswith("otpauth://totp/Enclave%3Aalice?")
    assert f"secret={totp.to_base32(secret)}" in uri and "period=30" in uri


# ---- accounts and login -----------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "home")


def add(sessions: sessionmaker[Session], name: str = "alice", password: str = GOOD) -> None:
    with sessions() as session, session.begin():
        users.add_user(session, name, password, actor="steward")


def login(sessions: sessionmaker[Session], home: Paths, *args: Any, **kwargs: Any) -> users.LoginResult:
    with sessions() as session, session.begin():
        return users.check_login(session, home, *args, **kwargs)


def test_add_stores_only_a_hash_and_audits(sessions: sessionmaker[Session]) -> None:
    add(sessions)
    with sessions() as session:
        row = session.get(users.LocalUser, "alice")
        assert row is not None and GOOD not in row.password_hash
        assert [e.object for e in events(session, "user.add")] == ["user:alice"]
        assert audit.verify(session).ok


def test_add_refuses_duplicates_bad_names_and_weak_passwords(sessions: sessionmaker[Session]) -> None:
    add(sessions)
    for name, password, code in [
        ("alice", GOOD, "user_exists"),
        ("Alice", GOOD, "username_invalid"),
        ("../etc", GOOD, "username_invalid"),
        ("bob", "bob-is-my-Pass1", "password_weak"),
    ]:
        with pytest.raises(BadInput) as refused, sessions() as session, session.begin():
            users.add_user(session, name, password, actor="steward")
        assert refused.value.code == code
    with sessions() as session:
        assert [u["name"] for u in users.list_users(session)] == ["alice"]


def test_login_success_and_failure_are_audited(sessions: sessionmaker[Session], home: Paths) -> None:
    add(sessions)
    assert login(sessions, home, "alice", GOOD, now=T0).ok
    wrong = login(sessions, home, "alice", "Wrong-Password-1", now=T0)
    unknown = login(sessions, home, "mallory", GOOD, now=T0)
    assert (wrong.ok, wrong.reason) == (False, "bad_password")
    assert (unknown.ok, unknown.reason) == (False, "unknown_user")
    with sessions() as session:
        assert [e.actor for e in events(session, "user.login")] == ["alice"]
        fails = events(session, "user.login_fail")
        assert [json.loads(e.details_json)["reason"] for e in fails] == ["bad_password", "unknown_user"]
        assert all(GOOD not in e.details_json and "Wrong-Password" not in e.details_json for e in fails)


def test_five_failures_lock_for_fifteen_minutes_even_with_the_right_password(
    sessions: sessionmaker[Session], home: Paths
) -> None:
    add(sessions)
    for i in range(4):
        assert login(sessions, home, "alice", f"Wrong-Password-{i}", now=T0).reason == "bad_password"
    assert login(sessions, home, "alice", GOOD, now=T0).ok  # a success resets the count
    for i in range(5):
        assert login(sessions, home, "alice", f"Wrong-Password-{i}", now=T0).reason == "bad_password"
    assert login(sessions, home, "alice", GOOD, now=T0 + timedelta(minutes=14)).reason == "account_locked"
    assert login(sessions, home, "alice", GOOD, now=T0 + timedelta(minutes=15, seconds=1)).ok
    with sessions() as session:
        row = session.get(users.LocalUser, "alice")
        assert row is not None and row.failed_logins == 0 and row.locked_until is None


def test_lockout_is_configurable(sessions: sessionmaker[Session], home: Paths) -> None:
    add(sessions)
    for _ in range(2):
        login(sessions, home, "alice", "Wrong-Password-1", now=T0, max_failures=2, lockout_seconds=60)
    assert login(sessions, home, "alice", GOOD, now=T0 + timedelta(seconds=59)).reason == "account_locked"
    assert login(sessions, home, "alice", GOOD, now=T0 + timedelta(seconds=61)).ok


def test_steward_lock_and_unlock(sessions: sessionmaker[Session], home: Paths) -> None:
    add(sessions)
    with sessions() as session, session.begin():
        users.lock_user(session, "alice", actor="steward", reason="left the project")
    assert login(sessions, home, "alice", GOOD, now=T0).reason == "account_disabled"
    with sessions() as session, session.begin():
        users.unlock_user(session, "alice", actor="steward")
    assert login(sessions, home, "alice", GOOD, now=T0).ok
    with pytest.raises(NotFound), sessions() as session, session.begin():
        users.lock_user(session, "nobody", actor="steward")


def test_passwd_replaces_the_password_and_refuses_reuse(sessions: sessionmaker[Session], home: Paths) -> None:
    add(sessions)
    with pytest.raises(BadInput) as refused, sessions() as session, session.begin():
        users.set_password(session, "alice", GOOD, actor="alice")
    assert refused.value.code == "password_reused"
    with sessions() as session, session.begin():
        users.set_password(session, "alice", "Another-Good-Pass-7", actor="alice")
    assert not login(sessions, home, "alice", GOOD, now=T0).ok
    assert login(sessions, home, "alice", "Another-Good-Pass-7", now=T0).ok


def test_totp_required_once_enabled_and_codes_cannot_be_replayed(
    sessions: sessionmaker[Session], home: Paths
) -> None:
    add(sessions)
    with sessions() as session, session.begin():
        secret_b32, _ = users.enable_totp(session, home, "alice", actor="steward")
    secret = totp.from_base32(secret_b32)
    with sessions() as session:
        stored = session.get(users.LocalUser, "alice")
        assert stored is not None and secret_b32 not in (stored.totp_secret or "")
    key = home.vault / "keys" / users.TOTP_KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    missing = login(sessions, home, "alice", GOOD, now=T0)
    assert (missing.ok, missing.reason, missing.needs_totp) == (False, "totp_required", True)
    assert (
        login(
            sessions,
            home,
            "alice",
            GOOD,
            "000000" if totp.totp(secret, T0.timestamp()) != "000000" else "111111",
            now=T0,
        ).reason
        == "bad_totp"
    )
    code = totp.totp(secret, T0.timestamp())
    assert login(sessions, home, "alice", GOOD, code, now=T0).ok
    assert login(sessions, home, "alice", GOOD, code, now=T0).reason == "bad_totp"  # replay
    later = T0 + timedelta(seconds=30)
    assert login(sessions, home, "alice", GOOD, totp.totp(secret, later.timestamp()), now=later).ok
    # a right code with a wrong password is still a wrong password
    assert login(sessions, home, "alice", "Wrong-Password-1", code, now=later).reason == "bad_password"


def test_totp_secret_is_useless_without_the_vault_key(sessions: sessionmaker[Session], home: Paths) -> None:
    add(sessions)
    with sessions() as session, session.begin():
        secret_b32, _ = users.enable_totp(session, home, "alice", actor="steward")
    (home.vault / "keys" / users.TOTP_KEY_FILE).unlink()  # a new key is made: the old token fails
    code = totp.totp(totp.from_base32(secret_b32), T0.timestamp())
    assert login(sessions, home, "alice", GOOD, code, now=T0).reason == "bad_totp"


# ---- CLI ---------------------------------------------------------------------------------------

runner = CliRunner()


def cli(home: Path, *args: str, stdin: str | None = None, code: int = 0) -> Any:
    result = runner.invoke(app, ["--home", str(home), *args], input=stdin, env={"ENCLAVE_DATABASE_URL": ""})
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ENCLAVE_DATABASE_URL", raising=False)
    cli(tmp_path / "home", "init", "--actor", "steward")
    return tmp_path / "home"


def test_cli_add_reads_the_password_from_stdin(cli_home: Path) -> None:
    out = cli(cli_home, "user", "add", "alice", "--actor", "steward", "--json", stdin=GOOD + "\n")
    assert out == {"user": "alice", "done": "added"}
    listed = cli(cli_home, "user", "list", "--json")
    assert [(u["name"], u["totp"], u["disabled"]) for u in listed] == [("alice", False, False)]
    assert GOOD not in json.dumps(listed)
    home = Paths(cli_home)
    from enclave import db

    with db.session_scope(db.connect(f"sqlite:///{home.state_db}")) as session:
        assert users.check_login(session, home, "alice", GOOD).ok
        add_events = events(session, "user.add")
        assert [(e.actor, e.object) for e in add_events] == [("steward", "user:alice")]


def test_cli_refuses_weak_or_missing_passwords_with_codes(cli_home: Path) -> None:
    weak = cli(cli_home, "user", "add", "bob", "--json", stdin="bob12345678XY\n", code=2)
    assert weak["error"]["code"] == "password_weak"
    assert "password_contains_username" in {r["code"] for r in weak["error"]["reasons"]}
    assert all(r["message_zh"] for r in weak["error"]["reasons"])
    assert (
        cli(cli_home, "user", "add", "bob", "--json", stdin="", code=2)["error"]["code"] == "password_missing"
    )
    assert (
        cli(cli_home, "user", "add", "Bob!", "--json", stdin=GOOD, code=2)["error"]["code"]
        == "username_invalid"
    )
    assert cli(cli_home, "user", "list", "--json") == []


def test_cli_lock_unlock_totp_passwd_are_audited(cli_home: Path) -> None:
    cli(cli_home, "user", "add", "carol", stdin=GOOD + "\n")
    cli(cli_home, "user", "lock", "carol", "--reason", "on leave", "--actor", "steward")
    assert cli(cli_home, "user", "list", "--json")[0]["disabled"] is True
    cli(cli_home, "user", "unlock", "carol", "--actor", "steward")
    totp_out = cli(cli_home, "user", "totp", "carol", "--json")
    assert totp_out["uri"].startswith("otpauth://totp/") and totp_out["secret"] in totp_out["uri"]
    cli(cli_home, "user", "passwd", "carol", stdin="Fresh-Password-2027\n")
    assert cli(cli_home, "user", "lock", "nobody", "--json", code=2)["error"]["code"] == "user_not_found"
    audit_out = cli(cli_home, "audit", "verify")
    assert audit_out is not None
    from enclave import db

    with db.session_scope(db.connect(f"sqlite:///{Paths(cli_home).state_db}")) as session:
        actions = [
            e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.object == "user:carol"))
        ]
        assert actions == ["user.add", "user.lock", "user.unlock", "user.totp_enable", "user.password"]
        assert "Fresh-Password" not in json.dumps(
            [e.details_json for e in session.scalars(select(AuditEvent))]
        )
