"""The base handlers: hub login (HubOAuth cookie for pages, ``Authorization: token`` for the API), the
language, security headers, and the one mapping of ``EnclaveError`` to HTTP (``enclave.gateway.http_errors``:
Forbidden 403, NotFound 404, Refused 422, BadInput 400, no login 401)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from jupyterhub.services.auth import HubOAuth, HubOAuthenticated
from tornado.web import RequestHandler

from enclave.errors import EnclaveError
from enclave.gateway.auth import Unauthenticated
from enclave.gateway.http_errors import error_body, http_error_body, status_for
from export_review.web.context import WebContext
from export_review.web.i18n import Translator, pick_language

# Pages load nothing from elsewhere and run no script; images only from this service.
CSP = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


class ServiceHandler(HubOAuthenticated, RequestHandler):
    """Everything the service's handlers share."""

    ctx: WebContext

    def initialize(self, ctx: WebContext, hub_auth: HubOAuth) -> None:
        self.ctx = ctx
        self.hub_auth = hub_auth

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", CSP)

    @property
    def user(self) -> str:
        """The hub user name is the enclave user name."""
        model = self.current_user
        if not model or model.get("kind", "user") != "user":
            raise Unauthenticated(
                "login_required",
                "Log in through JupyterHub, or send `Authorization: token <your hub token>`",
                "请通过 JupyterHub 登录，或发送 `Authorization: token <您的中心令牌>`",
            )
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


class ApiHandler(ServiceHandler):
    """JSON in and out; errors in the gateway's one JSON shape."""

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(value, ensure_ascii=False, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        status, body = self.error_status(status_code, kwargs)
        self.write_json(body, status)


class PageHandler(ServiceHandler):
    """Server-rendered pages in the reader's language; errors as a page in both shapes' words."""

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
        t = Translator(self.lang)
        other = "en" if self.lang == "zh" else "zh"
        namespace.update(
            t=t,
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
