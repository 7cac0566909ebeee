"""The runs service (issue 12): a JupyterHub service with the batch-run API for workspaces, pages for
browsers (HubOAuth, English and Chinese, no script), and the worker that executes the queue.

The hub runs it as the service ``runs`` (``hub_config/jupyterhub_config.py``; ``enclave run
serve``) on 127.0.0.1; workspaces reach it through their firewall as ``$ENCLAVE_RUNS_URL``. The API
knows a caller by the workspace's server token, exactly as the gateway does
(``enclave.services.auth.TokenAuthenticator``); the pages by the hub login.

The worker (``enclave.runs.compose``) runs in a thread of this process, started with the service
and stopped with it: runs still going when it stops are left running, and the next worker start
follows them again (``Worker.recover``). A deployment that keeps Docker and the firewall away from
the web process runs it with ``run_worker = False`` and ``enclave run worker`` beside it (as root).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path
from typing import Any, ClassVar

from tornado.httpserver import HTTPServer
from tornado.web import Application as TornadoApplication
from traitlets import Bool, Dict, Float, Integer, Unicode, default, validate

from enclave import config, db
from enclave.config import Paths
from enclave.runs import compose, service
from enclave.runs.web import api, pages
from enclave.runs.web.context import RunsContext
from enclave.services.auth import TokenAuthenticator
from enclave.services.handlers import MAX_FORM_BYTES, UploadSlots
from enclave.services.hub import AUTH_CACHE_MAX_TTL_S
from enclave.services.oauth import OAuthServiceApp

HERE = Path(__file__).parent
TEMPLATES = HERE / "web" / "templates"
STATIC = HERE.parent / "console" / "static"  # the console's stylesheet: one look for the services
WORKER_RESTART_S = 5


class RunsApp(OAuthServiceApp):
    """The batch-run service (a JupyterHub service) and its worker."""

    name = "enclave-runs"
    default_service_name: ClassVar[str] = "runs"
    description = "Batch runs: notebooks executed with papermill in locked-down workspace containers."
    max_body_size = MAX_FORM_BYTES  # a submission raises it per request, once the caller is known

    auth_cache_ttl_s = Integer(
        AUTH_CACHE_MAX_TTL_S,
        min=0,
        max=AUTH_CACHE_MAX_TTL_S,
        help="Seconds the hub's answer for a token is cached (at most 5), as in the gateway.",
    ).tag(config=True)
    default_timeout_s = Integer(
        service.DEFAULT_TIMEOUT_S, min=1, help="A run's time limit when the submission names none (seconds)."
    ).tag(config=True)
    max_timeout_s = Integer(
        service.MAX_TIMEOUT_S,
        min=1,
        max=service.MAX_TIMEOUT_S,
        help="The longest time limit a submission may ask for (seconds).",
    ).tag(config=True)
    max_concurrent_submissions = Integer(
        2, min=1, help="Submissions one user may stream at once; another is refused (`uploads_busy`, 429)."
    ).tag(config=True)
    run_worker = Bool(
        True,
        help="Execute the queue in this process (Docker and the host firewall: as the hub's user). "
        "False: only the API and pages; `enclave run worker` executes the queue.",
    ).tag(config=True)
    host_cap = Integer(help="Runs executing at once on this host (default: $ENCLAVE_RUN_HOST_CAP or 2).").tag(
        config=True
    )
    image = Unicode(
        help="The run containers' image (default: $ENCLAVE_ANALYST_IMAGE, as the workspaces')."
    ).tag(config=True)
    hub_port = Integer(
        help="The hub API port, which a run's firewall allows as a workspace's "
        "(default: $ENCLAVE_HUB_API_PORT or 8081)."
    ).tag(config=True)
    service_ports = Dict(
        value_trait=Integer(),
        help="The services a run reaches, name -> port, exactly the spawner's `service_ports` (default: "
        "$ENCLAVE_GATEWAY_PORT, $ENCLAVE_EXPORT_REVIEW_PORT, $ENCLAVE_RUNS_PORT or 8101, 8102, 8104).",
    ).tag(config=True)
    network_prefix = Unicode("", help="The spawner's `network_prefix`, when not the default.").tag(
        config=True
    )
    container_prefix = Unicode("", help="Prefix of run container names (default: the executor's).").tag(
        config=True
    )
    worker_poll_s = Float(
        1.0, min=0.05, help="Seconds between two looks at the queue and the containers."
    ).tag(config=True)

    worker: Any = None
    _worker_thread: threading.Thread | None = None
    _worker_stop: threading.Event | None = None

    @default("port")
    def _default_port(self) -> int:
        return 8104

    @default("host_cap")
    def _default_host_cap(self) -> int:
        return compose.settings_from_env().host_cap

    @default("image")
    def _default_image(self) -> str:
        return compose.settings_from_env().image

    @default("hub_port")
    def _default_hub_port(self) -> int:
        return compose.settings_from_env().hub_port

    @default("service_ports")
    def _default_service_ports(self) -> dict[str, int]:
        return dict(compose.settings_from_env().service_ports)

    @validate("service_ports")
    def _ports(self, proposal: Any) -> dict[str, int]:
        for name, port in proposal["value"].items():
            if not 0 < port < 65536:
                raise ValueError(f"service_ports[{name!r}] = {port} is not a TCP port (1..65535)")
        return dict(proposal["value"])

    def worker_settings(self) -> compose.WorkerSettings:
        """The environment's settings (memory, CPU, PIDs), with this service's traits over them."""
        return compose.settings_from_env(
            host_cap=self.host_cap,
            image=self.image,
            hub_port=self.hub_port,
            service_ports=dict(self.service_ports),
            network_prefix=self.network_prefix or None,
            name_prefix=self.container_prefix or None,
            poll_s=self.worker_poll_s,
        )

    def make_tornado_app(self) -> TornadoApplication:
        """The API, the pages, the stylesheet and the login (also used by tests in-process)."""
        if self.default_timeout_s > self.max_timeout_s:
            raise ValueError(
                f"default_timeout_s = {self.default_timeout_s} is above max_timeout_s = {self.max_timeout_s}"
            )
        db.migrate(self.database_url)
        self._sessions = db.connect(self.database_url)
        ctx = RunsContext(
            self._sessions,
            Paths(Path(self.enclave_home)),
            authenticator=TokenAuthenticator(self.hub_api_url, self.api_token, self.auth_cache_ttl_s),
            submit_slots=UploadSlots(self.max_concurrent_submissions, code="uploads_busy"),
            image=self.image,
            default_timeout_s=self.default_timeout_s,
            max_timeout_s=self.max_timeout_s,
        )
        return self.web_app(
            ctx,
            [*api.default_handlers(self.base_url), *pages.default_handlers(self.base_url)],
            templates=TEMPLATES,
            not_found=pages.NotFoundPage,
            static_path=str(STATIC),
            static_url_prefix=f"{self.base_url}static/",
        )

    # ---- the worker thread --------------------------------------------------------------------------

    def start_worker(self) -> None:
        """Compose the worker and run its loop in a thread (``Worker.serve``)."""
        paths = Paths(Path(self.enclave_home))
        self.worker = compose.make_worker(
            compose.session_opener(self._sessions), paths, self.worker_settings()
        )
        self._worker_stop = threading.Event()
        self._worker_thread = threading.Thread(
            target=self._run_worker, args=(self.worker, self._worker_stop), name="runs-worker", daemon=True
        )
        self._worker_thread.start()
        self.log.info("runs worker started (host cap %d)", self.host_cap)

    def _run_worker(self, worker: Any, stop: threading.Event) -> None:
        """``Worker.serve`` until ``stop``; a failure (the database away at start) is logged and the
        loop starts again, so the API never queues runs that nothing would execute."""
        while not stop.is_set():
            try:
                worker.serve(stop)
            except Exception:
                self.log.exception("the runs worker failed; starting it again in %d s", WORKER_RESTART_S)
                stop.wait(WORKER_RESTART_S)

    def stop_worker(self, timeout_s: float = 60.0) -> None:
        """Ask the loop to stop and wait for it; runs still going are left for the next worker."""
        if self._worker_stop is None or self._worker_thread is None:
            return
        self._worker_stop.set()
        self._worker_thread.join(timeout_s)
        if self._worker_thread.is_alive():
            self.log.warning("the runs worker did not stop within %.0f s", timeout_s)
        self._worker_thread = self._worker_stop = None

    async def serve(self) -> HTTPServer:
        server = await super().serve()
        if self.run_worker:
            self.start_worker()
        return server

    async def shutdown(self) -> None:
        await super().shutdown()
        await asyncio.to_thread(self.stop_worker)

    def start(self) -> None:
        """Serve until SIGTERM or SIGINT, then stop the server and the worker cleanly."""
        config.restrict_umask()

        async def main() -> None:
            stopped = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stopped.set)
            await self.serve()
            await stopped.wait()
            self.log.info("%s stopping", self.name)
            await self.shutdown()

        asyncio.run(main())
