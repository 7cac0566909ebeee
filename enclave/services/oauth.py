"""A hub service that browsers log in to (HubOAuth): the OAuth settings JupyterHub hands a service, the
login callback, and the tornado application around a service's routes (STYLE §5.1).

JupyterHub registers the service with ``oauth_client_id`` and ``api_token``; the hub (or the
deployment) sets ``JUPYTERHUB_SERVICE_NAME``, ``JUPYTERHUB_CLIENT_ID`` and
``JUPYTERHUB_OAUTH_CALLBACK_URL``, which are the defaults here. Browsers log in with the hub (HubOAuth
cookie); scripts send a hub token with ``access:services!service=<service name>``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from tornado.web import Application as TornadoApplication
from traitlets import Unicode, default

from enclave import config
from enclave.services.hub import AUTH_CACHE_MAX_TTL_S, HubServiceApp


class CallbackHandler(HubOAuthCallbackHandler):
    """Finishes the hub's OAuth login with the service's own ``HubOAuth``."""

    def initialize(self, ctx: Any, hub_auth: HubOAuth) -> None:
        self.hub_auth = hub_auth


class OAuthServiceApp(HubServiceApp):
    """Base of the services with pages: export review and the steward console."""

    default_service_name: ClassVar[str] = ""

    service_name = Unicode(help="The service's name in the hub (default: $JUPYTERHUB_SERVICE_NAME).").tag(
        config=True
    )
    oauth_client_id = Unicode(help="OAuth client id (default: $JUPYTERHUB_CLIENT_ID).").tag(config=True)
    oauth_redirect_uri = Unicode(
        help="OAuth callback URL (default: $JUPYTERHUB_OAUTH_CALLBACK_URL or {base_url}oauth_callback)."
    ).tag(config=True)
    cookie_secret = Unicode(
        help="Secret signing the login cookie (default: $JUPYTERHUB_COOKIE_SECRET, else the 0600 file "
        "$JUPYTERHUB_COOKIE_SECRET_FILE names, else random per start, which logs everyone out on restart)."
    ).tag(config=True)

    @default("service_name")
    def _default_service_name(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_NAME", self.default_service_name)

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
        return HubOAuth(
            api_url=self.hub_api_url,
            api_token=self.api_token,
            oauth_client_id=self.oauth_client_id,
            oauth_redirect_uri=self.oauth_redirect_uri,
            base_url=self.base_url,
            hub_prefix="/hub/",
            access_scopes={"access:services", f"access:services!service={self.service_name}"},
            cache_max_age=AUTH_CACHE_MAX_TTL_S,
        )

    def web_app(
        self,
        ctx: Any,
        handlers: Sequence[tuple[str, type]],
        *,
        templates: Path,
        not_found: type,
        **settings: Any,
    ) -> TornadoApplication:
        """The login callback and ``handlers`` (each given ``ctx`` and the ``HubOAuth``), the templates,
        and ``not_found`` for every other path."""
        args = {"ctx": ctx, "hub_auth": self.hub_auth()}
        routes: list[Any] = [(f"{self.base_url}oauth_callback", CallbackHandler, args)]
        routes += [(pattern, handler, args) for pattern, handler in handlers]
        return TornadoApplication(
            routes,
            template_path=str(templates),
            cookie_secret=self.cookie_secret,
            default_handler_class=not_found,
            default_handler_args=args,
            log=self.log,
            **settings,
        )
