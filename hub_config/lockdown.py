"""The container settings of a locked-down workspace (ARCHITECTURE §1), as plain data.

Kept apart from the spawner so the settings can be read, reviewed and tested as one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

WORKSPACE_USER = "1000:1000"
HOME_IN_CONTAINER = "/home/analyst"

# Environment variables a workspace may receive (default deny). The hub's own variables carry the
# server's API token and OAuth client id; ENCLAVE_* are service URLs and data paths, never secrets.
ENV_ALLOWED_PREFIXES = ("JUPYTERHUB_", "ENCLAVE_")
ENV_ALLOWED_NAMES = frozenset({"JPY_API_TOKEN", "JUPYTER_IMAGE_SPEC", "MEM_LIMIT", "CPU_LIMIT"})
ENV_REFUSED_NAMES = frozenset({"ENCLAVE_HOME", "ENCLAVE_DATABASE_URL"})


@dataclass(frozen=True)
class Limits:
    """Resource limits of one workspace container."""

    pids: int = 256
    scratch: str = "512m"  # tmpfs for /tmp (the root filesystem is read-only)
    memory: int | None = None  # bytes; swap is not allowed beyond it


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
        "labels": {
            "org.enclave.project": project_id,
            "org.enclave.user": user,
            "org.enclave.role": "workspace",
        },
    }


def allowed_env_name(name: str) -> bool:
    if name in ENV_REFUSED_NAMES:
        return False
    return name in ENV_ALLOWED_NAMES or name.startswith(ENV_ALLOWED_PREFIXES)


def filter_env(env: Mapping[str, str]) -> dict[str, str]:
    """Only the allowlisted variables; anything else (a leaked secret) is dropped."""
    return {name: value for name, value in env.items() if allowed_env_name(name)}
