"""The gateway service: settings (traitlets, STYLE §5.1) and the tornado application.

JupyterHub runs it as a managed service; the hub sets ``JUPYTERHUB_API_TOKEN``,
``JUPYTERHUB_API_URL`` and ``JUPYTERHUB_SERVICE_PREFIX``, which are the defaults here. Callers are
identified with their own token (``enclave.services.auth``); the service's own token is used only to
stop a locked user's server, so it needs the ``delete:servers`` scope (the ``enclave-gateway`` role
in ``hub_config/roles.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from sqlalchemy.orm import Session
from tornado.web import Application as TornadoApplication
from traitlets import Float, Integer, Unicode, default

from enclave import config, db
from enclave.gateway import hub
from enclave.gateway.admission import Admission
from enclave.gateway.handlers import NotFoundHandler, handlers
from enclave.gateway.monitor import QueryMonitor
from enclave.gateway.runner import QueryRunner
from enclave.guard.limits import QueryLimits
from enclave.metrics import QueryMetrics
from enclave.services.auth import Caller, TokenAuthenticator
from enclave.services.hub import AUTH_CACHE_MAX_TTL_S, HubServiceApp


class GatewayApp(HubServiceApp):
    """The enclave query gateway (a JupyterHub service)."""

    name = "enclave-gateway"
    description = "Analysts' queries: hub token check, guard, locked-down DuckDB, suppression, monitoring."
    classes: ClassVar[list[type]] = [QueryMonitor, Admission]

    api_token = Unicode(
        help="The gateway's own hub token (default: $JUPYTERHUB_API_TOKEN); needs `delete:servers` to "
        "stop a locked user's server."
    ).tag(config=True)
    auth_cache_ttl_s = Integer(
        AUTH_CACHE_MAX_TTL_S,
        min=0,
        max=AUTH_CACHE_MAX_TTL_S,
        help="Seconds the hub's answer for a token is cached (at most 5). Revoking a token takes effect "
        "within this time, or at once when the revocation hook clears the cache; 0 asks the hub on every "
        "call.",
    ).tag(config=True)
    query_timeout_s = Float(
        60.0, min=0.1, help="DuckDB time limit per query, in seconds; a longer query is stopped (R-QRY-4)."
    ).tag(config=True)
    memory_limit = Unicode("2GB", help="DuckDB memory limit per query, e.g. 2GB (R-QRY-4).").tag(config=True)
    query_threads = Integer(2, min=1, help="DuckDB threads per query.").tag(config=True)
    max_result_rows = Integer(
        QueryLimits.rows,
        min=1,
        help="A result with more rows is refused by the guard (`result_too_large`): aggregate further.",
    ).tag(config=True)
    json_max_rows = Integer(
        10_000, min=1, help="Largest result sent as JSON; larger ones must use Arrow IPC."
    ).tag(config=True)
    workers = Integer(
        4,
        min=1,
        help="Queries running at once; more wait in line. They share one DuckDB memory limit per project, "
        "so more workers than cores mostly trade memory for nothing.",
    ).tag(config=True)

    @default("port")
    def _default_port(self) -> int:
        return 8765

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with db.session_scope(self._sessions) as session:
            yield session

    def make_tornado_app(self) -> TornadoApplication:
        """Build the runner, the authenticator and the routes (also used by tests in-process)."""
        db.migrate(self.database_url)
        self._sessions = db.connect(self.database_url)
        self.monitor = QueryMonitor(parent=self)
        self.loop = asyncio.get_running_loop()
        self.runner = QueryRunner(
            self._session,
            config.Paths(Path(self.enclave_home)),
            self.monitor,
            QueryLimits(
                rows=self.max_result_rows,
                memory=self.memory_limit,
                threads=self.query_threads,
                timeout_s=self.query_timeout_s,
            ),
            workers=self.workers,
            on_lock=self._stop_server_soon,
            admission=Admission(parent=self, memory_limit=self.memory_limit, workers=self.workers),
        )
        self.authenticator = TokenAuthenticator(
            self.hub_api_url, self.api_token, self.auth_cache_ttl_s, open_session=self._session
        )
        self.metrics = QueryMetrics(self._session)
        args = {
            "runner": self.runner,
            "authenticator": self.authenticator,
            "json_max_rows": self.json_max_rows,
        }
        routes = [(pattern, handler, args) for pattern, handler in handlers(self.base_url)]
        return TornadoApplication(
            routes,
            default_handler_class=NotFoundHandler,
            default_handler_args=args,
            log=self.log,
            metrics=self.metrics,
        )

    def _stop_server_soon(self, caller: Caller) -> None:
        """Called on a worker thread when monitoring locks a user: stop their server (R-QRY-5)."""
        asyncio.run_coroutine_threadsafe(
            hub.stop_server(self.hub_api_url, self.api_token, caller, self._session), self.loop
        )

    async def shutdown(self) -> None:
        await super().shutdown()
        # Off the event loop, so the stopped queries' handlers can still answer (503 server_shutdown).
        await asyncio.to_thread(self.runner.shutdown)
        await asyncio.sleep(0.1)
