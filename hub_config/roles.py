"""Hub roles, groups and hub-managed services of the enclave (issue 7, item 1).

* Analysts (the default ``user`` role) can use their own servers but cannot create API tokens
  (no ``tokens`` scope) and cannot share servers with anyone (no ``shares`` scopes).
* Stewards manage groups and can stop servers, but get no ``access:servers``: they never enter an
  analyst's workspace (R-SEC-5 separation of duties). They may read the metrics (``read:metrics``).
* Reviewers are a hub group; the export-review service reads group membership to trust them.
"""

from __future__ import annotations

import sys
from typing import Any

from enclave.services.hub import METRICS_SCOPE  # /hub/metrics, and the services' /metrics

STEWARDS_GROUP = "stewards"
REVIEWERS_GROUP = "reviewers"
IDLE_CULLER = "idle-culler"
MONITORING = "monitoring"

# The standard's example idle limit: 10 minutes.
DEFAULT_IDLE_TIMEOUT_SECONDS = 600

ANALYST_SCOPES = [
    "read:users!user",
    "users:activity!user",
    "servers!user",
    "access:servers!user",
    # Requesters and reviewers sign in to the export-review UI through the hub (HubOAuth).
    "access:services!service=export-review",
    # Anyone may file a data-use application in the steward console; its pages check the roles.
    "access:services!service=console",
    # Analysts follow their batch runs on the runs service's pages (the API takes the server token).
    "access:services!service=runs",
]
# A workspace server's own token ($JUPYTERHUB_API_TOKEN): JupyterHub's ``server`` role, plus the export
# review, so that JupyterLab's "Request export" submits the workspace's file as its user. The export
# review holds such a token to its server's project (export_review.web.handlers.api).
WORKSPACE_TOKEN_SCOPES = [
    "access:servers!server",
    "users:activity!user",
    "access:services!service=export-review",
]
STEWARD_SCOPES = [
    "list:users",
    "read:users",
    "read:groups",
    "groups",
    "read:servers",
    "delete:servers",
    METRICS_SCOPE,
]


def load_roles(services: list[str], *, culler: bool = True) -> list[dict[str, Any]]:
    """``c.JupyterHub.load_roles``: the default user role narrowed, the steward role, service roles."""
    roles: list[dict[str, Any]] = [
        {"name": "user", "description": "Analysts: own servers, no tokens", "scopes": ANALYST_SCOPES},
        {
            "name": "enclave-steward",
            "description": "Data stewards: users, groups, stopping servers; never entering them",
            "scopes": STEWARD_SCOPES,
            "groups": [STEWARDS_GROUP],
        },
    ]
    if culler:
        roles.append(
            {
                "name": "enclave-idle-culler",
                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
                "services": [IDLE_CULLER],
            }
        )
    if "gateway" in services:
        roles.append(
            {
                "name": "enclave-gateway",
                "description": "The query gateway stops a user's server when monitoring locks them (R-QRY-5)",
                "scopes": ["read:servers", "delete:servers"],
                "services": ["gateway"],
            }
        )
    if "console" in services:
        roles.append(
            {
                "name": "enclave-console",
                "description": "The steward console stops a project's servers when it is suspended, "
                "expired or destroyed (R-LIFE-1, R-LIFE-10)",
                "scopes": ["list:users", "read:servers", "delete:servers"],
                "services": ["console"],
            }
        )
    if services:
        roles.append(
            {
                "name": "enclave-service",
                "description": "Enclave services: resolve users and their groups (reviewers, stewards)",
                "scopes": ["read:users", "read:groups", "list:users"],
                "services": services,
            }
        )
    return roles


def monitoring_role() -> dict[str, Any]:
    """The role of the ``monitoring`` service (a Prometheus scraper): metrics, nothing else."""
    return {
        "name": "enclave-monitoring",
        "description": "Monitoring: reads the hub's and the services' Prometheus metrics, nothing else",
        "scopes": [METRICS_SCOPE],
        "services": [MONITORING],
    }


def idle_culler_service(timeout_seconds: int = DEFAULT_IDLE_TIMEOUT_SECONDS) -> dict[str, Any]:
    """jupyterhub-idle-culler as a hub-managed service; named servers are culled too."""
    return {
        "name": IDLE_CULLER,
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={timeout_seconds}"],
    }


def managed_service(name: str, url: str, command: list[str], environment: dict[str, str]) -> dict[str, Any]:
    """An enclave service (gateway, export review) started and stopped by the hub."""
    return {
        "name": name,
        "url": url,
        "command": command,
        "environment": environment,
        "oauth_no_confirm": True,
    }
