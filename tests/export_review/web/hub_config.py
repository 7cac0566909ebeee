"""JupyterHub config for the export-review web tests: a real hub on 127.0.0.1 with the export service
registered (OAuth client, API token, proxied URL), and any password accepted (test only)."""

import runpy
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821 (provided by JupyterHub)

# The settings every test hub shares (ports, proxy, state directory, the dummy authenticator) and
# the registration of the service under test.
base = runpy.run_path(
    str(Path(__file__).resolve().parents[2] / "harness" / "hub_base_config.py"),
    {"get_config": get_config},  # noqa: F821
)
c.Authenticator.allow_all = True
c.JupyterHub.services = base["services_under_test"]()
# A monitoring user: the only one whose token may read the service's /metrics (read:metrics).
c.JupyterHub.load_groups = {"monitors": {"users": ["mona"]}}
c.JupyterHub.load_roles = [
    # Users may reach services (the export service then applies the project roles).
    {"name": "user", "scopes": ["self", "access:services"]},
    base["TEST_ADMIN_ROLE"],
    {"name": "test-monitoring", "scopes": ["read:metrics"], "groups": ["monitors"]},
]
