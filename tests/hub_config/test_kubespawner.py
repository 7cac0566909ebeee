"""EnclaveKubeSpawner without a cluster (issue 13, items 3-4): the pod and the project's
NetworkPolicy it renders, their lock-down, and one policy shared with the Docker spawner.

The spawners are real (a real enclave database decides access; KubeSpawner renders with its own
``get_pod_manifest``); the Kubernetes API client is configured from a kubeconfig pointing at a closed
local port and is never called: NetworkPolicy writes are off, and nothing here starts a pod.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub import orm
from jupyterhub.objects import Hub
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import kube_config

from enclave import db, projects
from enclave.config import Paths
from enclave.db.session import dispose_all
from enclave.specs import parse_project_spec
from hub_config import publish, roles, workspace_policy
from hub_config.errors import WorkspaceRefused
from hub_config.kubespawner import EnclaveKubeSpawner, k8s_quantity
from hub_config.network import ProjectNetwork
from hub_config.spawner import EnclaveSpawner
from tests.deploy.k8s.kube_models import model_errors
from tests.harness.factories import (
    NO_APPLICATION,
    migrated_home,
    project_spec,
    register_patients_and_visits,
)

GATEWAY_IP = "10.9.0.1"  # the Docker project network's gateway in these tests
SERVICE_URLS = {"gateway": f"http://{GATEWAY_IP}:8101", "export-review": f"http://{GATEWAY_IP}:8102"}
PROJECT = "cardio-1"
ROWS_PROJECT = "rows-1"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    root = tmp_path_factory.mktemp("kubespawner")
    paths, url = migrated_home(root)
    with db.session_scope(db.connect(url)) as session:
        register_patients_and_visits(session, paths, root / "src", n_patients=60)
        period = {"start": "2020-01-01", "end": "2099-12-31"}
        for fields in ({"id": PROJECT}, {"id": ROWS_PROJECT, "access": "rows"}):
            spec = project_spec(pi="alice", analysts=["alice"], period=period, **fields)
            projects.create_project(
                session, paths, parse_project_spec(spec), actor="steward", without_application=NO_APPLICATION
            )
    yield paths
    dispose_all()


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kubeconfig for a cluster that is not there (port 1 on this machine); never contacted."""
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: none\n"
        "clusters: [{name: none, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: none, user: {token: unused}}]\n"
        "contexts: [{name: none, context: {cluster: none, user: none, namespace: enclave}}]\n"
    )
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))


def hub_user(name: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, escaped_name=name, url=f"/user/{name}/", id=1)


def kube_spawner(home: Paths, user: str = "alice", project: str = PROJECT) -> EnclaveKubeSpawner:
    """Must be called with an event loop running (KubeSpawner makes its API client then)."""
    return EnclaveKubeSpawner(
        user=hub_user(user),
        hub=Hub(connect_url="http://hub:8081", base_url="/hub/"),
        orm_spawner=orm.Spawner(name=project),
        enclave_home=str(home.home),
        service_urls=SERVICE_URLS,
        host_addresses={"hub": "10.96.0.10", GATEWAY_IP: GATEWAY_IP},
        manage_network_policy=False,
        mem_limit="256M",
        cpu_limit=0.5,
        pids_limit=64,
    )


def docker_spawner(home: Paths, user: str = "alice", project: str = PROJECT) -> EnclaveSpawner:
    return EnclaveSpawner(
        user=hub_user(user),
        orm_spawner=orm.Spawner(name=project),
        enclave_home=str(home.home),
        service_ports={"gateway": 8101, "export-review": 8102},
        mem_limit="256M",
        cpu_limit=0.5,
        pids_limit=64,
    )


def published(home: Paths, project: str, rows: bool) -> publish.PublishedData:
    """Where ``publish.publish`` puts the project's data (publishing itself needs root: see below)."""
    root = publish.workspaces_root(home) / project / ("v1-rows" if rows else "v1")
    return publish.PublishedData(root, root / "twin.duckdb", root / "rows.duckdb" if rows else None)


async def rendered(spawner: EnclaveKubeSpawner, rows: bool = False) -> dict[str, Any]:
    access = await asyncio.to_thread(spawner.check_access)
    plan = spawner.make_plan(access, published(spawner_paths(spawner), spawner.name, rows), SERVICE_URLS)
    spawner.apply_plan(plan, await spawner.resolve_hosts())
    async with ApiClient() as api:
        return api.sanitize_for_serialization(await spawner.get_pod_manifest())


def spawner_paths(spawner: EnclaveKubeSpawner | EnclaveSpawner) -> Paths:
    return spawner.paths


def render_pod(home: Paths, project: str = PROJECT, rows: bool = False) -> tuple[EnclaveKubeSpawner, dict]:
    async def run() -> tuple[EnclaveKubeSpawner, dict]:
        spawner = kube_spawner(home, project=project)
        return spawner, await rendered(spawner, rows)

    return asyncio.run(run())


# ---- the pod ------------------------------------------------------------------------------------


def test_the_pod_is_locked_down(home: Paths) -> None:
    _, pod = render_pod(home)
    spec = pod["spec"]
    (container,) = spec["containers"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] == 1000 and context["runAsGroup"] == 1000
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]} and "add" not in context["capabilities"]
    assert context["allowPrivilegeEscalation"] is False and context["privileged"] is False
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False  # no Service addresses in the environment
    assert not spec.get("initContainers") and len(spec["containers"]) == 1
    assert spec["hostNetwork"] is False and spec["hostPID"] is False and spec["hostIPC"] is False
    limits = container["resources"]["limits"]
    assert int(limits["memory"]) == 256 * 1024**2 and float(limits["cpu"]) == 0.5


def test_the_pod_has_no_resolver_only_the_hosts_it_may_reach(home: Paths) -> None:
    _, pod = render_pod(home)
    spec = pod["spec"]
    assert spec["dnsPolicy"] == "None" and spec["dnsConfig"]["nameservers"] == ["127.0.0.1"]
    assert spec["dnsConfig"]["searches"] == []
    aliases = {host: alias["ip"] for alias in spec["hostAliases"] for host in alias["hostnames"]}
    assert aliases == {"hub": "10.96.0.10", GATEWAY_IP: GATEWAY_IP}


def test_the_pod_mounts_home_claim_published_data_read_only_and_scratch(home: Paths) -> None:
    spawner, pod = render_pod(home)
    spec = pod["spec"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert set(volumes) == {"home", "data", "scratch"}  # default deny: nothing else
    assert volumes["home"]["persistentVolumeClaim"] == {"claimName": f"enclave-home-{PROJECT}-alice"}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "enclave-published", "readOnly": True}
    assert volumes["scratch"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "512Mi"}
    mounts = {mount["mountPath"]: mount for mount in spec["containers"][0]["volumeMounts"]}
    data_root = str(published(home, PROJECT, rows=False).root)
    assert set(mounts) == {"/home/analyst", "/tmp", data_root}
    assert mounts[data_root]["readOnly"] is True and mounts[data_root]["subPath"] == f"{PROJECT}/v1"
    assert not mounts["/home/analyst"].get("readOnly")
    # one claim per user and project, labelled for destruction at the project's end
    claim = spawner.get_pvc_manifest()
    assert claim.metadata.name == f"enclave-home-{PROJECT}-alice" and spawner.storage_pvc_ensure
    assert claim.metadata.labels[workspace_policy.LABEL_PROJECT] == PROJECT
    assert claim.metadata.labels[workspace_policy.LABEL_ROLE] == "home"


def test_the_pod_environment_is_the_allowlist(home: Paths) -> None:
    _, pod = render_pod(home, project=ROWS_PROJECT, rows=True)
    env = {item["name"]: item.get("value") for item in pod["spec"]["containers"][0]["env"]}
    assert all(workspace_policy.allowed_env_name(name) for name in env)
    assert "JUPYTER_IMAGE" not in env  # KubeSpawner adds it; not on the allowlist
    assert env["ENCLAVE_ACCESS"] == "rows" and env["ENCLAVE_PROJECT"] == ROWS_PROJECT
    assert env["ENCLAVE_ROWS_DB"].endswith("v1-rows/rows.duckdb")
    assert env["ENCLAVE_GATEWAY_URL"] == f"http://{GATEWAY_IP}:8101/services/gateway/"
    assert env["JUPYTERHUB_API_URL"] == "http://hub:8081/hub/api"


def test_the_pods_token_reaches_the_export_review(home: Paths) -> None:
    """The mixin's server token scopes hold on Kubernetes too (hub_config.roles.WORKSPACE_TOKEN_SCOPES)."""
    spawner, _ = render_pod(home)
    assert spawner.server_token_scopes == roles.WORKSPACE_TOKEN_SCOPES


def test_the_pod_is_labelled_with_its_project_for_the_network_policy(home: Paths) -> None:
    spawner, pod = render_pod(home)
    labels = pod["metadata"]["labels"]
    selector = spawner.network_policy()["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert labels[workspace_policy.LABEL_USER] == "alice"


def test_the_rendered_pod_and_policy_are_valid_api_objects(home: Paths) -> None:
    spawner, pod = render_pod(home)
    assert model_errors(pod) == []
    assert model_errors(spawner.network_policy()) == []


def test_configuration_elsewhere_cannot_widen_the_pod(home: Paths) -> None:
    """Chart values or profiles that would add a mount, a variable, a container or a privilege are
    replaced by the plan (default deny)."""

    async def run() -> dict[str, Any]:
        spawner = kube_spawner(home)
        spawner.extra_pod_config = {"volumes": [{"name": "docker", "hostPath": {"path": "/var/run"}}]}
        spawner.extra_container_config = {"securityContext": {"privileged": True}}
        spawner.extra_containers = [{"name": "sidecar", "image": "busybox"}]
        spawner.environment = {"AWS_SECRET_ACCESS_KEY": "leak"}
        spawner.profile_list = [{"display_name": "big", "kubespawner_override": {"privileged": True}}]
        pod = await rendered(spawner)
        assert spawner.profile_list == []
        return pod

    pod = asyncio.run(run())
    spec = pod["spec"]
    assert {volume["name"] for volume in spec["volumes"]} == {"home", "data", "scratch"}
    (container,) = spec["containers"]
    assert container["securityContext"]["privileged"] is False
    assert "AWS_SECRET_ACCESS_KEY" not in {item["name"] for item in container["env"]}


# ---- the project's network policy ---------------------------------------------------------------


def test_the_network_policy_denies_all_but_hub_services_and_proxy(home: Paths) -> None:
    spawner, _ = render_pod(home)
    policy = spawner.network_policy()
    spec = policy["spec"]
    assert policy["metadata"]["name"] == f"enclave-workspaces-{PROJECT}"
    assert spec["podSelector"]["matchLabels"] == {
        "org.enclave.project": PROJECT,
        "org.enclave.role": "workspace",
    }
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    egress = {
        (tuple(sorted(rule["to"][0]["podSelector"]["matchLabels"].items())), rule["ports"][0]["port"])
        for rule in spec["egress"]
    }
    assert egress == {
        ((("app", "jupyterhub"), ("component", "hub")), 8081),
        ((("app.kubernetes.io/name", "enclave-gateway"),), 8101),
        ((("app.kubernetes.io/name", "enclave-export-review"),), 8102),
    }
    for rule in spec["egress"]:  # no ipBlock, no namespace-wide peer, and no DNS (port 53)
        assert all(set(peer) == {"podSelector"} and peer["podSelector"]["matchLabels"] for peer in rule["to"])
        assert [port["protocol"] for port in rule["ports"]] == ["TCP"]
        assert all(port["port"] != 53 for port in rule["ports"])
    (ingress,) = spec["ingress"]
    sources = [peer["podSelector"]["matchLabels"]["component"] for peer in ingress["from"]]
    assert sorted(sources) == ["hub", "proxy"] and ingress["ports"] == [{"protocol": "TCP", "port": 8888}]


def test_a_service_without_pod_labels_is_refused(home: Paths) -> None:
    async def run() -> None:
        spawner = kube_spawner(home)
        spawner.service_pod_labels = {"gateway": {"app.kubernetes.io/name": "enclave-gateway"}}
        with pytest.raises(ValueError, match="export-review"):
            spawner.network_policy()

    asyncio.run(run())


# ---- one policy, two spawners -------------------------------------------------------------------


@pytest.mark.parametrize(("project", "rows"), [(PROJECT, False), (ROWS_PROJECT, True)])
def test_docker_and_kube_derive_the_same_workspace(home: Paths, project: str, rows: bool) -> None:
    data = published(home, project, rows)

    async def run() -> tuple[Any, Any, EnclaveSpawner, dict]:
        kube = kube_spawner(home, project=project)
        docker = docker_spawner(home, project=project)
        docker_plan = docker.make_plan(docker.check_access(), data, docker.service_bases(GATEWAY_IP))
        kube_plan = kube.make_plan(kube.check_access(), data, dict(kube.service_urls))
        net = ProjectNetwork(f"enclave-project-{project}", "id", "encl-x", GATEWAY_IP, "10.9.0.0/24")
        docker.apply_plan(docker_plan, net)
        kube.apply_plan(kube_plan, await kube.resolve_hosts())
        async with ApiClient() as api:
            pod = api.sanitize_for_serialization(await kube.get_pod_manifest())
        return docker_plan, kube_plan, docker, pod

    docker_plan, kube_plan, docker, pod = asyncio.run(run())
    assert docker_plan == kube_plan  # the same plan from the same inputs
    plan = kube_plan
    assert plan.access == ("rows" if rows else "aggregate") and plan.limits.pids == 64
    (container,) = pod["spec"]["containers"]

    # mounts: the home volume/claim read-write at home, the data read-only at the same path
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    kube_mounts = {
        m["mountPath"]: (claims.get(m["name"], m["name"]), bool(m.get("readOnly")))
        for m in container["volumeMounts"]
        if m["mountPath"] != "/tmp"
    }
    data_root = str(data.root)
    assert docker.volumes == {plan.home_volume: plan.home_path}
    assert docker.read_only_volumes == {data_root: data_root}
    assert kube_mounts == {plan.home_path: (plan.home_volume, False), data_root: ("enclave-published", True)}

    # environment: the same ENCLAVE_* values in both
    kube_env = {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("ENCLAVE_")}
    assert docker.environment == kube_env == dict(plan.env)
    assert ("ENCLAVE_ROWS_DB" in kube_env) is rows

    # limits: memory, CPU and scratch the same; PIDs in Docker (Kubernetes: the kubelet's podPidsLimit)
    host = docker.extra_host_config
    assert docker.mem_limit == int(container["resources"]["limits"]["memory"]) == plan.limits.memory
    assert docker.cpu_limit == float(container["resources"]["limits"]["cpu"]) == plan.limits.cpu
    assert host["pids_limit"] == plan.limits.pids and host["memswap_limit"] == plan.limits.memory
    scratch = next(v for v in pod["spec"]["volumes"] if v["name"] == "scratch")["emptyDir"]["sizeLimit"]
    assert f"size={plan.limits.scratch}" in host["tmpfs"]["/tmp"] and scratch == k8s_quantity(
        plan.limits.scratch
    )

    # user and labels
    assert (
        docker.extra_create_kwargs["user"]
        == f"{container['securityContext']['runAsUser']}:{container['securityContext']['runAsGroup']}"
    )
    assert docker.extra_create_kwargs["labels"].items() <= pod["metadata"]["labels"].items()
    assert docker.extra_create_kwargs["working_dir"] == container["workingDir"] == plan.home_path


def test_both_spawners_refuse_the_same_users(home: Paths) -> None:
    async def run() -> list[str]:
        codes = []
        for spawner in (kube_spawner(home, user="mallory"), docker_spawner(home, user="mallory")):
            with pytest.raises(WorkspaceRefused) as refused:
                await spawner.start()  # refused before any container, pod or API call
            codes.append(refused.value.code)
        kube = kube_spawner(home, project="")
        with pytest.raises(WorkspaceRefused) as refused:
            await kube.start()
        codes.append(refused.value.code)
        return codes

    assert asyncio.run(run()) == ["not_a_project_analyst", "not_a_project_analyst", "named_server_required"]


def test_plans_refuse_rows_the_mode_does_not_allow(home: Paths) -> None:
    with pytest.raises(ValueError, match="access mode"):
        workspace_policy.plan_workspace(
            user="alice",
            user_slug="alice",
            project=PROJECT,
            access="aggregate",
            data=published(home, PROJECT, rows=True),
            services={},
            settings=workspace_policy.WorkspaceSettings(),
        )


def test_sizes_become_kubernetes_quantities() -> None:
    assert [k8s_quantity(size) for size in ("512m", "2g", "64k", "1048576", "1T")] == [
        "512Mi",
        "2Gi",
        "64Ki",
        "1048576",
        "1Ti",
    ]
    with pytest.raises(ValueError):
        k8s_quantity("lots")


@pytest.mark.skipif(os.geteuid() != 0, reason="publishing hands files to another uid")
def test_prepare_workspace_publishes_and_applies_the_plan(home: Paths) -> None:
    async def run() -> dict:
        spawner = kube_spawner(home)
        await spawner.prepare_workspace()  # real check and publish; no NetworkPolicy write (off)
        async with ApiClient() as api:
            return api.sanitize_for_serialization(await spawner.get_pod_manifest())

    pod = asyncio.run(run())
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    twin = Path(env["ENCLAVE_TWIN_DB"])
    assert twin.is_file() and twin.parent.parent.parent == publish.workspaces_root(home)
    assert "ENCLAVE_ROWS_DB" not in env
