"""JupyterHub config for the runs service's tests: a real hub on 127.0.0.1 with the runs service
registered (OAuth client, API token, proxied URL), named servers (a workspace's token is bound to
one), the enclave's own hub roles, and an admin service that mints tokens; any password is accepted
(test only)."""

import runpy
from pathlib import Path

from hub_config import roles

c = get_config()  # type: ignore[name-defined]  # noqa: F821 (provided by JupyterHub)

# The settings every test hub shares (ports, proxy, state directory, the dummy authenticator) and
# the registration of the service under test.
base = runpy.run_path(
    str(Path(__file__).resolve().parents[1] / "harness" / "hub_base_config.py"),
    {"get_config": get_config},  # noqa: F821
)
c.Authenticator.allow_all = True
c.JupyterHub.allow_named_servers = True
c.JupyterHub.services = base["services_under_test"]()
c.JupyterHub.load_roles = [*roles.load_roles(["runs"], culler=False), base["TEST_ADMIN_ROLE"]]
