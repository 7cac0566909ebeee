"""JupyterHub config for the export-review web tests: a real hub on 127.0.0.1 with the export service
registered (OAuth client, API token, proxied URL), and any password accepted (test only)."""

import os
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821 (provided by JupyterHub)
env = os.environ

# The settings every test hub shares: ports, proxy, state directory, the dummy authenticator.
load_subconfig(str(Path(__file__).resolve().parents[2] / "hub_base_config.py"))  # noqa: F821
c.Authenticator.allow_all = True
c.JupyterHub.services = [
    {
        "name": "enclave-export",
        "url": env["TEST_EXPORT_URL"],
        "api_token": env["TEST_EXPORT_TOKEN"],
        "oauth_client_id": "service-enclave-export",
        "oauth_redirect_uri": env["TEST_EXPORT_CALLBACK"],
        "oauth_no_confirm": True,
    },
    {"name": "test-admin", "api_token": env["TEST_ADMIN_TOKEN"]},
]
c.JupyterHub.load_roles = [
    # Users may reach services (the export service then applies the project roles).
    {"name": "user", "scopes": ["self", "access:services"]},
    # admin:servers also lets the tests clear the services' token caches, as a steward's token does.
    {
        "name": "test-admin",
        "scopes": ["admin:users", "tokens", "read:users", "admin:servers"],
        "services": ["test-admin"],
    },
]
# A monitoring user: the only one whose token may read the service's /metrics (read:metrics).
c.JupyterHub.load_groups = {"monitors": {"users": ["mona"]}}
c.JupyterHub.load_roles = [
    *c.JupyterHub.load_roles,
    {"name": "test-monitoring", "scopes": ["read:metrics"], "groups": ["monitors"]},
]
