"""JupyterHub config for the console's API tests: a real hub on 127.0.0.1 with the console registered
as a service (OAuth client, API token, proxied URL) and the enclave's own hub roles, so a plain user
reaches the console with the scopes a deployment grants; any password is accepted (test only)."""

import os

from hub_config import roles

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
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {
        "name": "console",
        "url": env["TEST_CONSOLE_URL"],
        "api_token": env["TEST_CONSOLE_TOKEN"],
        "oauth_client_id": "service-console",
        "oauth_redirect_uri": env["TEST_CONSOLE_CALLBACK"],
        "oauth_no_confirm": True,
    },
    {"name": "test-admin", "api_token": env["TEST_ADMIN_TOKEN"]},
]
c.JupyterHub.load_roles = [
    *roles.load_roles(["console"], culler=False),
    {
        "name": "test-admin",
        "scopes": ["admin:users", "tokens", "read:users", "admin:servers"],
        "services": ["test-admin"],
    },
]
