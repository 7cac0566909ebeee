"""``EnclaveAuthenticator``: the hub's embedded login against the enclave's local accounts (issue 7).

Accounts are made with ``enclave user add`` (no sign-up). A login is decided by
``enclave.users.check_login``: scrypt hashes compared in constant time, a lockout after repeated
failures (R-SEC-2), a TOTP code when the account has one (R-SEC-1), every attempt audited with the
client address. A refused login gets one bilingual message whatever the cause, so the form does not
tell an attacker which names exist, which are locked or which password was nearly right.

Issue 11: an expired account, or an analyst's whose projects have all ended, is refused (R-APP-17,
T6); a password set by a steward or past its age must be changed first (R-SEC-1): the login goes to
the change page (``hub_config.account_pages``, which also enrols TOTP devices) instead of the hub.
Open sessions are re-checked every ``auth_refresh_age`` seconds (``refresh_user``), so an account
that ends or is disabled while logged in must log in again, and is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Int, Unicode, default

from enclave import audit, users
from enclave import config as enclave_config
from hub_config import account_pages
from hub_config.account_pages import PasswordChangeRequired

T = TypeVar("T")

LOGIN_REFUSED = (
    "Invalid user name, password or verification code, or the account is locked for a while after "
    "repeated failures / 用户名、密码或动态验证码错误，或账户因多次失败已被暂时锁定"
)


class EnclaveAuthenticator(Authenticator):
    """Local accounts of the enclave's state database, with lockout and optional TOTP."""

    enclave_home = Unicode(
        help="The enclave home (state database, vault keys). Default: $ENCLAVE_HOME or ~/.enclave."
    ).tag(config=True)

    @default("enclave_home")
    def _default_enclave_home(self) -> str:
        return str(enclave_config.enclave_home())

    database_url = Unicode(
        help="The state database URL. Default: $ENCLAVE_DATABASE_URL, else the home's SQLite file."
    ).tag(config=True)

    @default("database_url")
    def _default_database_url(self) -> str:
        return enclave_config.database_url(self.paths.home)  # $ENCLAVE_DATABASE_URL[_FILE] or SQLite

    max_failed_logins = Int(
        users.DEFAULT_MAX_FAILURES,
        min=1,
        help="Wrong passwords or codes in a row that lock an account (R-SEC-2).",
    ).tag(config=True)

    lockout_seconds = Int(
        users.DEFAULT_LOCKOUT_SECONDS,
        min=1,
        help="How long, in seconds, an account stays locked after max_failed_logins failures.",
    ).tag(config=True)

    @default("request_otp")
    def _default_request_otp(self) -> bool:
        return True  # the field is shown to everyone; only accounts with TOTP enabled need it

    @default("otp_prompt")
    def _default_otp_prompt(self) -> str:
        return "Verification code (if enabled) / 动态验证码（如已启用）:"

    @property
    def paths(self) -> enclave_config.Paths:
        return enclave_config.Paths(enclave_config.enclave_home(self.enclave_home))

    def in_enclave(self, work: Callable[[Any], T]) -> T:
        """Run ``work(session)`` in one transaction of the enclave's state database (blocking)."""
        from enclave import db

        audit.use_vault(self.database_url, self.paths)  # the chain is keyed by this home's vault
        with db.session_scope(db.connect(self.database_url)) as session:
            return work(session)

    def _check(self, username: str, password: str, code: str | None, source: str | None) -> users.LoginResult:
        return self.in_enclave(
            lambda session: users.check_login(
                session,
                self.paths,
                username,
                password,
                code,
                max_failures=self.max_failed_logins,
                lockout_seconds=self.lockout_seconds,
                source=source,
            )
        )

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        """The login form, and the account pages: ``/hub/account/password``, ``/hub/account/totp``."""
        return account_pages.handlers()

    async def refresh_user(self, user: Any, handler: Any = None) -> bool:
        """False (log in again) once the account is disabled, ended, or must change its password."""
        reason = await asyncio.to_thread(
            self.in_enclave, lambda session: users.login_refusal(session, self.paths, user.name)
        )
        if reason is not None:
            self.log.warning("session of %r ended: %s", user.name, reason)
        return reason is None

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str:
        """The user name when the login is accepted; HTTP 403 with the bilingual message otherwise."""
        username = self.normalize_username(data.get("username") or "")
        password = data.get("password") or ""
        code = (data.get("otp") or "").strip() or None
        request = getattr(handler, "request", None)
        source = f"hub@{request.remote_ip}" if request is not None else "hub"
        result = await asyncio.to_thread(self._check, username, password, code, source)
        if result.change_required:  # the right credentials: the change page, not the hub
            raise PasswordChangeRequired(username, result.reason, LOGIN_REFUSED)
        if not result.ok:
            self.log.warning("login refused for %r from %s: %s", username[:64], source, result.reason)
            raise web.HTTPError(403, LOGIN_REFUSED)
        return username
