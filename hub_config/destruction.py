"""What a project leaves outside the vault, destroyed with it (R-LIFE-2, R-LIFE-4, R-LIFE-6).

``enclave project destroy`` (and the sweep) pass ``volume_destroyers(home)`` to
``lifecycle.destroy``; each destroyer takes the project id and returns what it removed, as
``{"kind": ..., "name": ...}`` items that go into the signed destruction certificate:

* ``container``: any workspace container of the project still present (forced out first, since a
  container holds its volumes);
* ``volume``: the analysts' home volumes, found by the spawner's ``org.enclave.project`` label;
* ``network``: the project's internal network, and its host firewall chain;
* ``directory``: the read-only copy published for workspaces (``hub_config.publish``).

Docker objects are found by label, never by name prefix, so destroying project ``a`` cannot touch
project ``a-b``. Where Docker is not installed or not running the Docker destroyers do nothing: a
host without Docker has no workspaces to destroy.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from enclave.config import Paths
from enclave.files import check_project_id
from hub_config import network, publish

LABEL_PROJECT = network.LABEL_PROJECT
Item = dict[str, str]
Destroyer = Callable[[str], list[Item]]


def docker_client() -> Any | None:
    """A ``docker.APIClient`` when the Docker daemon answers, else None."""
    try:
        import docker

        client = docker.APIClient(
            base_url=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock", timeout=30
        )
        client.ping()
        return client
    except Exception:
        return None


def _project_filter(project_id: str) -> dict[str, str]:
    return {"label": f"{LABEL_PROJECT}={check_project_id(project_id)}"}


def destroy_containers_and_volumes(project_id: str, client: Any | None = None) -> list[Item]:
    """Remove the project's leftover workspace containers, then its home volumes."""
    client = client or docker_client()
    if client is None:
        return []
    items: list[Item] = []
    for container in client.containers(all=True, filters=_project_filter(project_id)):
        client.remove_container(container["Id"], force=True, v=False)
        items.append({"kind": "container", "name": container["Names"][0].lstrip("/")})
    found = client.volumes(filters=_project_filter(project_id)).get("Volumes") or []
    for volume in sorted(found, key=lambda v: v["Name"]):
        client.remove_volume(volume["Name"], force=True)
        items.append({"kind": "volume", "name": volume["Name"]})
    return items


def destroy_networks(project_id: str, client: Any | None = None) -> list[Item]:
    """Remove the project's internal network(s) and their firewall chains."""
    from hub_config import firewall

    client = client or docker_client()
    if client is None:
        return []
    items: list[Item] = []
    for found in client.networks(filters=_project_filter(project_id)):
        info = client.inspect_network(found["Id"])
        bridge = (info.get("Options") or {}).get("com.docker.network.bridge.name", "")
        client.remove_network(found["Id"])
        if bridge:
            with contextlib.suppress(firewall.FirewallError):  # no iptables: no chain was installed
                firewall.remove(bridge)
        items.append({"kind": "network", "name": info["Name"]})
    return items


def published_destroyer(home: Path) -> Destroyer:
    paths = Paths(Path(home))

    def destroy_published_copy(project_id: str) -> list[Item]:
        folder = publish.workspaces_root(paths) / check_project_id(project_id)
        if not folder.exists():
            return []
        publish.unpublish(paths, project_id)
        if folder.exists():
            raise RuntimeError(f"the published copy {folder} could not be removed")
        return [{"kind": "directory", "name": str(folder.relative_to(paths.home))}]

    return destroy_published_copy


def volume_destroyers(home: Path | str) -> list[Destroyer]:
    """The destroyers ``lifecycle.destroy`` runs before it deletes the vault's files."""
    return [destroy_containers_and_volumes, destroy_networks, published_destroyer(Path(home))]
