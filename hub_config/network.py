"""One internal Docker network per project (ARCHITECTURE §1).

``internal`` networks have no route out of the host; each project has its own bridge, so containers
of different projects cannot reach each other; inter-container traffic is off even within a
project (each analyst talks only to the hub and its services). The bridge interface gets a name
derived from the project id, so the firewall can match it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from enclave.files import check_project_id

NETWORK_PREFIX = "enclave-project-"
BRIDGE_PREFIX = "encl-"  # interface names are at most 15 characters
LABEL_PROJECT = "org.enclave.project"


@dataclass(frozen=True)
class ProjectNetwork:
    name: str
    id: str
    bridge: str
    gateway: str  # the host's address on this network: where the hub and services are reached
    subnet: str


def network_name(project_id: str, prefix: str = NETWORK_PREFIX) -> str:
    return prefix + check_project_id(project_id)


def bridge_name(name: str) -> str:
    return BRIDGE_PREFIX + hashlib.sha256(name.encode()).hexdigest()[:10]


def _describe(info: dict[str, Any]) -> ProjectNetwork:
    ipam = (info.get("IPAM") or {}).get("Config") or [{}]
    options = info.get("Options") or {}
    return ProjectNetwork(
        name=info["Name"],
        id=info["Id"],
        bridge=options.get("com.docker.network.bridge.name", ""),
        gateway=ipam[0].get("Gateway", ""),
        subnet=ipam[0].get("Subnet", ""),
    )


def ensure_network(client: Any, project_id: str, prefix: str = NETWORK_PREFIX) -> ProjectNetwork:
    """The project's network, created if missing. ``client`` is a ``docker.APIClient``.

    An existing network of that name must be internal and ours; anything else is refused rather
    than trusted.
    """
    found = find_network(client, project_id, prefix)
    if found is not None:
        return found
    name = network_name(project_id, prefix)
    created = client.create_network(
        name,
        driver="bridge",
        internal=True,
        check_duplicate=True,
        labels={LABEL_PROJECT: project_id},
        options=network_options(name),
    )
    return _describe(client.inspect_network(created["Id"]))


def find_network(client: Any, project_id: str, prefix: str = NETWORK_PREFIX) -> ProjectNetwork | None:
    """The project's network if it exists (checked: see ``check_network``), never created."""
    name = network_name(project_id, prefix)
    found = [n for n in client.networks(names=[name]) if n["Name"] == name]
    if not found:
        return None
    info = found[0] if "IPAM" in found[0] else client.inspect_network(found[0]["Id"])
    wrong = check_network(info, project_id)
    if wrong:
        raise RuntimeError(f"network {name} exists but is not an enclave network ({wrong}); remove it")
    return _describe(info)


def network_options(name: str) -> dict[str, str]:
    """The bridge options every project network is created with."""
    return {
        "com.docker.network.bridge.name": bridge_name(name),
        "com.docker.network.bridge.enable_icc": "false",
        "com.docker.network.bridge.enable_ip_masquerade": "false",
    }


def check_network(info: dict[str, Any], project_id: str) -> str:
    """Why a found network (as Docker lists or inspects it) is not the project's, or "" if it is:
    internal, a bridge labelled with the project, its options as created, a subnet and gateway."""
    if info.get("Driver") not in (None, "bridge"):
        return "not a bridge"
    if not info.get("Internal"):
        return "not internal"
    if (info.get("Labels") or {}).get(LABEL_PROJECT) != project_id:
        return "not labelled with the project"
    options = info.get("Options") or {}
    if any(options.get(key) != value for key, value in network_options(info["Name"]).items()):
        return "bridge options differ"
    described = _describe(info)
    if not described.gateway or not described.subnet:
        return "no subnet or gateway"
    return ""


def remove_network(client: Any, project_id: str, prefix: str = NETWORK_PREFIX) -> None:
    name = network_name(project_id, prefix)
    for found in client.networks(names=[name]):
        if found["Name"] == name:
            client.remove_network(found["Id"])
