"""The gateway's HTTP API. Handlers are thin: authenticate, call the runner, shape the answer.

GET    {base}api/views                list the project's views and their columns
GET    {base}api/views/<name>         one view
POST   {base}api/query                {"sql", "synthetic"?, "query_id"?, "format"?: "arrow"|"json"}
GET    {base}api/queries/<query_id>   where the caller's query is: starting, queued (position), running
DELETE {base}api/queries/<query_id>   cancel a running query
POST   {base}api/auth-cache/clear     forget cached token answers (a steward's or the revocation hook's token)
GET    {base}api/health               liveness (no authentication, no data)
GET    {base}metrics                  Prometheus metrics (a token with `read:metrics`: monitoring, stewards)

A guard refusal's error entries carry two optional fields besides ``code`` and ``message``: ``hint``
(how to rewrite the query) and ``doc`` (the guard docs' section, ``docs/guard.md#<anchor>``, which the
analyst's client ships), each ``{"en", "zh"}``.

The caller is identified as soon as the headers arrive, before any body byte is read, and a body over
``MAX_BODY_BYTES`` is refused (413) from its Content-Length or, when chunked, while it streams.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tornado.web import HTTPError, RequestHandler, stream_request_body

from enclave import metrics
from enclave.errors import BadInput, EnclaveError
from enclave.gateway import results, views
from enclave.gateway.runner import QueryRunner, check_query_id
from enclave.guard.violations import guidance
from enclave.query_service import ServerUnavailable, check_analyst_access
from enclave.services.auth import PROJECT_HEADER, Caller, TokenAuthenticator, token_from_header
from enclave.services.http_errors import (
    body_too_large,
    check_content_length,
    error_body,
    http_error_body,
    json_object,
    status_for,
)
from enclave.services.hub import check_metrics_reader, check_revoker, clear_token_cache

MAX_SQL_CHARS = 100_000
MAX_BODY_BYTES = 256 * 1024


@stream_request_body
class BaseHandler(RequestHandler):
    """JSON in, JSON (or Arrow) out; every error in the one shape of ``http_errors``.

    Bodies stream in (``stream_request_body``) so that ``prepare`` can refuse an oversized body or
    an unknown caller before a byte of the body is read; the body is collected in ``data_received``.
    """

    runner: QueryRunner
    authenticator: TokenAuthenticator
    json_max_rows: int
    authenticate = True  # identify the caller in ``prepare``, before the body is read

    def initialize(self, runner: QueryRunner, authenticator: TokenAuthenticator, json_max_rows: int) -> None:
        self.runner = runner
        self.authenticator = authenticator
        self.json_max_rows = json_max_rows
        self._body = bytearray()
        self._caller: Caller | None = None

    async def prepare(self) -> None:
        check_content_length(self.request.headers.get("Content-Length"), MAX_BODY_BYTES)
        if self.authenticate:
            self._caller = await self.authenticator.caller(
                self.request.headers.get("Authorization"), self.request.headers.get(PROJECT_HEADER)
            )

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._body += chunk
        if len(self._body) > MAX_BODY_BYTES:
            error = body_too_large(MAX_BODY_BYTES)
            self.send_error(413, exc_info=(type(error), error, None))

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def check_xsrf_cookie(self) -> None:
        """Token-authenticated API: no cookies are accepted, so there is nothing to forge."""

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(value, ensure_ascii=False, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        if isinstance(error, EnclaveError):
            status = status_for(error)
            if isinstance(error, ServerUnavailable):
                self.set_header("Retry-After", str(error.retry_after_s))
            body = error_body(error, status)
            for entry in body["errors"]:  # a guard refusal says how to rewrite the query, and where to read
                entry.update(guidance(entry["code"]))
            self.write_json(body, status)
            return
        self.write_json(http_error_body(status_code), status_code)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, EnclaveError):
            self.log_refusal(value)
            return
        super().log_exception(typ, value, tb)

    def log_refusal(self, error: EnclaveError) -> None:
        self.application.settings["log"].info(
            "%s %s refused: %s", self.request.method, self.request.uri, error.code
        )

    @property
    def source(self) -> str:
        """The caller's address, as the audit and alerts record it (R-QRY-5)."""
        return f"gateway@{self.request.remote_ip}"

    async def caller(self) -> Caller:
        """The caller identified in ``prepare``."""
        if self._caller is None:
            raise HTTPError(500, "no caller: the route does not authenticate")
        return self._caller

    async def analyst(self) -> Caller:
        """The caller, who must be an analyst of their active, unlocked project (R-QRY-2, R-QRY-16)."""
        caller = await self.caller()
        await self.runner.call(self._check_access, caller)
        return caller

    def _check_access(self, caller: Caller) -> None:
        with self.runner.open_session() as session:
            check_analyst_access(session, caller.project, caller.user)

    def json_body(self) -> dict[str, Any]:
        return json_object(bytes(self._body))


class ViewsHandler(BaseHandler):
    async def get(self, view: str | None = None) -> None:
        caller = await self.analyst()
        if view is None:
            found = await self.runner.call(self._views, caller.project)
            self.write_json({"ok": True, "project": caller.project, "views": found})
        else:
            found = await self.runner.call(self._view, caller.project, view)
            self.write_json({"ok": True, "project": caller.project, "view": found})

    def _views(self, project_id: str) -> list[dict[str, Any]]:
        with self.runner.open_session() as session:
            return views.project_views(session, project_id)

    def _view(self, project_id: str, view: str) -> dict[str, Any]:
        with self.runner.open_session() as session:
            return views.describe_view(session, project_id, view)


def _query_request(body: dict[str, Any]) -> tuple[str, bool, str | None, str]:
    sql, synthetic, query_id, fmt = (
        body.get("sql"),
        body.get("synthetic", False),
        body.get("query_id"),
        body.get("format", "arrow"),
    )
    if not isinstance(sql, str) or not sql.strip():
        raise BadInput(
            "sql_missing", 'Send the query as {"sql": "SELECT ..."}', '请以 {"sql": "SELECT ..."} 发送查询'
        )
    if len(sql) > MAX_SQL_CHARS:
        raise BadInput(
            "sql_too_long",
            f"The query is longer than {MAX_SQL_CHARS} characters",
            f"查询超过 {MAX_SQL_CHARS} 个字符",
        )
    if not isinstance(synthetic, bool):
        raise BadInput(
            "synthetic_invalid", "synthetic must be true or false", "synthetic 必须为 true 或 false"
        )
    if query_id is not None and not isinstance(query_id, str):
        raise BadInput("query_id_invalid", "query_id must be a string", "query_id 必须是字符串")
    if fmt not in ("arrow", "json"):
        raise BadInput(
            "format_invalid", 'format must be "arrow" or "json"', 'format 必须为 "arrow" 或 "json"'
        )
    return sql, synthetic, check_query_id(query_id), fmt


class QueryHandler(BaseHandler):
    async def post(self) -> None:
        caller = await self.caller()
        sql, synthetic, query_id, fmt = _query_request(self.json_body())
        result = await self.runner.run(
            caller, sql, synthetic=synthetic, source=self.source, query_id=query_id
        )
        if fmt == "json":
            if len(result.rows) > self.json_max_rows:
                raise BadInput(
                    "json_too_large",
                    f'Results over {self.json_max_rows} rows travel as Arrow: ask for format "arrow"',
                    f'超过 {self.json_max_rows} 行的结果以 Arrow 格式传输：请使用 format "arrow"',
                )
            self.write_json(results.to_json(result, query_id))
            return
        self.set_header("Content-Type", results.ARROW_STREAM)
        self.finish(results.to_arrow_ipc(result, query_id))


class CancelHandler(BaseHandler):
    async def get(self, query_id: str) -> None:
        """The caller's own query: ``starting``, ``queued`` (with ``position``), or ``running``."""
        caller = await self.analyst()
        status = self.runner.status(check_query_id(query_id), caller)
        self.write_json({"ok": True, **status})

    async def delete(self, query_id: str) -> None:
        caller = await self.analyst()
        cancelled = self.runner.cancel(check_query_id(query_id), caller)
        self.write_json({"ok": True, "query_id": query_id, "cancelled": cancelled})


class AuthCacheHandler(BaseHandler):
    """Forget every cached token answer, so that tokens the hub revoked are refused at once.

    Called by the revocation hook (``hub_config.revocation.clear_service_auth_caches``). Its own token
    is checked with the hub afresh, never from the cache, and must be allowed to stop any server.
    """

    authenticate = False

    async def post(self) -> None:
        token = token_from_header(self.request.headers.get("Authorization"))
        hub_auth = self.authenticator.hub_auth
        who = await check_revoker(hub_auth, token)
        cleared = clear_token_cache(hub_auth)
        self.application.settings["log"].info("token cache cleared by %s (%d entries)", who, cleared)
        self.write_json({"ok": True, "cleared": cleared})


class MetricsHandler(BaseHandler):
    """Queries, refusals by code and alerts, for Prometheus (``enclave.metrics``); the caller's token is
    checked with the hub afresh and must hold ``read:metrics``."""

    authenticate = False

    async def get(self) -> None:
        token = token_from_header(self.request.headers.get("Authorization"))
        await check_metrics_reader(self.authenticator.hub_auth, token)
        counters: metrics.QueryMetrics = self.application.settings["metrics"]
        await asyncio.to_thread(counters.update)
        self.set_header("Content-Type", metrics.CONTENT_TYPE)
        self.finish(metrics.render(counters.families()))


class HealthHandler(BaseHandler):
    authenticate = False

    def get(self) -> None:
        self.write_json({"ok": True})


class NotFoundHandler(BaseHandler):
    authenticate = False

    async def prepare(self) -> None:
        raise HTTPError(404)


def handlers(base_url: str) -> list[tuple[str, type[BaseHandler]]]:
    return [
        (rf"{base_url}api/views/?", ViewsHandler),
        (rf"{base_url}api/views/([a-z][a-z0-9_]*)", ViewsHandler),
        (rf"{base_url}api/query", QueryHandler),
        (rf"{base_url}api/queries/([^/]+)", CancelHandler),
        (rf"{base_url}api/auth-cache/clear", AuthCacheHandler),
        (rf"{base_url}api/health", HealthHandler),
        (rf"{base_url}metrics", MetricsHandler),
    ]
