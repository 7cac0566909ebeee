"""``EnclaveAuthenticator``: the hub's embedded login against the enclave's local accounts (issue 7).

Accounts are made with ``enclave user add`` (no sign-up). A login is decided by
``enclave.users.check_login``: scrypt hashes compared in constant time, a lockout after repeated
failures (R-SEC-2), a TOTP code when the account has one (R-SEC-1), every attempt audited with the
client address. A refused login gets one bilingual message whatever the cause, so the form does not
tell an attacker which names exist, which are locked or which password was nearly right.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Int, Unicode, default

from enclave import audit, users
from enclave import config as enclave_config

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

    def _check(self, username: str, password: str, code: str | None, source: str | None) -> users.LoginResult:
        from enclave import db

        audit.use_vault(self.database_url, self.paths)  # the chain is keyed by this home's vault
        with db.session_scope(db.connect(self.database_url)) as session:
            return users.check_login(
                session,
                self.paths,
                username,
                password,
                code,
                max_failures=self.max_failed_logins,
                lockout_seconds=self.lockout_seconds,
                source=source,
            )

    async def authenticate(self, handler: Any, data: dict[str, str]) -> str:
        """The user name when the login is accepted; HTTP 403 with the bilingual message otherwise."""
        username = self.normalize_username(data.get("username") or "")
        password = data.get("password") or ""
        code = (data.get("otp") or "").strip() or None
        request = getattr(handler, "request", None)
        source = f"hub@{request.remote_ip}" if request is not None else "hub"
        result = await asyncio.to_thread(self._check, username, password, code, source)
        if not result.ok:
            self.log.warning("login refused for %r from %s: %s", username[:64], source, result.reason)
            raise web.HTTPError(403, LOGIN_REFUSED)
        return username
