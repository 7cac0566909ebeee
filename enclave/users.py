"""Local accounts of the embedded hub login (issue 7; R-SEC-1..4, R-SEC-6; issue 11: R-APP-17, T6).

Accounts are created by a steward (``enclave user add``), never by sign-up. A password is stored
as a salted scrypt hash (``enclave.passwords``); the TOTP secret is encrypted with a key kept in
the vault apart from the state database (R-SEC-8). ``check_login`` is the one place a login is
decided: failed attempts are counted and lock the account for a while (R-SEC-2), and every
attempt, change, lock and unlock is audited (R-SEC-6, R-AUD-6).

Issue 11: an account ends by itself on ``expires_on`` (the earlier of its project's and its DUA's
end, set by ``enclave.accounts``; R-APP-17), and an analyst account whose projects have all ended
logs in no more (T6). A password set by someone else (``must_change_password``) or older than the
governance setting ``password_max_age_days`` must be changed before the next full login (R-SEC-1):
``check_login`` then answers ``change_required`` and the hub sends the user to its change page,
which calls ``change_password``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import ColumnElement, case, null, or_, select, update
from sqlalchemy.orm import Session

from enclave import audit, passwords, totp
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db.models import LocalUser, Project, ProjectMember, StaffRole
from enclave.errors import BadInput, Forbidden, NotFound
from enclave.files import private_dir, write_private

USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
DEFAULT_MAX_FAILURES = 5
DEFAULT_LOCKOUT_SECONDS = 15 * 60
TOTP_KEY_FILE = "totp.fernet"
DEFAULT_PASSWORD_MAX_AGE_DAYS = 90  # R-SEC-1 periodic change; governance.yaml may set another
# Reasons for which the credentials are right but the password must be changed first.
CHANGE_REASONS = frozenset({"password_change_required", "password_expired"})
ENDED_PROJECT_STATES = frozenset({"expired", "destroyed"})


@dataclass(frozen=True)
class LoginResult:
    """The outcome of one attempt; ``reason`` is for the audit log, never shown to the user."""

    ok: bool
    reason: str
    needs_totp: bool = False

    @property
    def change_required(self) -> bool:
        """Right credentials, but the password must be changed before a full login (R-SEC-1)."""
        return self.reason in CHANGE_REASONS


def check_username(name: str) -> str:
    if not USERNAME_PATTERN.fullmatch(name or ""):
        raise BadInput(
            "username_invalid",
            f"Invalid user name {name!r}: use lower-case letters, digits, '.', '_', '-'; start with a letter",
            f"用户名 {name!r} 无效：只能使用小写字母、数字、“.”、“_”或“-”，并以字母开头",
        )
    return name


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def get_user(session: Session, name: str) -> LocalUser:
    user = session.get(LocalUser, name)
    if user is None:
        raise NotFound("user_not_found", f"No local account {name!r}", f"本地账户 {name!r} 不存在")
    return user


def _audit(session: Session, action: AuditAction, name: str, actor: str, **details: Any) -> None:
    audit.record(session, action, actor=actor, obj=f"user:{name}", details=details)


def add_user(
    session: Session, name: str, password: str, *, actor: str, must_change_password: bool = False
) -> LocalUser:
    """A new account with a password that meets the policy; ``user_exists`` if the name is taken.

    ``must_change_password``: the password was chosen by the steward, so the user must replace it
    at the first login (R-SEC-1; ``enclave user add`` sets it). An Office approval recorded before
    the account existed gives it its end date now (``enclave.accounts.account_expiry``, R-APP-17).
    """
    from enclave.accounts import account_expiry  # enclave.accounts builds on this module

    check_username(name)
    passwords.check_policy(name, password)
    if session.get(LocalUser, name) is not None:
        raise BadInput("user_exists", f"The account {name!r} exists already", f"账户 {name!r} 已存在")
    stamp = audit.now_iso()
    expiry = account_expiry(session, name)
    user = LocalUser(
        name=name,
        password_hash=passwords.hash_password(password),
        created_at=stamp,
        password_changed_at=stamp,
        failed_logins=0,
        disabled=False,
        expires_on=expiry.isoformat() if expiry else None,
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    details: dict[str, Any] = {"must_change_password": must_change_password}
    if expiry is not None:
        details["expires_on"] = expiry.isoformat()
    _audit(session, AuditAction.USER_ADD, name, actor, **details)
    return user


def _reused() -> BadInput:
    return BadInput(
        "password_reused", "The new password must differ from the current one", "新密码不得与当前密码相同"
    )


def set_password(session: Session, name: str, password: str, *, actor: str) -> None:
    """Replace the password (a steward's reset or the user's change); lifts an automatic lock.

    A reset by anyone but the account holder must be changed at the next login (R-SEC-1).
    """
    user = get_user(session, name)
    passwords.check_policy(name, password)
    if passwords.verify_password(password, user.password_hash):
        raise _reused()
    user.password_hash = passwords.hash_password(password)
    user.password_changed_at = audit.now_iso()
    user.failed_logins = 0
    user.locked_until = None
    user.must_change_password = actor != name
    _audit(session, AuditAction.USER_PASSWORD, name, actor, must_change_password=user.must_change_password)


def lock_user(session: Session, name: str, *, actor: str, reason: str = "") -> None:
    """Disable the account until a steward unlocks it (R-SEC-4)."""
    user = get_user(session, name)
    user.disabled = True
    _audit(session, AuditAction.USER_LOCK, name, actor, reason=reason)


def unlock_user(session: Session, name: str, *, actor: str) -> None:
    """Lift both the steward's lock and an automatic lockout."""
    user = get_user(session, name)
    user.disabled = False
    user.failed_logins = 0
    user.locked_until = None
    _audit(session, AuditAction.USER_UNLOCK, name, actor)


def list_users(session: Session, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every account without its secrets."""
    current = _now(now)
    rows = session.scalars(select(LocalUser).order_by(LocalUser.name))
    return [
        {
            "name": u.name,
            "created_at": u.created_at,
            "password_changed_at": u.password_changed_at,
            "disabled": u.disabled,
            "locked_until": u.locked_until if _locked(u, current) else None,
            "failed_logins": u.failed_logins,
            "totp": u.totp_secret is not None,
            "expires_on": u.expires_on,
            "must_change_password": u.must_change_password,
        }
        for u in rows
    ]


# ---- TOTP secrets, encrypted with a key kept in the vault ---------------------------------------


def _totp_key_path(paths: Paths) -> Path:
    return paths.vault / "keys" / TOTP_KEY_FILE


def _fernet(paths: Paths) -> Fernet:
    path = _totp_key_path(paths)
    if not path.exists():
        private_dir(path.parent)
        write_private(path, Fernet.generate_key(), replace=False)  # a concurrent creator wins
    return Fernet(path.read_bytes().strip())


def enable_totp(session: Session, paths: Paths, name: str, *, actor: str) -> tuple[str, str]:
    """A new TOTP secret for the account (replacing any earlier one): ``(base32 secret, otpauth URI)``.

    Shown once; only its encrypted form is stored.
    """
    user = get_user(session, name)
    secret = totp.new_secret()
    _store_totp(paths, user, secret, None)
    _audit(session, AuditAction.USER_TOTP_ENABLE, name, actor)
    return totp.to_base32(secret), totp.provisioning_uri(secret, name)


def _store_totp(paths: Paths, user: LocalUser, secret: bytes, last_step: int | None) -> None:
    user.totp_secret = _fernet(paths).encrypt(secret).decode("ascii")
    user.totp_last_step = last_step


def has_totp(session: Session, name: str) -> bool:
    return get_user(session, name).totp_secret is not None


def enroll_totp(
    session: Session,
    paths: Paths,
    name: str,
    secret_b32: str,
    code: str,
    *,
    password: str | None = None,
    now: datetime | None = None,
    max_failures: int = DEFAULT_MAX_FAILURES,
    lockout_seconds: int = DEFAULT_LOCKOUT_SECONDS,
    source: str | None = None,
) -> None:
    """The account holder enrols a TOTP secret shown to them, proved by a current code (R-SEC-1).

    Only then is the secret stored (encrypted, as ``enable_totp`` does); the confirming code cannot
    log in afterwards. Replacing an enrolled secret needs the current password: a wrong one counts
    as a failed login and is committed before ``password_change_refused`` is raised.
    """
    user = get_user(session, name)
    attempt = _Attempt(name, name, _now(now), max_failures, lockout_seconds, source)
    if user.totp_secret is not None:
        if not password:
            raise Forbidden(
                "password_required",
                "Replacing the verification-code secret needs your current password",
                "更换动态口令密钥需要输入当前密码",
            )
        _check_current_password(session, attempt, password)
    try:
        secret = totp.from_base32(secret_b32)
    except (ValueError, TypeError):
        secret = b""
    if len(secret) != totp.SECRET_BYTES:
        raise BadInput(
            "totp_secret_invalid", "The secret is not a valid TOTP secret", "密钥不是有效的动态口令密钥"
        )
    step = totp.matching_step(secret, code or "", attempt.at.timestamp())
    if step is None:
        raise BadInput(
            "totp_code_wrong",
            "The code does not match the secret: check the device's clock and type the current code",
            "验证码与密钥不符：请检查设备时间并输入当前验证码",
        )
    _store_totp(paths, user, secret, step)
    audit.record(
        session,
        AuditAction.USER_TOTP_ENABLE,
        actor=name,
        obj=f"user:{name}",
        details={"self_service": True},
        source=source,
    )


def _totp_secret(paths: Paths, token: str) -> bytes | None:
    try:
        return _fernet(paths).decrypt(token.encode("ascii"))
    except InvalidToken:
        return None  # the key changed: no code can match, the login fails (default deny)


# ---- login ---------------------------------------------------------------------------------------
#
# The row is read without a lock and the slow checks (scrypt, TOTP) run outside any lock; the
# decision is then one conditional UPDATE, re-checked by the database against the row as it is
# now (PostgreSQL re-evaluates the WHERE after waiting for a concurrent writer; SQLite has one
# writer at a time). So parallel attempts cannot lose a failure, lift a lock set meanwhile, or use
# one TOTP code twice.


def _locked(user: LocalUser, now: datetime) -> bool:
    return user.locked_until is not None and datetime.fromisoformat(user.locked_until) > now


def _stamp(moment: datetime) -> str:
    """A UTC ISO time in one fixed layout, so two stamps compare as strings (in SQL too)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _not_locked(session: Session, stamp: str) -> ColumnElement[bool]:
    """No lock, or one that has run out at ``stamp``, compared in the database."""
    # Stamps are UTC ISO strings, so byte order is time order (older ones, without microseconds,
    # included). PostgreSQL's collation may not be byte order (ICU ignores punctuation); SQLite's is.
    locked_until: ColumnElement[str | None] = LocalUser.locked_until
    if session.get_bind().dialect.name == "postgresql":
        locked_until = locked_until.collate("C")
    return or_(locked_until.is_(None), locked_until <= stamp)


@dataclass(frozen=True)
class _Attempt:
    name: str  # as typed, for the audit log
    lookup: str  # the name queried: "" (never an account) when ``name`` is not a valid user name
    at: datetime
    max_failures: int
    lockout_seconds: int
    source: str | None

    @property
    def stamp(self) -> str:
        return _stamp(self.at)


def password_max_age(paths: Paths) -> int:
    """The governance setting ``password_max_age_days`` (R-SEC-1); 90 where the module is missing."""
    try:
        from enclave.applications.settings import load_governance
    except ImportError:
        return DEFAULT_PASSWORD_MAX_AGE_DAYS
    return load_governance(paths).password_max_age_days


def _ended_reason(session: Session, name: str, expires_on: str | None, today: date) -> str | None:
    """``account_expired`` past the account's end date (R-APP-17: usable through that day);
    ``projects_ended`` for an account with no platform role whose projects have all ended (T6)."""
    if expires_on is not None and date.fromisoformat(expires_on) < today:
        return "account_expired"
    if session.scalar(select(StaffRole.id).where(StaffRole.username == name).limit(1)) is not None:
        return None
    projects = session.execute(
        select(Project.period_end, Project.state)
        .join(ProjectMember, ProjectMember.project_id == Project.id)
        .where(ProjectMember.username == name)
    ).all()
    # No project at all is not "ended": a new account files its application first.
    if projects and all(
        state in ENDED_PROJECT_STATES or date.fromisoformat(end) < today for end, state in projects
    ):
        return "projects_ended"
    return None


def ended_reason(session: Session, name: str, *, today: date | None = None) -> str | None:
    """``account_expired``, ``projects_ended`` or None for the account ``name`` on ``today``."""
    expires_on = session.scalar(select(LocalUser.expires_on).where(LocalUser.name == name))
    return _ended_reason(session, name, expires_on, _today(today, datetime.now(UTC)))


def _change_reason(must_change: bool, changed_at: str, at: datetime, max_age_days: int) -> str | None:
    if must_change:
        return "password_change_required"
    changed = datetime.fromisoformat(changed_at)
    if changed.tzinfo is None:
        changed = changed.replace(tzinfo=UTC)
    if at - changed > timedelta(days=max_age_days):
        return "password_expired"
    return None


def _today(today: date | None, at: datetime) -> date:
    from enclave.lifecycle import enclave_today  # the lifecycle imports the project model layer

    return today or enclave_today(at)


def check_login(
    session: Session,
    paths: Paths,
    name: str,
    password: str,
    code: str | None = None,
    *,
    now: datetime | None = None,
    today: date | None = None,
    max_failures: int = DEFAULT_MAX_FAILURES,
    lockout_seconds: int = DEFAULT_LOCKOUT_SECONDS,
    password_max_age_days: int | None = None,
    source: str | None = None,
) -> LoginResult:
    """Decide one login attempt and audit it. Commit the session even when the attempt fails.

    An unknown name costs the same scrypt work and the same queries as a wrong password, so the
    answer's timing does not tell which names exist. ``max_failures`` wrong passwords or codes in
    a row lock the account for ``lockout_seconds`` (R-SEC-2); a correct login resets the count.
    Safe under concurrent attempts on the same account (see above).

    With the right credentials, an account past its end date (``account_expired``, R-APP-17) or
    whose projects have all ended (``projects_ended``, T6) is refused; ``today`` replaces the
    enclave's date (tests). A password the user must change (``password_change_required``) or older
    than ``password_max_age_days`` (default: the governance setting; ``password_expired``) is no
    full login either: the result's ``change_required`` sends the user to the change page (R-SEC-1).
    These checks run only after the password matched, so they add no work to a wrong guess.
    """
    lookup = name if USERNAME_PATTERN.fullmatch(name or "") else ""
    attempt = _Attempt(name, lookup, _now(now), max_failures, lockout_seconds, source)
    user = session.execute(
        select(
            LocalUser.password_hash,
            LocalUser.totp_secret,
            LocalUser.expires_on,
            LocalUser.must_change_password,
            LocalUser.password_changed_at,
        ).where(LocalUser.name == lookup)
    ).one_or_none()
    stored = user.password_hash if user is not None else passwords.DUMMY_HASH
    if not passwords.verify_password(password, stored) or user is None:
        return _refuse(session, attempt, "bad_password")
    step = None
    if user.totp_secret is not None:
        secret = _totp_secret(paths, user.totp_secret)
        step = totp.matching_step(secret, code or "", attempt.at.timestamp()) if secret else None
        if step is None:
            return _refuse(session, attempt, "bad_totp" if code else "totp_required")
    ended = _ended_reason(session, lookup, user.expires_on, _today(today, attempt.at))
    if ended is not None:  # the right credentials: not a failure to count
        return _fail(session, name, ended, source, expires_on=user.expires_on)
    claim = (
        update(LocalUser)
        .where(
            LocalUser.name == lookup,
            LocalUser.password_hash == user.password_hash,  # not changed meanwhile
            LocalUser.totp_secret.is_(None)
            if user.totp_secret is None
            else LocalUser.totp_secret == user.totp_secret,
            LocalUser.disabled.is_(False),
            _not_locked(session, attempt.stamp),
        )
        .values(failed_logins=0, locked_until=None)
        .returning(LocalUser.name)
        .execution_options(synchronize_session=False)
    )
    if step is not None:  # compare-and-set: each code logs in once
        unused = or_(LocalUser.totp_last_step.is_(None), LocalUser.totp_last_step < step)
        claim = claim.where(unused).values(totp_last_step=step)
    if session.execute(claim).one_or_none() is None:
        # locked, disabled, password or secret changed, or the code used since the row was read
        return _refuse(session, attempt, "bad_password" if step is None else "bad_totp")
    max_age = password_max_age_days if password_max_age_days is not None else password_max_age(paths)
    change = _change_reason(user.must_change_password, user.password_changed_at, attempt.at, max_age)
    if change is not None:
        return _fail(session, name, change, source, password_changed_at=user.password_changed_at)
    audit.record(
        session,
        AuditAction.USER_LOGIN,
        actor=name,
        obj=f"user:{name}",
        details={"totp": step is not None},
        source=source,
    )
    return LoginResult(True, "ok")


def login_refusal(
    session: Session, paths: Paths, name: str, *, now: datetime | None = None, today: date | None = None
) -> str | None:
    """Why a hub session of ``name`` must end now (the hub re-checks open sessions), or None.

    The same rules as ``check_login`` after the password: disabled, expired, projects ended, a
    password to change. An automatic lockout is left out: failed guesses by someone else must not
    end the holder's session.
    """
    user = session.get(LocalUser, name)
    if user is None:
        return "unknown_user"
    if user.disabled:
        return "account_disabled"
    at = _now(now)
    ended = _ended_reason(session, name, user.expires_on, _today(today, at))
    if ended is not None:
        return ended
    return _change_reason(user.must_change_password, user.password_changed_at, at, password_max_age(paths))


def _refused_change() -> Forbidden:
    return Forbidden(
        "password_change_refused",
        "The current password is wrong, or the account is locked, disabled or expired",
        "当前密码错误，或账户已被锁定、停用或已到期",
    )


def _check_current_password(session: Session, attempt: _Attempt, password: str) -> str:
    """The stored hash when ``password`` is the account's and the account is not locked.

    Otherwise the refusal is counted like a failed login (R-SEC-2), committed at once (the error
    that follows rolls the caller's transaction back), and ``password_change_refused`` raised.
    """
    row = session.execute(
        select(LocalUser.password_hash, LocalUser.disabled, LocalUser.locked_until).where(
            LocalUser.name == attempt.lookup
        )
    ).one_or_none()
    stored = row.password_hash if row is not None else passwords.DUMMY_HASH
    if passwords.verify_password(password, stored) and row is not None:
        locked = row.locked_until is not None and datetime.fromisoformat(row.locked_until) > attempt.at
        if not row.disabled and not locked:
            return row.password_hash
    _refuse(session, attempt, "bad_password")  # a lock or a disabled account is reported, not counted
    session.commit()
    raise _refused_change()


def change_password(
    session: Session,
    name: str,
    old_password: str,
    new_password: str,
    *,
    now: datetime | None = None,
    today: date | None = None,
    max_failures: int = DEFAULT_MAX_FAILURES,
    lockout_seconds: int = DEFAULT_LOCKOUT_SECONDS,
    source: str | None = None,
) -> None:
    """The account holder replaces their password (R-SEC-1): the hub's change page.

    The current password is checked as a login is: a wrong one counts towards the lockout and is
    committed before ``password_change_refused`` is raised (so call this in a transaction of its
    own). The new one must meet the policy and differ from the current one. Clears
    ``must_change_password``, stamps ``password_changed_at`` and audits ``user.password``.
    An expired account cannot change its password.
    """
    lookup = name if USERNAME_PATTERN.fullmatch(name or "") else ""
    attempt = _Attempt(name, lookup, _now(now), max_failures, lockout_seconds, source)
    stored = _check_current_password(session, attempt, old_password)
    user = session.execute(select(LocalUser.expires_on).where(LocalUser.name == lookup)).one()
    ended = _ended_reason(session, lookup, user.expires_on, _today(today, attempt.at))
    if ended is not None:
        _fail(session, name, ended, source, change_password=True)
        session.commit()
        raise _refused_change()
    passwords.check_policy(name, new_password)
    if passwords.verify_password(new_password, stored):
        raise _reused()
    changed = session.execute(
        update(LocalUser)
        .where(
            LocalUser.name == lookup,
            LocalUser.password_hash == stored,  # not changed meanwhile
            LocalUser.disabled.is_(False),
            _not_locked(session, attempt.stamp),
        )
        .values(
            password_hash=passwords.hash_password(new_password),
            password_changed_at=_stamp(attempt.at),
            must_change_password=False,
            failed_logins=0,
            locked_until=None,
        )
        .returning(LocalUser.name)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if changed is None:  # locked or changed while the hashes were computed
        _refuse(session, attempt, "bad_password")
        session.commit()
        raise _refused_change()
    session.expire_all()  # the UPDATE bypassed the identity map
    audit.record(
        session,
        AuditAction.USER_PASSWORD,
        actor=name,
        obj=f"user:{name}",
        details={"self_service": True},
        source=source,
    )


def _refuse(session: Session, attempt: _Attempt, reason: str) -> LoginResult:
    """Count a failure on an active account (locking it at ``max_failures``) and audit the refusal.

    A disabled or locked account is not counted: the refusal says why. An unknown name runs the
    same two statements, which match no row.
    """
    # A lock that has run out starts the count again, as if the account had never been locked.
    count = case((LocalUser.locked_until.is_(None), LocalUser.failed_logins + 1), else_=1)
    until = _stamp(attempt.at + timedelta(seconds=attempt.lockout_seconds))
    counted = session.execute(
        update(LocalUser)
        .where(LocalUser.name == attempt.lookup, LocalUser.disabled.is_(False))
        .where(_not_locked(session, attempt.stamp))
        .values(failed_logins=count, locked_until=case((count >= attempt.max_failures, until), else_=null()))
        .returning(LocalUser.failed_logins, LocalUser.locked_until)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    state = session.execute(
        select(LocalUser.disabled, LocalUser.locked_until).where(LocalUser.name == attempt.lookup)
    ).one_or_none()
    details: dict[str, Any] = {}
    if counted is not None:
        details["failed_logins"] = counted.failed_logins
        if counted.locked_until is not None:
            details["locked_until"] = counted.locked_until
    elif state is None:
        reason = "unknown_user"
    elif state.disabled:
        reason = "account_disabled"
    else:
        reason, details["locked_until"] = "account_locked", state.locked_until
    return _fail(session, attempt.name, reason, attempt.source, **details)


def _fail(session: Session, name: str, reason: str, source: str | None, **details: Any) -> LoginResult:
    audit.record(
        session,
        AuditAction.USER_LOGIN_FAIL,
        actor=name[:100] or "-",
        obj=f"user:{name[:100]}",
        outcome="refused",
        details={"reason": reason, **details},
        source=source,
    )
    return LoginResult(False, reason, needs_totp=reason == "totp_required")
