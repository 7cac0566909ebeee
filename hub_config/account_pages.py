"""The hub's own account pages (issue 11; R-SEC-1): change the password, enrol a TOTP device.

They live inside the hub (``EnclaveAuthenticator.get_handlers``): ``/hub/account/password`` and
``/hub/account/totp``. Forms carry the hub's xsrf token, which the hub checks on every POST.

A login whose password must be changed first (set by a steward, or older than the governance
setting) is no full login: ``EnclaveLoginHandler`` sends the browser to the change page with a
short-lived signed cookie naming the account, whose password and code were just checked. The page
asks the current password again and the new one twice; once it is changed the user is logged in.
A logged-in user changes their password on the same page.

TOTP enrolment shows a new secret as text and as an ``otpauth://`` URI (no QR library, nothing
loaded from outside) and stores it only once a current code confirms it. The pending secret travels
in a hidden field signed with the hub's cookie secret, bound to the account and to a few minutes.
Replacing an enrolled secret needs the current password.

Pages are English or Simplified Chinese: ``?lang=zh`` or ``?lang=en``, else the browser's languages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from jinja2 import Environment, FileSystemLoader, select_autoescape
from jupyterhub.handlers.base import BaseHandler
from jupyterhub.handlers.login import LoginHandler
from jupyterhub.utils import maybe_future, url_path_join
from sqlalchemy.orm import Session
from tornado import web
from tornado.httputil import url_concat

from enclave import totp, users
from enclave.errors import EnclaveError, Forbidden
from enclave.services import i18n
from enclave.services.i18n import Labels, pick_language

PENDING_COOKIE = "enclave-password-change"
PENDING_SECONDS = 600  # the forced change must follow the login within this time
ENROL_FIELD = "enclave-totp-enrol"
ENROL_SECONDS = 900
T = TypeVar("T")

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
)

LABELS: Labels = {
    "title_password": ("Change your password", "修改密码"),
    "title_totp": ("Verification codes (TOTP)", "动态验证码（TOTP）"),
    "nav_home": ("Hub home", "平台首页"),
    "nav_password": ("Password", "密码"),
    "nav_totp": ("Verification codes", "动态验证码"),
    "nav_lang": ("中文", "English"),
    "signed_in_as": ("Account", "账户"),
    "first_login": (
        "Your password was set by a data steward: choose your own before you continue.",
        "您的密码由数据管理员设置：请先设置您自己的密码再继续。",
    ),
    "expired": (
        "Your password has expired: choose a new one before you continue.",
        "您的密码已过期：请先设置新密码再继续。",
    ),
    "current_password": ("Current password", "当前密码"),
    "new_password": ("New password", "新密码"),
    "new_password_again": ("New password again", "再次输入新密码"),
    "policy": (
        "At least 12 characters and three kinds of: lower case, upper case, digits, symbols, letters of "
        "other scripts; not your user name; not your current password.",
        "至少 12 个字符，且至少包含以下三类：小写字母、大写字母、数字、符号、其他文字；"
        "不得包含用户名，不得与当前密码相同。",
    ),
    "change_button": ("Change password", "修改密码"),
    "changed": ("Your password has been changed.", "密码已修改。"),
    "mismatch": ("The two new passwords differ.", "两次输入的新密码不一致。"),
    "totp_on": (
        "Verification codes are on for your account: every login asks for one.",
        "您的账户已启用动态验证码：每次登录都需要输入。",
    ),
    "totp_off": (
        "Verification codes are off. Add this secret to an authenticator app, then type the code it shows.",
        "尚未启用动态验证码。请将以下密钥添加到验证器应用，然后输入其显示的验证码。",
    ),
    "totp_replace": (
        "To replace it (a new device), add this new secret and confirm with a code and your current "
        "password.",
        "如需更换（新设备），请添加以下新密钥，并以验证码和当前密码确认。",
    ),
    "secret": ("Secret", "密钥"),
    "uri": ("otpauth URI", "otpauth 链接"),
    "code": ("Code from the app", "应用显示的验证码"),
    "enrol_button": ("Turn on verification codes", "启用动态验证码"),
    "replace_button": ("Replace the secret", "更换密钥"),
    "enrolled": (
        "Verification codes are on: your next login asks for one.",
        "动态验证码已启用：下次登录时需要输入。",
    ),
    "enrol_expired": ("The page has expired: start again.", "页面已过期：请重新开始。"),
}


@dataclass(frozen=True)
class Translator(i18n.Translator):
    labels: ClassVar[Labels] = LABELS

    def error(self, error: EnclaveError) -> list[str]:
        """The error's message and each broken rule, in the page's language."""
        return [self.message(error.message, error.message_zh)] + [
            self.message(r.message, r.message_zh) for r in error.reasons
        ]


class PasswordChangeRequired(web.HTTPError):
    """The credentials were right but the password must be changed first (R-SEC-1).

    A 403 for any caller that does not know it; ``EnclaveLoginHandler`` turns it into the change page.
    """

    def __init__(self, username: str, reason: str, message: str) -> None:
        super().__init__(403, message)
        self.username = username
        self.reason = reason


class AccountHandler(BaseHandler):
    """What both pages share: the language, the enclave session, rendering."""

    @property
    def t(self) -> Translator:
        return Translator(
            pick_language(self.get_argument("lang", None), self.request.headers.get("Accept-Language"))
        )

    @property
    def source(self) -> str:
        return f"hub@{self.request.remote_ip}"

    async def in_enclave(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one enclave transaction on a worker thread (the database calls block)."""
        return await asyncio.to_thread(self.authenticator.in_enclave, work)

    def page_url(self, page: str, **query: str) -> str:
        url = url_path_join(self.hub.base_url, "account", page)
        return url_concat(url, {k: v for k, v in query.items() if v}) if query else url

    def render_page(self, template: str, status: int = 200, **ns: Any) -> None:
        t = self.t
        other = "en" if t.lang == "zh" else "zh"
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")  # secrets and forms: never kept by a cache
        self.finish(
            TEMPLATES.get_template(template).render(
                t=t,
                lang=t.lang,
                xsrf=self.xsrf_token.decode("ascii"),
                home_url=url_path_join(self.hub.base_url, "home"),
                password_url=self.page_url("password", lang=t.lang),
                totp_url=self.page_url("totp", lang=t.lang),
                switch_lang=url_concat(self.request.path, {"lang": other}),
                who=self.current_user.name if self.current_user else None,
                **ns,
            )
        )


def _pending_value(name: str, reason: str) -> str:
    return f"{name}|{reason}|{int(time.time())}"


class EnclaveLoginHandler(LoginHandler):
    """The hub's login form; a login whose password must change first goes to the change page."""

    async def post(self) -> None:
        try:
            await super().post()
        except PasswordChangeRequired as change:
            path = url_path_join(self.hub.base_url, "account")
            self._set_cookie(PENDING_COOKIE, _pending_value(change.username, change.reason), path=path)
            target = url_path_join(self.hub.base_url, "account", "password")
            next_url = self.get_argument("next", "")
            self.redirect(url_concat(target, {"next": next_url} if next_url else {}))


class PasswordPage(AccountHandler):
    """Change the password: forced after such a login, or by a logged-in user (R-SEC-1)."""

    def _pending(self) -> tuple[str, str] | None:
        raw = self.get_secure_cookie(PENDING_COOKIE, max_age_days=1)
        if raw is None:
            return None
        try:
            name, reason, stamp = raw.decode("utf-8").split("|")
            fresh = 0 <= time.time() - int(stamp) <= PENDING_SECONDS
        except ValueError:
            return None
        return (name, reason) if fresh else None

    def _who(self) -> tuple[str, str | None] | None:
        """(account, why a change is forced or None), or None when nobody may use the page."""
        if self.current_user:
            return self.current_user.name, None
        pending = self._pending()
        return pending if pending else None

    def _show(self, who: tuple[str, str | None], status: int = 200, **ns: Any) -> None:
        name, forced = who
        notice = {"password_change_required": "first_login", "password_expired": "expired"}.get(forced or "")
        self.render_page(
            "account_password.html",
            status,
            name=name,
            notice=notice,
            next_url=self.get_argument("next", ""),
            **ns,
        )

    async def get(self) -> None:
        who = self._who()
        if who is None:
            self.redirect(url_concat(self.settings["login_url"], {"next": self.page_url("password")}))
            return
        self._show(who)

    async def post(self) -> None:
        who = self._who()
        if who is None:
            raise web.HTTPError(403, "Log in first / 请先登录")
        name = who[0]
        current = self.get_body_argument("current", "")
        new = self.get_body_argument("new", "")
        if new != self.get_body_argument("new2", ""):
            self._show(who, 400, errors=[self.t("mismatch")])
            return
        auth = self.authenticator
        try:
            await self.in_enclave(
                lambda session: users.change_password(
                    session,
                    name,
                    current,
                    new,
                    max_failures=auth.max_failed_logins,
                    lockout_seconds=auth.lockout_seconds,
                    source=self.source,
                )
            )
        except EnclaveError as error:
            self._show(who, 403 if isinstance(error, Forbidden) else 400, errors=self.t.error(error))
            return
        if self.current_user:
            self._show(who, done=True)
            return
        self.clear_cookie(PENDING_COOKIE, path=url_path_join(self.hub.base_url, "account"))
        user = await self._log_in(name)
        if user is None:
            raise web.HTTPError(403, "Login refused / 登录被拒绝")
        self.redirect(self.get_next_url(user))

    async def _log_in(self, name: str) -> Any:
        """Finish the login the change interrupted, as ``Authenticator.get_authenticated_user`` would."""
        auth = self.authenticator
        model: dict[str, Any] = {"name": name, "auth_state": None, "user_info": None, "admin": None}
        if not await maybe_future(auth.check_blocked_users(name, model)):
            return None
        if not (auth.allow_all or await maybe_future(auth.check_allowed(name, model))):
            return None
        model["admin"] = await maybe_future(auth.is_admin(self, model))
        model = await auth.run_post_auth_hook(self, model)
        user = await self.auth_to_user(model)
        self.set_login_cookie(user)
        self._jupyterhub_user = user
        return user


class TotpPage(AccountHandler):
    """Enrol (or replace) the account's TOTP secret, confirmed by a current code (R-SEC-1)."""

    def _pending_secret(self, name: str) -> str | None:
        raw = self.get_body_argument("pending", "")
        value = self.get_secure_cookie(ENROL_FIELD, raw, max_age_days=ENROL_SECONDS / 86400) if raw else None
        if value is None:
            return None
        owner, _, secret = value.decode("ascii").partition("|")
        return secret if owner == name else None

    def _show(self, name: str, secret_b32: str, enrolled: bool, status: int = 200, **ns: Any) -> None:
        pending = self.create_signed_value(ENROL_FIELD, f"{name}|{secret_b32}").decode("ascii")
        uri = totp.provisioning_uri(totp.from_base32(secret_b32), name)
        self.render_page(
            "account_totp.html",
            status,
            secret=secret_b32,
            uri=uri,
            pending=pending,
            enrolled=enrolled,
            **ns,
        )

    @web.authenticated
    async def get(self) -> None:
        name = self.current_user.name
        enrolled = await self.in_enclave(lambda session: users.has_totp(session, name))
        self._show(name, totp.to_base32(totp.new_secret()), enrolled)

    @web.authenticated
    async def post(self) -> None:
        name = self.current_user.name
        secret_b32 = self._pending_secret(name)
        if secret_b32 is None:
            enrolled = await self.in_enclave(lambda session: users.has_totp(session, name))
            self._show(
                name, totp.to_base32(totp.new_secret()), enrolled, 400, errors=[self.t("enrol_expired")]
            )
            return
        code = self.get_body_argument("code", "").strip()
        password = self.get_body_argument("current", "") or None
        auth = self.authenticator
        try:
            await self.in_enclave(
                lambda session: users.enroll_totp(
                    session,
                    auth.paths,
                    name,
                    secret_b32,
                    code,
                    password=password,
                    max_failures=auth.max_failed_logins,
                    lockout_seconds=auth.lockout_seconds,
                    source=self.source,
                )
            )
        except EnclaveError as error:
            enrolled = await self.in_enclave(lambda session: users.has_totp(session, name))
            status = 403 if isinstance(error, Forbidden) else 400
            self._show(name, secret_b32, enrolled, status, errors=self.t.error(error))
            return
        self.render_page("account_totp.html", enrolled=True, done=True)


def handlers() -> list[tuple[str, type[BaseHandler]]]:
    """The routes the authenticator adds to the hub (the hub prefixes them with ``/hub``)."""
    return [
        ("/login", EnclaveLoginHandler),
        ("/account/password", PasswordPage),
        ("/account/totp", TotpPage),
    ]
