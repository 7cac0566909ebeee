"""The demo's hub (``make demo``): the enclave's config, plus the demo's groups and a service the
headless check (``make demo-check``) uses to start servers and mint short-lived user tokens. The
bind addresses are the enclave config's: the hub API and the services on 127.0.0.1 only, which
``scripts/demo-hub.sh`` checks once the hub is up.

  ENCLAVE_DEMO_CHECK_TOKEN_FILE  file holding the check service's token (0600; made by demo-hub.sh)
  ENCLAVE_DEMO_REVIEWERS / ENCLAVE_DEMO_STEWARDS   comma lists of users for the hub groups
"""

import os
from pathlib import Path

from hub_config import roles

load_subconfig(str(Path(__file__).resolve().parents[1] / "hub_config" / "jupyterhub_config.py"))  # noqa: F821
c = get_config()  # noqa: F821


def _names(variable: str) -> list[str]:
    return [name for name in os.environ.get(variable, "").split(",") if name]


c.JupyterHub.load_groups = {
    roles.STEWARDS_GROUP: {"users": _names("ENCLAVE_DEMO_STEWARDS")},
    roles.REVIEWERS_GROUP: {"users": _names("ENCLAVE_DEMO_REVIEWERS")},
}
token_file = os.environ.get("ENCLAVE_DEMO_CHECK_TOKEN_FILE")
if token_file:
    c.JupyterHub.services = [
        *c.JupyterHub.services,
        {"name": "demo-check", "api_token": Path(token_file).read_text().strip()},
    ]
    c.JupyterHub.load_roles = [
        *c.JupyterHub.load_roles,
        {
            "name": "demo-check",
            "description": "The demo's headless check: creates users, starts servers, mints user tokens",
            "scopes": [
                "admin:users",
                "admin:servers",
                "access:servers",
                "list:users",
                "read:users",
                "tokens",
            ],
            "services": ["demo-check"],
        },
    ]
