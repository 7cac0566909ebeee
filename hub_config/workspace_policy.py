"""The one workspace policy both spawners apply (ARCHITECTURE §1, §2), as plain data.

``check_access`` decides who may start which project's workspace; ``plan_workspace`` is a pure
function from the user, the project and the enclave's state (the project's access mode and its
published data) to a ``WorkspacePlan``: image, mounts, environment, limits, labels. The Docker
spawner (``spawner.py`` with ``lockdown.py``) turns a plan into docker create arguments, the
Kubernetes spawner (``kubespawner.py``) into pod spec fields; neither adds a mount, a variable or a
limit of its own, and tests/hub_config/test_kubespawner.py checks both derive the same from a plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from hub_config.access import check_workspace_access
from hub_config.errors import named_server_required
from hub_config.publish import PublishedData

WORKSPACE_UID = 1000
WORKSPACE_GID = 1000
WORKSPACE_USER = f"{WORKSPACE_UID}:{WORKSPACE_GID}"
HOME_IN_CONTAINER = "/home/analyst"
SCRATCH_IN_CONTAINER = "/tmp"
DEFAULT_IMAGE = "enclave/analyst:latest"
DEFAULT_HOME_TEMPLATE = "enclave-home-{project}-{user}"
# The default limits of one workspace, whichever spawner starts it.
DEFAULT_MEM_LIMIT = 2 * 1024**3
DEFAULT_CPU_LIMIT = 1.0

LABEL_PROJECT = "org.enclave.project"
LABEL_USER = "org.enclave.user"
LABEL_ROLE = "org.enclave.role"
ROLE_WORKSPACE = "workspace"
ROLE_HOME = "home"

# Environment variables a workspace may receive (default deny). The hub's own variables carry the
# server's API token and OAuth client id; ENCLAVE_* are service URLs and data paths, never secrets.
ENV_ALLOWED_PREFIXES = ("JUPYTERHUB_", "ENCLAVE_")
ENV_ALLOWED_NAMES = frozenset({"JPY_API_TOKEN", "JUPYTER_IMAGE_SPEC", "MEM_LIMIT", "CPU_LIMIT"})
ENV_REFUSED_NAMES = frozenset({"ENCLAVE_HOME", "ENCLAVE_DATABASE_URL"})

OpenSession = Callable[[], AbstractContextManager[Session]]


def allowed_env_name(name: str) -> bool:
    if name in ENV_REFUSED_NAMES:
        return False
    return name in ENV_ALLOWED_NAMES or name.startswith(ENV_ALLOWED_PREFIXES)


def filter_env(env: Mapping[str, str]) -> dict[str, str]:
    """Only the allowlisted variables; anything else (a leaked secret) is dropped."""
    return {name: value for name, value in env.items() if allowed_env_name(name)}


@dataclass(frozen=True)
class Limits:
    """Resource limits of one workspace."""

    pids: int = 256
    scratch: str = "512m"  # tmpfs for /tmp (the root filesystem is read-only)
    memory: int | None = None  # bytes; swap is not allowed beyond it
    cpu: float | None = None  # cores


@dataclass(frozen=True)
class WorkspaceSettings:
    """The deployment's choices (the spawner's traits) that the policy reads."""

    image: str = DEFAULT_IMAGE
    limits: Limits = Limits()
    home_template: str = DEFAULT_HOME_TEMPLATE
    uid: int = WORKSPACE_UID
    gid: int = WORKSPACE_GID


@dataclass(frozen=True)
class WorkspacePlan:
    """Everything one analyst's workspace of one project gets, whatever runs it."""

    project: str
    user: str
    access: str  # "aggregate" or "rows"
    image: str
    uid: int
    gid: int
    home_volume: str  # a Docker volume or a PersistentVolumeClaim, one per project and user
    home_path: str
    read_only_paths: tuple[str, ...]  # published data, mounted read-only at the same path
    env: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = Limits()
    labels: Mapping[str, str] = field(default_factory=dict)
    home_labels: Mapping[str, str] = field(default_factory=dict)


def check_access(open_session: OpenSession, project_id: str, user: str) -> str:
    """The project's access mode if ``user`` may work in it now; ``WorkspaceRefused`` otherwise.

    A workspace is a named server whose name is the project id; the rule itself is
    ``access.check_workspace_access`` (the query service's, so hub and gateway never disagree).
    """
    if not project_id:
        raise named_server_required()
    with open_session() as session:
        return check_workspace_access(session, project_id, user)


def service_env(services: Mapping[str, str]) -> dict[str, str]:
    """``ENCLAVE_<NAME>_URL`` for each service, from its base URL (``http://host:port``).

    Hub-managed services serve their routes under the hub's ``/services/<name>/`` prefix.
    """
    return {
        f"ENCLAVE_{name.upper().replace('-', '_')}_URL": f"{base.rstrip('/')}/services/{name}/"
        for name, base in services.items()
    }


def plan_workspace(
    *,
    user: str,
    user_slug: str,
    project: str,
    access: str,
    data: PublishedData,
    services: Mapping[str, str],
    settings: WorkspaceSettings,
) -> WorkspacePlan:
    """The plan of ``user``'s workspace in ``project`` (whose access the caller has checked).

    ``user_slug`` is the user name as it may appear in a volume name; ``data`` is what
    ``publish.publish`` made for the project (rows only for ``access: rows``).
    """
    if access not in ("aggregate", "rows"):
        raise ValueError(f"unknown access mode {access!r}")
    if (access == "rows") != (data.rows_db is not None):
        raise ValueError("published rows must match the access mode")
    env = {
        "ENCLAVE_PROJECT": project,
        "ENCLAVE_ACCESS": access,
        "ENCLAVE_TWIN_DB": str(data.twin_db),
        **({"ENCLAVE_ROWS_DB": str(data.rows_db)} if data.rows_db else {}),
        **service_env(services),
    }
    owner = {LABEL_PROJECT: project, LABEL_USER: user}
    return WorkspacePlan(
        project=project,
        user=user,
        access=access,
        image=settings.image,
        uid=settings.uid,
        gid=settings.gid,
        home_volume=settings.home_template.format(project=project, user=user_slug),
        home_path=HOME_IN_CONTAINER,
        read_only_paths=(str(data.root),),
        env=filter_env(env),
        limits=settings.limits,
        labels={**owner, LABEL_ROLE: ROLE_WORKSPACE},
        home_labels={**owner, LABEL_ROLE: ROLE_HOME},
    )


_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def is_label_value(value: str) -> bool:
    """Whether ``value`` is a valid Kubernetes label value (Docker labels take any string)."""
    return bool(_LABEL_VALUE.match(value))
