"""The Docker side of the workspace lock-down (ARCHITECTURE §1): a ``WorkspacePlan`` as docker-py
arguments.

What a workspace gets (mounts, environment, limits, labels) is decided once, in
``workspace_policy``; this module only says how Docker expresses it, kept apart from the spawner so
the settings can be read, reviewed and tested as one table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub_config.workspace_policy import (  # noqa: F401 (the names this module always had)
    ENV_ALLOWED_NAMES,
    ENV_ALLOWED_PREFIXES,
    ENV_REFUSED_NAMES,
    HOME_IN_CONTAINER,
    LABEL_PROJECT,
    LABEL_ROLE,
    LABEL_USER,
    ROLE_WORKSPACE,
    WORKSPACE_USER,
    Limits,
    allowed_env_name,
    filter_env,
)

if TYPE_CHECKING:
    from hub_config.workspace_policy import WorkspacePlan


def host_config(limits: Limits, *, dns: list[str]) -> dict[str, object]:
    """docker-py ``create_host_config`` arguments beyond DockerSpawner's own (memory, CPU, network).

    * read-only root filesystem, scratch on tmpfs that cannot hold executables or setuid files;
    * every capability dropped, no-new-privileges, never privileged, no devices;
    * a PID limit (a fork bomb stops there), a private IPC namespace, no swap beyond the memory
      limit (DockerSpawner sets the limit itself);
    * DNS: the embedded resolver forwards only to ``dns`` (the project network's gateway, where the
      firewall refuses port 53), so no name resolves outside the network.
    """
    config: dict[str, object] = {
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,noexec,nosuid,nodev,size={limits.scratch}"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "privileged": False,
        "pids_limit": limits.pids,
        "ipc_mode": "private",
        "dns": list(dns),
        "dns_search": [],
        "init": True,
    }
    if limits.memory:
        config["memswap_limit"] = limits.memory
    return config


def create_kwargs(project_id: str, user: str) -> dict[str, object]:
    """docker-py ``create_container`` arguments: the unprivileged user and labels for clean-up."""
    return {
        "user": WORKSPACE_USER,
        "working_dir": HOME_IN_CONTAINER,
        "labels": {LABEL_PROJECT: project_id, LABEL_USER: user, LABEL_ROLE: ROLE_WORKSPACE},
    }


def plan_create_kwargs(plan: WorkspacePlan) -> dict[str, object]:
    """``create_kwargs`` of a plan: its uid and gid, home as the working directory, its labels."""
    return {"user": f"{plan.uid}:{plan.gid}", "working_dir": plan.home_path, "labels": dict(plan.labels)}


def plan_host_config(plan: WorkspacePlan, *, dns: list[str]) -> dict[str, object]:
    """``host_config`` of a plan (DockerSpawner applies the memory and CPU limits itself)."""
    return host_config(plan.limits, dns=dns)
