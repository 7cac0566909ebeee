"""``EnclaveKubeSpawner``: the enclave's workspaces on Kubernetes (issue 13), with the same policy as
the Docker spawner.

Who may start which project, the mounts, the environment and the limits come from
``workspace_policy`` through ``WorkspaceSpawnerMixin`` (the access check, publishing and the audit
records are the Docker spawner's own code); this module only says how a pod expresses a plan:

* non-root uid/gid, ``runAsNonRoot``, read-only root filesystem, every capability dropped, no
  privilege escalation, seccomp ``RuntimeDefault``, no service account token, no service links
  (Kubernetes would otherwise add every Service's address to the environment);
* the home on a PersistentVolumeClaim per project and user (KubeSpawner's storage settings), the
  published data read-only from the shared claim ``published_claim`` with a sub path, ``/tmp`` on
  a memory ``emptyDir`` of the scratch size; no other volume (z2jh's are replaced, default deny);
* no resolver: the hub and the services are written into the pod's ``/etc/hosts`` with the
  addresses the hub resolves at spawn time, and the only nameserver is the pod's own loopback;
* one default-deny ``NetworkPolicy`` per project (``workspace_network_policy``): egress only to the
  hub and the enclave services, ingress only from the proxy and the hub, no DNS.

A pod cannot carry a PID limit: set the kubelet's ``podPidsLimit`` to the plan's ``pids`` on the
workspace nodes (deploy/k8s/README.md).
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubespawner import KubeSpawner
from kubespawner.slugs import safe_slug
from traitlets import Bool, Dict, Int, Unicode, default, validate

from hub_config import publish
from hub_config.spawner import WorkspaceSpawnerMixin
from hub_config.workspace_policy import (
    DEFAULT_CPU_LIMIT,
    DEFAULT_IMAGE,
    DEFAULT_MEM_LIMIT,
    LABEL_PROJECT,
    LABEL_ROLE,
    ROLE_WORKSPACE,
    SCRATCH_IN_CONTAINER,
    WorkspacePlan,
    is_label_value,
)

# Labels z2jh gives the pods that may reach the hub (its hub NetworkPolicy admits them).
HUB_ACCESS_LABEL = "hub.jupyter.org/network-access-hub"
NO_RESOLVER = "127.0.0.1"  # dnsPolicy None needs one nameserver: nothing listens there
VOLUME_HOME = "home"
VOLUME_DATA = "data"
VOLUME_SCRATCH = "scratch"

# The container's security context: every field the lock-down needs, stated explicitly.
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def k8s_quantity(size: str) -> str:
    """A Docker size (``512m``, ``2g``, bytes) as a Kubernetes quantity (``512Mi``, ``2Gi``)."""
    match = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)b?\s*", size.lower())
    if not match:
        raise ValueError(f"not a size: {size!r} (bytes, or with k/m/g/t)")
    number, unit = match.groups()
    return number + {"": "", "k": "Ki", "m": "Mi", "g": "Gi", "t": "Ti"}[unit]


def label_value(value: str) -> str:
    """``value`` if Kubernetes takes it as a label value, else a safe slug of it."""
    return value if is_label_value(value) else safe_slug(value, max_length=63)


def kube_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return {key: label_value(value) for key, value in labels.items()}


def workspace_selector(project: str) -> dict[str, str]:
    """The labels that pick every workspace pod of ``project`` (and nothing else)."""
    return {LABEL_PROJECT: label_value(project), LABEL_ROLE: ROLE_WORKSPACE}


def port_of(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def workspace_network_policy(
    project: str,
    *,
    name: str,
    hub_labels: Mapping[str, str],
    hub_port: int,
    services: Mapping[str, tuple[Mapping[str, str], int]],
    ingress_labels: list[Mapping[str, str]],
    server_port: int,
) -> dict[str, Any]:
    """The project's NetworkPolicy (a manifest): default deny both ways for its workspace pods,
    then egress only to the hub and each service (pod labels, port), ingress only from the pods
    of ``ingress_labels`` (the proxy, and the hub, which checks a new server answers) on the
    server's port. There is no DNS rule: workspaces have no resolver."""
    egress = [
        {
            "to": [{"podSelector": {"matchLabels": dict(hub_labels)}}],
            "ports": [{"protocol": "TCP", "port": hub_port}],
        }
    ]
    for labels, port in services.values():
        egress.append(
            {
                "to": [{"podSelector": {"matchLabels": dict(labels)}}],
                "ports": [{"protocol": "TCP", "port": port}],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": {LABEL_PROJECT: label_value(project)}},
        "spec": {
            "podSelector": {"matchLabels": workspace_selector(project)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": dict(labels)}} for labels in ingress_labels],
                    "ports": [{"protocol": "TCP", "port": server_port}],
                }
            ],
            "egress": egress,
        },
    }


class EnclaveKubeSpawner(WorkspaceSpawnerMixin, KubeSpawner):
    """KubeSpawner with the enclave's access check, lock-down, storage and network policy."""

    service_urls = Dict(
        value_trait=Unicode(),
        help="""Enclave services a workspace may reach, name -> base URL inside the cluster, e.g.
        {"gateway": "http://enclave-gateway:8101", "export-review": "http://enclave-export-review:8102"}.
        Each becomes ENCLAVE_<NAME>_URL in the workspace; the Service port must equal the pod's.""",
    ).tag(config=True)

    @validate("service_urls")
    def _check_service_urls(self, proposal: Any) -> dict[str, str]:
        for name, url in proposal.value.items():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                raise ValueError(
                    f"service_urls[{name!r}] = {url!r} is not a base URL such as http://host:port"
                )
        return proposal.value

    service_pod_labels = Dict(
        value_trait=Dict(value_trait=Unicode()),
        help="""The pod labels of each service in service_urls, name -> labels: the project's
        NetworkPolicy lets workspaces reach those pods on the service's port, and nothing else.""",
    ).tag(config=True)

    @default("service_pod_labels")
    def _default_service_pod_labels(self) -> dict[str, dict[str, str]]:
        return {name: {"app.kubernetes.io/name": f"enclave-{name}"} for name in self.service_urls}

    hub_pod_labels = Dict(
        default_value={"app": "jupyterhub", "component": "hub"},
        value_trait=Unicode(),
        help="Labels of the hub pod (z2jh's): workspaces may reach it on hub_port.",
    ).tag(config=True)

    proxy_pod_labels = Dict(
        default_value={"app": "jupyterhub", "component": "proxy"},
        value_trait=Unicode(),
        help="Labels of the proxy pod (z2jh's): the only pod besides the hub a workspace accepts.",
    ).tag(config=True)

    hub_port = Int(8081, help="The hub API's container port (z2jh: 8081).").tag(config=True)

    host_addresses = Dict(
        value_trait=Unicode(),
        help="""Fixed addresses of the hub and service host names (name -> IP). Names not listed
        are resolved by the hub when it spawns; either way they go to the pod's /etc/hosts.""",
    ).tag(config=True)

    published_claim = Unicode(
        "enclave-published",
        help="""PersistentVolumeClaim (ReadWriteMany) that holds <enclave_home>/workspaces, where the
        hub publishes each project's data; workspaces mount their project's folder of it read-only.""",
    ).tag(config=True)

    network_policy_template = Unicode(
        "enclave-workspaces-{project}", help="Name of each project's NetworkPolicy."
    ).tag(config=True)

    manage_network_policy = Bool(
        True, help="Create or update the project's NetworkPolicy before each start (needs the RBAC rule)."
    ).tag(config=True)

    # ---- KubeSpawner defaults: the lock-down ------------------------------------------------------

    @default("image")
    def _default_image(self) -> str:
        return DEFAULT_IMAGE

    @default("mem_limit")
    def _default_mem_limit(self) -> int:
        return DEFAULT_MEM_LIMIT

    @default("cpu_limit")
    def _default_cpu_limit(self) -> float:
        return DEFAULT_CPU_LIMIT

    @default("storage_capacity")
    def _default_storage_capacity(self) -> str:
        return "10Gi"

    @default("home_volume_template")
    def _default_home_volume_template(self) -> str:
        return "enclave-home-{project}-{user}"

    # ---- steps ----------------------------------------------------------------------------------

    def user_slug(self) -> str:
        return self._expand_user_properties("{username}")

    def has_workload(self) -> bool:
        return bool(self.pod_name)

    async def container_details(self) -> dict[str, Any]:
        """The pod, and the digest of the image it actually runs (from the pod's status)."""
        details: dict[str, Any] = {"pod": self.pod_name, "namespace": self.namespace, "image": self.image}
        pod = self.pod_reflector.pods.get(self.pod_reflector_key) if self.pod_reflector else None
        for status in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
            if status.get("name") == "notebook":
                details["image_digest"] = status.get("imageID")
        return details

    @property
    def pod_reflector_key(self) -> str:
        return f"{self.namespace}/{self.pod_name}"

    def service_hosts(self) -> list[str]:
        hub_host = urlsplit(self.hub.api_url).hostname if self.hub else None
        hosts = [urlsplit(url).hostname or "" for url in self.service_urls.values()]
        return sorted({host for host in [hub_host, *hosts] if host})

    async def resolve_hosts(self) -> dict[str, str]:
        """Each host a workspace talks to, with its address (the hub's own resolver answers)."""
        loop = asyncio.get_running_loop()
        found = {}
        for host in self.service_hosts():
            if host in self.host_addresses:
                found[host] = self.host_addresses[host]
                continue
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            found[host] = str(infos[0][4][0])
        return found

    def data_sub_path(self, path: str) -> str:
        """Where ``path`` (published data) lies in the published claim."""
        return str(Path(path).relative_to(publish.workspaces_root(self.paths)))

    def apply_plan(self, plan: WorkspacePlan, hosts: Mapping[str, str]) -> None:
        """The plan as KubeSpawner settings: ``get_pod_manifest()`` renders the pod from them."""
        self.image = plan.image
        self.uid = plan.uid
        self.gid = plan.gid
        self.fs_gid = plan.gid  # the home claim is writable by the analyst's group
        self.privileged = False
        self.allow_privilege_escalation = False
        self.container_security_context = dict(CONTAINER_SECURITY_CONTEXT)
        self.pod_security_context = dict(POD_SECURITY_CONTEXT)
        self.automount_service_account_token = False
        self.working_dir = plan.home_path
        self.environment = dict(plan.env)
        self.extra_labels = {**kube_labels(plan.labels), HUB_ACCESS_LABEL: "true"}
        self.storage_extra_labels = kube_labels(plan.home_labels)
        self.storage_pvc_ensure = True
        self.pvc_name = plan.home_volume
        self.remember_pvc_name = False
        self.mem_limit = plan.limits.memory
        self.cpu_limit = plan.limits.cpu
        self.volumes = {
            VOLUME_HOME: {"name": VOLUME_HOME, "persistentVolumeClaim": {"claimName": plan.home_volume}},
            VOLUME_DATA: {
                "name": VOLUME_DATA,
                "persistentVolumeClaim": {"claimName": self.published_claim, "readOnly": True},
            },
            VOLUME_SCRATCH: {
                "name": VOLUME_SCRATCH,
                "emptyDir": {"medium": "Memory", "sizeLimit": k8s_quantity(plan.limits.scratch)},
            },
        }
        self.volume_mounts = {
            VOLUME_HOME: {"name": VOLUME_HOME, "mountPath": plan.home_path},
            VOLUME_SCRATCH: {"name": VOLUME_SCRATCH, "mountPath": SCRATCH_IN_CONTAINER},
            **{
                f"{VOLUME_DATA}-{index}": {
                    "name": VOLUME_DATA,
                    "mountPath": path,
                    "subPath": self.data_sub_path(path),
                    "readOnly": True,
                }
                for index, path in enumerate(plan.read_only_paths)
            },
        }
        # Default deny: nothing configured elsewhere (a chart value, a profile) adds a container, a
        # field of the pod or container, or overrides the plan after this point.
        self.profile_list = []
        self.init_containers = []
        self.extra_containers = []
        self.extra_container_config = {}
        self.lifecycle_hooks = {}
        self.extra_pod_config = {
            "enableServiceLinks": False,
            "hostNetwork": False,
            "hostPID": False,
            "hostIPC": False,
            "dnsPolicy": "None",
            "dnsConfig": {
                "nameservers": [NO_RESOLVER],
                "searches": [],
                "options": [{"name": "ndots", "value": "1"}],
            },
            "hostAliases": [{"ip": ip, "hostnames": [host]} for host, ip in sorted(hosts.items())],
        }

    def network_policy(self) -> dict[str, Any]:
        """This project's NetworkPolicy manifest."""
        services = {
            name: (self.service_pod_labels.get(name) or {}, port_of(url))
            for name, url in self.service_urls.items()
        }
        missing = [name for name, (labels, _) in services.items() if not labels]
        if missing:
            raise ValueError(
                f"service_pod_labels has no labels for {missing}: the policy would allow every pod"
            )
        return workspace_network_policy(
            self.name,
            name=self.network_policy_template.format(project=self.name),
            hub_labels=self.hub_pod_labels,
            hub_port=self.hub_port,
            services=services,
            ingress_labels=[self.proxy_pod_labels, self.hub_pod_labels],
            server_port=self.port,
        )

    async def ensure_network_policy(self) -> None:
        """Create the project's NetworkPolicy, or bring an existing one back to the manifest."""
        from kubernetes_asyncio.client.rest import ApiException
        from kubespawner.clients import shared_client

        api = shared_client("NetworkingV1Api")
        body = self.network_policy()
        try:
            await api.create_namespaced_network_policy(self.namespace, body)
        except ApiException as error:
            if error.status != 409:
                raise
            await api.replace_namespaced_network_policy(body["metadata"]["name"], self.namespace, body)

    async def prepare_workspace(self) -> None:
        """Check, publish, plan and apply; then the network policy, before the pod exists."""
        access = await asyncio.to_thread(self.check_access)
        data = await self.publish_data(access)
        plan = self.make_plan(access, data, dict(self.service_urls))
        self.apply_plan(plan, await self.resolve_hosts())
        if self.manage_network_policy:
            await self.ensure_network_policy()
