"""The part of the test hub configs every one shares (loaded by each with ``load_subconfig``, or with
``runpy.run_path`` by those that also use its functions): a hub and its proxy on 127.0.0.1 on the
ports ``tests.hub`` (or the gateway's fixture) chose, its state in the test's directory, and the dummy
authenticator (test only)."""

import os
from typing import Any

c = get_config()  # type: ignore[name-defined]  # noqa: F821 (provided by JupyterHub)
env = os.environ

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(env["TEST_HUB_PROXY_PORT"])
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env["TEST_HUB_PORT"])
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env['TEST_HUB_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [env["TEST_HUB_CHP"]]
c.JupyterHub.db_url = f"sqlite:///{env['TEST_HUB_DIR']}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{env['TEST_HUB_DIR']}/cookie_secret"
c.JupyterHub.pid_file = f"{env['TEST_HUB_DIR']}/jupyterhub.pid"
c.JupyterHub.authenticator_class = "dummy"

# admin:servers also lets the tests clear the services' token caches, as a steward's token does.
TEST_ADMIN_ROLE = {
    "name": "test-admin",
    "scopes": ["admin:users", "tokens", "read:users", "admin:servers"],
    "services": ["test-admin"],
}


def services_under_test() -> list[dict[str, Any]]:
    """The hub's services in a test of one hub service (``tests.hub.hub_with_service`` sets the
    ``TEST_SERVICE_*`` variables): that service as a deployment registers it (proxied URL, API token,
    OAuth client ``service-<name>``, no consent page), and ``test-admin``, whose token drives the hub's
    API (its role is ``TEST_ADMIN_ROLE``)."""
    name = env["TEST_SERVICE_NAME"]
    return [
        {
            "name": name,
            "url": env["TEST_SERVICE_URL"],
            "api_token": env["TEST_SERVICE_TOKEN"],
            "oauth_client_id": f"service-{name}",
            "oauth_redirect_uri": env["TEST_SERVICE_CALLBACK"],
            "oauth_no_confirm": True,
        },
        {"name": "test-admin", "api_token": env["TEST_ADMIN_TOKEN"]},
    ]
