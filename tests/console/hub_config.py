"""JupyterHub config for the console's API tests: a real hub on 127.0.0.1 with the console registered
as a service (OAuth client, API token, proxied URL) and the enclave's own hub roles, so a plain user
reaches the console with the scopes a deployment grants; any password is accepted (test only)."""

import os
from pathlib import Path

from hub_config import roles

c = get_config()  # type: ignore[name-defined]  # noqa: F821 (provided by JupyterHub)
env = os.environ

# The settings every test hub shares: ports, proxy, state directory, the dummy authenticator.
load_subconfig(str(Path(__file__).resolve().parents[1] / "hub_base_config.py"))  # noqa: F821
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
