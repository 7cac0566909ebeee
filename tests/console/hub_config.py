"""JupyterHub config for the console's API tests: a real hub on 127.0.0.1 with the console registered
as a service (OAuth client, API token, proxied URL) and the enclave's own hub roles, so a plain user
reaches the console with the scopes a deployment grants; any password is accepted (test only)."""

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
c.JupyterHub.services = base["services_under_test"]()
c.JupyterHub.load_roles = [*roles.load_roles(["console"], culler=False), base["TEST_ADMIN_ROLE"]]
