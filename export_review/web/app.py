"""The export review service: settings (traitlets, STYLE §5.1) and the tornado application.

JupyterHub registers it as a service with ``oauth_client_id`` and ``api_token``; the hub (or the
deployment) sets ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_API_URL``, ``JUPYTERHUB_SERVICE_PREFIX``,
``JUPYTERHUB_CLIENT_ID`` and ``JUPYTERHUB_OAUTH_CALLBACK_URL``, which are the defaults here. Browsers
log in with the hub (HubOAuth cookie); scripts send a hub token with
``access:services!service=<service name>``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Any

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application as TornadoApplication
from traitlets import Integer, Unicode, default, validate
from traitlets.config import Application

from enclave import config, db
from enclave.config import Paths
from export_review.web.context import WebContext
from export_review.web.handlers import default_handlers
from export_review.web.handlers.base import PageHandler

TEMPLATES = Path(__file__).with_name("templates")
MAX_UPLOAD_BYTES = 110 * 1024 * 1024  # a little above the default request cap; the domain enforces the cap


class CallbackHandler(HubOAuthCallbackHandler):
    """Finishes the hub's OAuth login with the service's own ``HubOAuth``."""

    def initialize(self, ctx: WebContext, hub_auth: HubOAuth) -> None:
        self.hub_auth = hub_auth


class NotFoundPage(PageHandler):
    def prepare(self) -> None:
        self.send_error(404)


class ExportReviewApp(Application):
    """The export review web UI and REST API (a JupyterHub service)."""

    name = "enclave-export-review"
    description = "Export requests: submit, review with findings and previews, vote, release, download."

    ip = Unicode("127.0.0.1", help="Address to listen on. Keep it internal: only the hub's proxy.").tag(
        config=True
    )
    port = Integer(8766, min=0, max=65535, help="Port to listen on (0: any free port).").tag(config=True)
    service_name = Unicode(help="The service's name in the hub (default: $JUPYTERHUB_SERVICE_NAME).").tag(
        config=True
    )
    base_url = Unicode(help="URL prefix (default: $JUPYTERHUB_SERVICE_PREFIX or /).").tag(config=True)
    hub_api_url = Unicode(help="The hub's REST API (default: $JUPYTERHUB_API_URL).").tag(config=True)
    api_token = Unicode(help="The service's hub token (default: $JUPYTERHUB_API_TOKEN).").tag(config=True)
    oauth_client_id = Unicode(help="OAuth client id (default: $JUPYTERHUB_CLIENT_ID).").tag(config=True)
    oauth_redirect_uri = Unicode(
        help="OAuth callback URL (default: $JUPYTERHUB_OAUTH_CALLBACK_URL or {base_url}oauth_callback)."
    ).tag(config=True)
    cookie_secret = Unicode(
        help="Secret signing the login cookie (default: $JUPYTERHUB_COOKIE_SECRET, else random per start, "
        "which logs everyone out on restart)."
    ).tag(config=True)
    enclave_home = Unicode(help="Enclave home (default: $ENCLAVE_HOME or ~/.enclave).").tag(config=True)
    database_url = Unicode(help="State database (default: $ENCLAVE_DATABASE_URL or SQLite in the home).").tag(
        config=True
    )

    @default("service_name")
    def _default_service_name(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_NAME", "enclave-export")

    @default("base_url")
    def _default_base_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")

    @validate("base_url")
    def _slashes(self, proposal: Any) -> str:
        value = str(proposal["value"]).strip("/")
        return f"/{value}/" if value else "/"

    @default("hub_api_url")
    def _default_hub_api_url(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    @default("api_token")
    def _default_api_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @default("oauth_client_id")
    def _default_client_id(self) -> str:
        return os.environ.get("JUPYTERHUB_CLIENT_ID", f"service-{self.service_name}")

    @default("oauth_redirect_uri")
    def _default_redirect(self) -> str:
        return os.environ.get("JUPYTERHUB_OAUTH_CALLBACK_URL", f"{self.base_url}oauth_callback")

    @default("cookie_secret")
    def _default_cookie_secret(self) -> str:
        return os.environ.get("JUPYTERHUB_COOKIE_SECRET", "") or secrets.token_hex(32)

    @default("enclave_home")
    def _default_home(self) -> str:
        return str(config.enclave_home())

    @default("database_url")
    def _default_database_url(self) -> str:
        return config.database_url(self.enclave_home)

    def hub_auth(self) -> HubOAuth:
        hub_prefix = "/hub/"
        return HubOAuth(
            api_url=self.hub_api_url,
            api_token=self.api_token,
            oauth_client_id=self.oauth_client_id,
            oauth_redirect_uri=self.oauth_redirect_uri,
            base_url=self.base_url,
            hub_prefix=hub_prefix,
            access_scopes={"access:services", f"access:services!service={self.service_name}"},
            cache_max_age=30,
        )

    def make_tornado_app(self) -> TornadoApplication:
        """The routes, the templates and the login (also used by tests in-process)."""
        db.migrate(self.database_url)
        args = {
            "ctx": WebContext(db.connect(self.database_url), Paths(Path(self.enclave_home))),
            "hub_auth": self.hub_auth(),
        }
        routes = [(f"{self.base_url}oauth_callback", CallbackHandler, args)]
        routes += [(pattern, handler, args) for pattern, handler in default_handlers(self.base_url)]
        return TornadoApplication(
            routes,
            template_path=str(TEMPLATES),
            cookie_secret=self.cookie_secret,
            default_handler_class=NotFoundPage,
            default_handler_args=args,
            log=self.log,
        )

    async def serve(self) -> HTTPServer:
        """Listen, and return the server (its bound port is in ``self.bound_port``)."""
        app = self.make_tornado_app()
        sockets = bind_sockets(self.port, address=self.ip)
        self.bound_port = sockets[0].getsockname()[1]
        self.http_server = HTTPServer(app, xheaders=False, max_body_size=MAX_UPLOAD_BYTES)
        self.http_server.add_sockets(sockets)
        self.log.info("enclave export review on http://%s:%d%s", self.ip, self.bound_port, self.base_url)
        return self.http_server

    async def shutdown(self) -> None:
        self.http_server.stop()

    def start(self) -> None:
        async def main() -> None:
            await self.serve()
            await asyncio.Event().wait()

        asyncio.run(main())
