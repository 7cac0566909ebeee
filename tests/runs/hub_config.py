"""JupyterHub config for the runs service's tests: a real hub on 127.0.0.1 with the runs service
registered (OAuth client, API token, proxied URL), named servers (a workspace's token is bound to
one), the enclave's own hub roles, and an admin service that mints tokens; any password is accepted
(test only)."""

import os
from pathlib import Path

from hub_config import roles

c = get_config()  # type: ignore[name-defined]  # noqa: F821 (provided by JupyterHub)
env = os.environ

# The settings every test hub shares: ports, proxy, state directory, the dummy authenticator.
load_subconfig(str(Path(__file__).resolve().parents[1] / "hub_base_config.py"))  # noqa: F821
c.Authenticator.allow_all = True
c.JupyterHub.allow_named_servers = True
c.JupyterHub.services = [
    {
        "name": "runs",
        "url": env["TEST_RUNS_URL"],
        "api_token": env["TEST_RUNS_TOKEN"],
        "oauth_client_id": "service-runs",
        "oauth_redirect_uri": env["TEST_RUNS_CALLBACK"],
        "oauth_no_confirm": True,
    },
    {"name": "test-admin", "api_token": env["TEST_ADMIN_TOKEN"]},
]
c.JupyterHub.load_roles = [
    *roles.load_roles(["runs"], culler=False),
    {
        "name": "test-admin",
        "scopes": ["admin:users", "tokens", "read:users", "admin:servers"],
        "services": ["test-admin"],
    },
]
