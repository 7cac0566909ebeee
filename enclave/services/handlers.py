"""The handlers every browser-facing hub service shares (export review, the steward console, the runs
service): hub login
(HubOAuth cookie for pages, ``Authorization: token`` for the API), the reader's language, security
headers, streamed uploads, and the one mapping of ``EnclaveError`` to HTTP
(``enclave.services.http_errors``: Forbidden 403, NotFound 404, Refused 422, BadInput 400, no login 401).

A handler is initialised with ``ctx`` (what the service's operations need) and ``hub_auth``.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, ClassVar
from urllib.parse import urlencode

from jupyterhub.services.auth import HubOAuth, HubOAuthenticated, UserNotAllowed
from tornado.httputil import parse_body_arguments
from tornado.web import RequestHandler, stream_request_body

from enclave.errors import BadInput, EnclaveError
from enclave.services.auth import Unauthenticated
from enclave.services.http_errors import (
    body_too_large,
    check_content_length,
    error_body,
    http_error_body,
    json_object,
    status_for,
)
from enclave.services.i18n import Translator, pick_language

# Pages load nothing from elsewhere and run no script; images only from the service itself.
CSP = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The console's look (its runs pages share it): styles from the service's own stylesheet only, no inline
# style, no script.
STYLESHEET_CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# A download is never rendered as a page of the service's origin.
DOWNLOAD_CSP = "default-src 'none'; sandbox"
MAX_UPLOAD_BYTES = 110 * 1024 * 1024  # a little above the domain's cap, which gives the precise refusal
MAX_FORM_BYTES = 1024 * 1024  # every other body (votes, forms): the server's own limit


def login_required() -> Unauthenticated:
    return Unauthenticated(
        "login_required",
        "Log in through JupyterHub, or send `Authorization: token <your hub token>`",
        "请通过 JupyterHub 登录，或发送 `Authorization: token <您的中心令牌>`",
    )


class UploadSlots:
    """Uploads in progress, per user: at most ``limit`` at once, so one user cannot fill the memory."""

    def __init__(self, limit: int, code: str = "export_uploads_busy") -> None:
        self.limit = limit
        self.code = code
        self.active: Counter[str] = Counter()

    def acquire(self, user: str) -> None:
        if self.active[user] >= self.limit:
            raise BadInput(
                self.code,
                f"You already have {self.limit} uploads in progress: wait for one to finish",
                f"您已有 {self.limit} 个上传正在进行：请等待其中一个完成",
                details={"limit": self.limit},
            )
        self.active[user] += 1

    def release(self, user: str) -> None:
        self.active[user] -= 1
        if self.active[user] <= 0:
            del self.active[user]


class ServiceHandler(HubOAuthenticated, RequestHandler):
    """Everything a service's handlers share."""

    ctx: Any
    csp: ClassVar[str] = CSP
    _slots: UploadSlots | None = None
    _slot_user: str | None = None

    def initialize(self, ctx: Any, hub_auth: HubOAuth) -> None:
        self.ctx = ctx
        self.hub_auth = hub_auth

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", self.csp)

    @property
    def user(self) -> str:
        """The hub user name is the enclave user name."""
        model = self.current_user
        if not model or model.get("kind", "user") != "user":
            raise login_required()
        return str(model["name"])

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, EnclaveError):
            self.application.settings["log"].info(
                "%s %s refused: %s", self.request.method, self.request.path, value.code
            )
            return
        super().log_exception(typ, value, tb)

    def error_status(self, status_code: int, kwargs: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if isinstance(error, EnclaveError):
            status = status_for(error)
            return status, error_body(error, status)
        return status_code, http_error_body(status_code)

    def hold_slot(self, slots: UploadSlots, user: str) -> None:
        """Take one of ``user``'s slots for the request's large body; it is given back when the request
        ends, however it ends."""
        slots.acquire(user)
        self._slots, self._slot_user = slots, user

    def _release_slot(self) -> None:
        if self._slots is not None and self._slot_user is not None:
            self._slots.release(self._slot_user)
            self._slot_user = None

    def on_finish(self) -> None:
        self._release_slot()

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self._release_slot()

    def send_download(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """A file to save, never to render: attachment, sandboxed, not sniffed."""
        safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name) or "download"
        self.set_header("Content-Type", content_type)
        self.set_header("Content-Disposition", f'attachment; filename="{safe}"')
        self.set_header("Content-Security-Policy", DOWNLOAD_CSP)
        self.finish(data)


@stream_request_body
class ApiHandler(ServiceHandler):
    """JSON in and out; errors in the gateway's one JSON shape.

    The body streams in, so one over ``body_cap`` is refused in that shape (413 ``body_too_large``)
    before it is read, instead of by the server's bare 400 after its ``max_body_size``;
    ``json_body`` reads it as a JSON object (400 ``body_invalid``).
    """

    body_cap: int = MAX_FORM_BYTES
    _body: bytearray

    async def prepare(self) -> None:
        self._body = bytearray()
        check_content_length(self.request.headers.get("Content-Length"), self.body_cap)

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._body += chunk
        if len(self._body) > self.body_cap:
            error = body_too_large(self.body_cap)
            self.send_error(413, exc_info=(type(error), error, None))

    def json_body(self) -> dict[str, Any]:
        return json_object(bytes(self._body))

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(value, ensure_ascii=False, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        status, body = self.error_status(status_code, kwargs)
        self.write_json(body, status)


class PageHandler(ServiceHandler):
    """Server-rendered pages in the reader's language; errors as a page (``error.html``) in both
    languages' words. A service sets ``translator`` to its ``Translator`` with its labels."""

    translator: ClassVar[type[Translator]] = Translator

    @property
    def lang(self) -> str:
        requested = self.get_query_argument("lang", None)
        return pick_language(requested, self.request.headers.get("Accept-Language"))

    def href(self, path: str, **query: str) -> str:
        """A link inside the service that keeps an explicitly chosen language."""
        if self.get_query_argument("lang", None) in ("en", "zh"):
            query = {"lang": self.lang, **query}
        base = self.hub_auth.base_url.rstrip("/")
        return f"{base}/{path.lstrip('/')}" + (f"?{urlencode(query)}" if query else "")

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        other = "en" if self.lang == "zh" else "zh"
        namespace.update(
            t=self.translator(self.lang),
            lang=self.lang,
            href=self.href,
            switch_lang=f"{self.request.path}?{urlencode({'lang': other})}",
            who=(self.current_user or {}).get("name", ""),
        )
        return namespace

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        status, body = self.error_status(status_code, kwargs)
        self.set_status(status)
        self.render("error.html", status=status, errors=body["errors"])


def page_errors(error: EnclaveError) -> tuple[int, list[dict[str, Any]]]:
    """The HTTP status (the one mapping, ``enclave.services.http_errors``) and what the page lists:
    the error itself, then each reason it gives, every one in both languages."""
    status = status_for(error)
    top = {"code": error.code, "message": {"en": error.message, "zh": error.message_zh}}
    return status, [top, *(error_body(error, status)["errors"] if error.reasons else [])]


class StylesheetPage(PageHandler):
    """A page in the console's look (the console's pages, the runs pages): styles from the service's
    own stylesheet only, and an error page that lists the error itself, then each reason it gives."""

    csp: ClassVar[str] = STYLESHEET_CSP

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if isinstance(error, EnclaveError):
            status, errors = page_errors(error)
        else:
            status, body = self.error_status(status_code, kwargs)
            errors = body["errors"]
        self.set_status(status)
        self.render("error.html", status=status, errors=errors)


@stream_request_body
class UploadHandler(ServiceHandler):
    """A POST whose body is an upload: the caller is known, and holds one of their upload slots, before
    a byte of the body is read; everything else keeps the server's small body limit.

    ``prepare`` identifies the caller from the hub token or the login cookie's token without the xsrf
    check, which needs the form body; ``upload_user`` parses the body, after which ``self.user`` runs
    the full check (xsrf included) as on every other route. The cap is the application's
    ``max_upload_bytes`` setting (default ``MAX_UPLOAD_BYTES``).
    """

    _body: bytearray

    @property
    def max_upload_bytes(self) -> int:
        return int(self.settings.get("max_upload_bytes", MAX_UPLOAD_BYTES))

    async def prepare(self) -> None:
        self._body = bytearray()
        if self.request.method != "POST":
            return
        user = await self._identify()
        cap = self.max_upload_bytes
        check_content_length(self.request.headers.get("Content-Length"), cap)
        self.hold_slot(self.settings["upload_slots"], user)
        self.request.connection.set_max_body_size(cap)

    async def _identify(self) -> str:
        token = self.hub_auth.get_token(self)
        model = None
        if token:
            session_id = self.hub_auth.get_session_id(self)
            model = await self.hub_auth.user_for_token(token, session_id=session_id, sync=False)
        if model:
            try:
                model = self.check_hub_user(model)
            except UserNotAllowed:
                model = None
        if not model or model.get("kind", "user") != "user":
            raise login_required()
        return str(model["name"])

    def data_received(self, chunk: bytes) -> None:
        self._body += chunk

    def upload_user(self) -> str:
        """Parse the streamed body into the request's arguments and files, then check the caller fully."""
        self._read_form()
        user = self.user
        if user != self._slot_user:
            raise login_required()
        return user

    def _read_form(self) -> None:
        parse_body_arguments(
            self.request.headers.get("Content-Type", ""),
            bytes(self._body),
            self.request.body_arguments,
            self.request.files,
            self.request.headers,
        )
        for name, values in self.request.body_arguments.items():
            self.request.arguments.setdefault(name, []).extend(values)


class NotFoundApi(ApiHandler):
    """Any other path under a service's ``api/``: 404 in the JSON error shape."""

    def prepare(self) -> None:
        self.write_json(http_error_body(404), 404)
