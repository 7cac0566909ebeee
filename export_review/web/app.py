"""The export review service: settings (traitlets, STYLE §5.1) and the tornado application.

JupyterHub registers it as a service with ``oauth_client_id`` and ``api_token``; the hub (or the
deployment) sets ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_API_URL``, ``JUPYTERHUB_SERVICE_PREFIX``,
``JUPYTERHUB_CLIENT_ID`` and ``JUPYTERHUB_OAUTH_CALLBACK_URL``, which are the defaults here. Browsers
log in with the hub (HubOAuth cookie); scripts send a hub token with
``access:services!service=<service name>``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from tornado.web import Application as TornadoApplication
from traitlets import Integer, Unicode, default

from enclave import config, db
from enclave.config import Paths
from enclave.hub_service import AUTH_CACHE_MAX_TTL_S, HubServiceApp
from export_review.web.context import WebContext
from export_review.web.handlers import default_handlers
from export_review.web.handlers.base import MAX_FORM_BYTES, PageHandler, UploadSlots

TEMPLATES = Path(__file__).with_name("templates")


class CallbackHandler(HubOAuthCallbackHandler):
    """Finishes the hub's OAuth login with the service's own ``HubOAuth``."""

    def initialize(self, ctx: WebContext, hub_auth: HubOAuth) -> None:
        self.hub_auth = hub_auth


class NotFoundPage(PageHandler):
    def prepare(self) -> None:
        self.send_error(404)


class ExportReviewApp(HubServiceApp):
    """The export review web UI and REST API (a JupyterHub service)."""

    name = "enclave-export-review"
    max_body_size = MAX_FORM_BYTES  # uploads raise it per request, once the caller is known
    description = "Export requests: submit, review with findings and previews, vote, release, download."

    service_name = Unicode(help="The service's name in the hub (default: $JUPYTERHUB_SERVICE_NAME).").tag(
        config=True
    )
    oauth_client_id = Unicode(help="OAuth client id (default: $JUPYTERHUB_CLIENT_ID).").tag(config=True)
    oauth_redirect_uri = Unicode(
        help="OAuth callback URL (default: $JUPYTERHUB_OAUTH_CALLBACK_URL or {base_url}oauth_callback)."
    ).tag(config=True)
    max_concurrent_uploads = Integer(
        2,
        min=1,
        help="Uploads one user may stream at once; another one is refused (429 `export_uploads_busy`).",
    ).tag(config=True)
    cookie_secret = Unicode(
        help="Secret signing the login cookie (default: $JUPYTERHUB_COOKIE_SECRET, else the 0600 file "
        "$JUPYTERHUB_COOKIE_SECRET_FILE names, else random per start, which logs everyone out on restart)."
    ).tag(config=True)

    @default("service_name")
    def _default_service_name(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_NAME", "enclave-export")

    @default("port")
    def _default_port(self) -> int:
        return 8766

    @default("oauth_client_id")
    def _default_client_id(self) -> str:
        return os.environ.get("JUPYTERHUB_CLIENT_ID", f"service-{self.service_name}")

    @default("oauth_redirect_uri")
    def _default_redirect(self) -> str:
        return os.environ.get("JUPYTERHUB_OAUTH_CALLBACK_URL", f"{self.base_url}oauth_callback")

    @default("cookie_secret")
    def _default_cookie_secret(self) -> str:
        secret_file = os.environ.get("JUPYTERHUB_COOKIE_SECRET_FILE")
        if secret_file and not os.environ.get("JUPYTERHUB_COOKIE_SECRET"):
            return config.read_secret_file(secret_file)
        return os.environ.get("JUPYTERHUB_COOKIE_SECRET", "") or secrets.token_hex(32)

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
            cache_max_age=AUTH_CACHE_MAX_TTL_S,
        )

    def make_tornado_app(self) -> TornadoApplication:
        """The routes, the templates and the login (also used by tests in-process)."""
        db.migrate(self.database_url)
        ctx = WebContext(db.connect(self.database_url), Paths(Path(self.enclave_home)))
        ctx.complete_releases()  # releases a crash interrupted after their commit (export_review.release)
        args = {"ctx": ctx, "hub_auth": self.hub_auth()}
        routes = [(f"{self.base_url}oauth_callback", CallbackHandler, args)]
        routes += [(pattern, handler, args) for pattern, handler in default_handlers(self.base_url)]
        return TornadoApplication(
            routes,
            template_path=str(TEMPLATES),
            cookie_secret=self.cookie_secret,
            default_handler_class=NotFoundPage,
            default_handler_args=args,
            log=self.log,
            upload_slots=UploadSlots(self.max_concurrent_uploads),
        )
