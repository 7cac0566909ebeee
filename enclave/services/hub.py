"""What every enclave service run by JupyterHub shares: the settings the hub hands a managed
service, the enclave home and state database, and listening on a tornado server.

The hub sets ``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_API_URL`` and ``JUPYTERHUB_SERVICE_PREFIX`` for
a managed service; they are the defaults here. Subclasses build their routes in
``make_tornado_app`` and may add to ``shutdown``.

The services cache the hub's answer for a token for at most ``AUTH_CACHE_MAX_TTL_S`` seconds, and
forget every cached answer when the revocation hook asks (``check_revoker``, ``clear_token_cache``).

A service listens on one address, never a wildcard (``0.0.0.0``, ``::``): the hub runs it on
127.0.0.1 and workspaces reach it through the firewall's forwarding (``hub_config/firewall.py``).
The gateway and export review serve Prometheus metrics to a token with ``read:metrics``
(``check_metrics_reader``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from typing import Any

from jupyterhub.services.auth import HubAuth
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application as TornadoApplication
from traitlets import Integer, Unicode, default, validate
from traitlets.config import Application

from enclave import audit, config
from enclave.errors import Forbidden
from enclave.services.auth import Unauthenticated

AUTH_CACHE_MAX_TTL_S = 5
# Scopes that may stop any user's server: whoever holds one may also make the services forget tokens.
REVOKER_SCOPES = frozenset({"admin:servers", "delete:servers"})
# JupyterHub's scope for its own /hub/metrics; the services ask the same for theirs.
METRICS_SCOPE = "read:metrics"


async def _fresh_model(hub_auth: HubAuth, token: str) -> dict[str, Any]:
    """The hub's model of ``token``, asked afresh (never from the cache): revoked means refused."""
    model = await hub_auth.user_for_token(token, use_cache=False, sync=False)
    if not model:
        raise Unauthenticated(
            "token_invalid",
            "The hub does not know this token (forged, expired or revoked)",
            "中心服务不认识此令牌（伪造、过期或已吊销）",
        )
    return dict(model)


async def check_revoker(hub_auth: HubAuth, token: str) -> str:
    """The name behind ``token``, asked of the hub afresh (never cached), if it may revoke access."""
    model = await _fresh_model(hub_auth, token)
    if not REVOKER_SCOPES & set(model.get("scopes") or []):
        raise Forbidden(
            "auth_cache_clear_forbidden",
            "Only a token that may stop any server (a steward's) may clear the token cache",
            "只有可以停止任意服务器的令牌（数据管理员的令牌）才能清除令牌缓存",
        )
    return str(model.get("name", "?"))


async def check_metrics_reader(hub_auth: HubAuth, token: str) -> str:
    """The name behind ``token``, asked of the hub afresh, if it may read metrics (``read:metrics``)."""
    model = await _fresh_model(hub_auth, token)
    if METRICS_SCOPE not in set(model.get("scopes") or []):
        raise Forbidden(
            "metrics_forbidden",
            f"Only a token with the `{METRICS_SCOPE}` scope (monitoring, stewards) may read the metrics",
            f"只有具有 `{METRICS_SCOPE}` 权限的令牌（监控服务、数据管理员）才能读取监控指标",
        )
    return str(model.get("name", "?"))


def clear_token_cache(hub_auth: HubAuth) -> int:
    """Forget every cached token answer; returns how many there were."""
    count = len(hub_auth.cache)
    hub_auth.cache = type(hub_auth.cache)(hub_auth.cache_max_age)
    return count


class HubServiceApp(Application):
    """Base of the gateway, the export-review service and the steward console."""

    ip = Unicode(
        "127.0.0.1",
        help="Address to listen on: one address, never a wildcard (0.0.0.0, ::). Under the hub, 127.0.0.1; "
        "workspaces reach it through the firewall's forwarding from their network's gateway.",
    ).tag(config=True)
    port = Integer(0, min=0, max=65535, help="Port to listen on (0: any free port).").tag(config=True)
    base_url = Unicode(help="URL prefix (default: $JUPYTERHUB_SERVICE_PREFIX or /).").tag(config=True)
    hub_api_url = Unicode(
        help="The hub's REST API, e.g. http://127.0.0.1:8081/hub/api (default: $JUPYTERHUB_API_URL)."
    ).tag(config=True)
    api_token = Unicode(
        help="The service's own hub token (default: $JUPYTERHUB_API_TOKEN, else the 0600 file "
        "$JUPYTERHUB_API_TOKEN_FILE names)."
    ).tag(config=True)
    enclave_home = Unicode(help="Enclave home (default: $ENCLAVE_HOME or ~/.enclave).").tag(config=True)
    database_url = Unicode(help="State database (default: $ENCLAVE_DATABASE_URL or SQLite in the home).").tag(
        config=True
    )

    max_body_size: int | None = None  # tornado's default unless a service needs larger uploads

    @validate("ip")
    def _one_address(self, proposal: Any) -> str:
        value = str(proposal["value"]).strip().strip("[]")
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"ip = {value!r} is not an IP address: give one, e.g. 127.0.0.1") from None
        if address.is_unspecified:
            raise ValueError(
                f"ip = {value!r} would listen on every interface, past the proxy: use 127.0.0.1 "
                "(workspaces reach the service through the firewall's forwarding)"
            )
        return str(address)

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
        # An external service (deploy/single-host) names a 0600 file instead of holding the token.
        token_file = os.environ.get("JUPYTERHUB_API_TOKEN_FILE")
        if token_file and not os.environ.get("JUPYTERHUB_API_TOKEN"):
            return config.read_secret_file(token_file)
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @default("enclave_home")
    def _default_home(self) -> str:
        return str(config.enclave_home())

    @default("database_url")
    def _default_database_url(self) -> str:
        return config.database_url(self.enclave_home)

    def make_tornado_app(self) -> TornadoApplication:
        raise NotImplementedError

    async def serve(self) -> HTTPServer:
        """Listen, and return the server (its bound port is in ``self.bound_port``)."""
        # The audit chain of this database is keyed by this home's vault, whatever the URL says.
        audit.use_vault(self.database_url, config.paths(self.enclave_home))
        app = self.make_tornado_app()
        sockets = bind_sockets(self.port, address=self.ip)
        self.bound_port = sockets[0].getsockname()[1]
        self.http_server = HTTPServer(app, xheaders=False, max_body_size=self.max_body_size)
        self.http_server.add_sockets(sockets)
        self.log.info("%s on http://%s:%d%s", self.name, self.ip, self.bound_port, self.base_url)
        return self.http_server

    async def shutdown(self) -> None:
        self.http_server.stop()

    def start(self) -> None:
        config.restrict_umask()  # what the service writes (state, keys, exports) is not for others

        async def main() -> None:
            await self.serve()
            await asyncio.Event().wait()

        asyncio.run(main())
