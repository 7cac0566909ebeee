"""Local accounts: hashing, the password policy, TOTP (RFC 6238 vectors), lockout, the CLI, audit."""

from __future__ import annotations

import json
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit, passwords, totp, users
from enclave.config import Paths
from enclave.db.models import AuditEvent, LocalUser
from enclave.errors import BadInput, NotFound
from tests.harness.cli import enclave_cli

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
        row = session.get(LocalUser, "alice")
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
        row = session.get(LocalUser, "alice")
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
        stored = session.get(LocalUser, "alice")
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

cli = enclave_cli


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ENCLAVE_DATABASE_URL", raising=False)
    cli(tmp_path / "home", "init", "--actor", "steward")
    return tmp_path / "home"


def test_cli_add_without_forced_change_is_audited(cli_home: Path) -> None:
    cli(cli_home, "user", "add", "carol", "--no-forced-change", "--json", stdin=GOOD + "\n")
    home = Paths(cli_home)
    from enclave import db

    with db.session_scope(db.connect(f"sqlite:///{home.state_db}")) as session:
        assert users.check_login(session, home, "carol", GOOD).ok
        (added,) = events(session, "user.add")
        assert json.loads(added.details_json)["must_change_password"] is False


def test_cli_add_reads_the_password_from_stdin(cli_home: Path) -> None:
    out = cli(cli_home, "user", "add", "alice", "--actor", "steward", "--json", stdin=GOOD + "\n")
    assert out == {"user": "alice", "done": "added"}
    listed = cli(cli_home, "user", "list", "--json")
    assert [(u["name"], u["totp"], u["disabled"]) for u in listed] == [("alice", False, False)]
    assert GOOD not in json.dumps(listed)
    home = Paths(cli_home)
    from enclave import db

    with db.session_scope(db.connect(f"sqlite:///{home.state_db}")) as session:
        # The steward chose the password: the first login must replace it (R-SEC-1).
        assert users.check_login(session, home, "alice", GOOD).reason == "password_change_required"
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


# ---- concurrent attempts (issue #14 item 1) --------------------------------------------------------


def parallel(count: int, attempt: Any) -> list[Any]:
    """Run ``attempt(i)`` on ``count`` threads released together; each opens its own session."""
    barrier = threading.Barrier(count)

    def run(i: int) -> Any:
        barrier.wait()
        return attempt(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_parallel_wrong_passwords_lock_the_account(sessions: sessionmaker[Session], home: Paths) -> None:
    add(sessions)
    reasons = parallel(23, lambda i: login(sessions, home, "alice", f"Wrong-Password-{i}", now=T0).reason)
    assert sorted(set(reasons)) == ["account_locked", "bad_password"]
    assert reasons.count("bad_password") == users.DEFAULT_MAX_FAILURES  # no failure goes uncounted
    assert login(sessions, home, "alice", GOOD, now=T0).reason == "account_locked"
    with sessions() as session:
        fails = events(session, "user.login_fail")
        assert len(fails) == 24
        details = [json.loads(e.details_json) for e in fails]
        counted = [d["failed_logins"] for d in details if d["reason"] == "bad_password"]
        assert sorted(counted) == list(range(1, users.DEFAULT_MAX_FAILURES + 1))
        assert [d["failed_logins"] for d in details if "failed_logins" in d and "locked_until" in d] == [
            users.DEFAULT_MAX_FAILURES
        ]


def test_a_locked_account_stays_locked_under_parallel_attempts(
    sessions: sessionmaker[Session], home: Paths
) -> None:
    add(sessions)
    for i in range(users.DEFAULT_MAX_FAILURES):
        login(sessions, home, "alice", f"Wrong-Password-{i}", now=T0)
    with sessions() as session:
        before = session.get(LocalUser, "alice")
        assert before is not None and before.locked_until is not None
    reasons = parallel(
        8, lambda i: login(sessions, home, "alice", GOOD if i % 2 else "Wrong-Password-x", now=T0).reason
    )
    assert reasons == ["account_locked"] * 8
    with sessions() as session:
        after = session.get(LocalUser, "alice")
        assert after is not None and after.locked_until == before.locked_until  # not extended, not lifted


class PausedVerify:
    """Wraps the real ``verify_password``: the attempt with ``password`` waits after hashing until
    released, so another attempt can change the account in between (a deterministic race)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, password: str) -> None:
        self.real, self.password = passwords.verify_password, password
        self.hashed, self.release = threading.Event(), threading.Event()
        monkeypatch.setattr(passwords, "verify_password", self)

    def __call__(self, password: str, stored: str) -> bool:
        ok = self.real(password, stored)
        if password == self.password and not self.hashed.is_set():
            self.hashed.set()
            assert self.release.wait(30)
        return ok


def test_a_success_cannot_lift_a_lock_set_while_it_was_checked(
    sessions: sessionmaker[Session], home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(sessions)
    paused = PausedVerify(monkeypatch, GOOD)
    with ThreadPoolExecutor(1) as pool:
        right = pool.submit(login, sessions, home, "alice", GOOD, now=T0)
        assert paused.hashed.wait(30)  # it has read the row: not locked, no failures
        for i in range(users.DEFAULT_MAX_FAILURES):
            assert login(sessions, home, "alice", f"Wrong-Password-{i}", now=T0).reason == "bad_password"
        paused.release.set()
        assert right.result(30).reason == "account_locked"
    with sessions() as session:
        row = session.get(LocalUser, "alice")
        assert row is not None and row.locked_until is not None  # the lock was not erased


def enable(sessions: sessionmaker[Session], home: Paths) -> bytes:
    with sessions() as session, session.begin():
        secret_b32, _ = users.enable_totp(session, home, "alice", actor="steward")
    return totp.from_base32(secret_b32)


def test_one_totp_code_sent_in_parallel_logs_in_once(sessions: sessionmaker[Session], home: Paths) -> None:
    add(sessions)
    code = totp.totp(enable(sessions, home), T0.timestamp())
    results = parallel(4, lambda i: login(sessions, home, "alice", GOOD, code, now=T0))
    assert sorted(r.reason for r in results) == ["bad_totp", "bad_totp", "bad_totp", "ok"]
    with sessions() as session:
        assert len(events(session, "user.login")) == 1


def test_a_totp_code_used_while_another_attempt_checked_it_is_refused(
    sessions: sessionmaker[Session], home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(sessions)
    code = totp.totp(enable(sessions, home), T0.timestamp())
    paused = PausedVerify(monkeypatch, GOOD)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(login, sessions, home, "alice", GOOD, code, now=T0)
        assert paused.hashed.wait(30)
        assert login(sessions, home, "alice", GOOD, code, now=T0).ok
        paused.release.set()
        assert first.result(30).reason == "bad_totp"


def test_a_password_changed_while_it_was_checked_no_longer_logs_in(
    sessions: sessionmaker[Session], home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(sessions)
    paused = PausedVerify(monkeypatch, GOOD)
    with ThreadPoolExecutor(1) as pool:
        attempt = pool.submit(login, sessions, home, "alice", GOOD, now=T0)
        assert paused.hashed.wait(30)
        with sessions() as session, session.begin():
            users.set_password(session, "alice", "Another-Good-Pass-7", actor="steward")
        paused.release.set()
        assert not attempt.result(30).ok


# ---- unknown names cost the same as known ones (issue #14 item 9) ------------------------------------


def test_dummy_hash_has_the_parameters_of_real_hashes() -> None:
    dummy = passwords.DUMMY_HASH.split("$")
    real = passwords.hash_password(GOOD).split("$")
    assert dummy[:4] == real[:4] == [passwords.SCHEME, str(passwords.COST_N), "8", "1"]
    assert [len(part) for part in dummy[4:]] == [len(part) for part in real[4:]]
    assert not passwords.verify_password(GOOD, passwords.DUMMY_HASH)


def test_unknown_names_do_the_same_hashing_and_database_work(
    sessions: sessionmaker[Session], home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(sessions)
    verified: list[str] = []
    real_verify = passwords.verify_password

    def counting(password: str, stored: str) -> bool:
        verified.append(stored)
        return real_verify(password, stored)

    monkeypatch.setattr(passwords, "verify_password", counting)
    statements: list[str] = []

    def trace(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", trace)
    try:
        work = {}
        for name in ("alice", "mallory", "../etc/passwd"):
            verified.clear()
            statements.clear()
            result = login(sessions, home, name, "Wrong-Password-1", now=T0)
            assert not result.ok
            work[name] = (len(verified), list(statements))
            if name != "alice":
                assert verified == [passwords.DUMMY_HASH]
    finally:
        event.remove(engine, "before_cursor_execute", trace)
    assert work["alice"][0] == 1
    assert work["mallory"] == work["alice"] == work["../etc/passwd"]


def test_lock_expiry_does_not_depend_on_the_database_collation(
    sessions: sessionmaker[Session], home: Paths, database_url: str
) -> None:
    """An ICU collation ignores punctuation; a stamp from before microseconds were written must
    still expire on time."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite compares text byte by byte")
    add(sessions)
    with sessions() as session, session.begin():
        session.execute(
            text('ALTER TABLE local_users ALTER COLUMN locked_until TYPE varchar(40) COLLATE "und-x-icu"')
        )
        row = session.get(LocalUser, "alice")
        assert row is not None
        row.locked_until = "2026-12-01T09:15:00+00:00"  # the layout older versions stored
    assert login(sessions, home, "alice", GOOD, now=datetime(2026, 12, 1, 9, 14, 59, 500000, UTC)).reason == (
        "account_locked"
    )
    assert login(sessions, home, "alice", GOOD, now=datetime(2026, 12, 1, 9, 15, 0, 500000, UTC)).ok
