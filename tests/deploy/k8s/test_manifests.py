"""deploy/k8s validated without a cluster (issue 13, item 4): every manifest against the Kubernetes
API models (unknown fields fail), the Zero to JupyterHub values against the keys the chart documents,
and the pieces checked against each other (the spawner's service settings name real Services and
pod labels; secrets are files, never environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.k8s.kube_models import model_errors
from tests.deploy.k8s.z2jh_keys import KEYS_FILE, load_documented_keys, schema_key_paths, undocumented

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
VALUES = DEPLOY / "values.yaml"
KINDS = {
    "ConfigMap",
    "Deployment",
    "Service",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "Role",
    "RoleBinding",
}


def manifests() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path != VALUES:
            found += [
                (f"{path.name}#{i}", doc) for i, doc in enumerate(yaml.safe_load_all(path.read_text())) if doc
            ]
    return found


def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in manifests() if doc["kind"] == kind]


def by_name(kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in of_kind(kind) if doc["metadata"]["name"] == name]
    return found


# ---- the models --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "manifest"), manifests(), ids=[name for name, _ in manifests()])
def test_every_manifest_is_a_valid_api_object(name: str, manifest: dict[str, Any]) -> None:
    assert manifest["kind"] in KINDS, f"{name}: add {manifest['kind']} to KINDS once its model is checked"
    assert model_errors(manifest) == []


def test_the_model_check_refuses_unknown_fields_and_missing_ones() -> None:
    deployment = by_name("Deployment", "enclave-gateway")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {"privileged": False}
    assert model_errors(broken) == [
        "V1Deployment.spec.template.spec.containers[0].securityContex: not a field of V1Container"
    ]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8101"
    assert model_errors(broken) != []
    del broken["spec"]["template"]["spec"]["containers"]
    assert any("containers" in error for error in model_errors(broken))


# (values path, model) for the Kubernetes objects embedded in the chart values
EMBEDDED = [
    ("hub.extraVolumes", "list[V1Volume]"),
    ("hub.extraVolumeMounts", "list[V1VolumeMount]"),
    ("hub.initContainers", "list[V1Container]"),
    ("hub.containerSecurityContext", "V1SecurityContext"),
    ("hub.podSecurityContext", "V1PodSecurityContext"),
    ("proxy.chp.containerSecurityContext", "V1SecurityContext"),
    ("proxy.chp.networkPolicy.egress", "list[V1NetworkPolicyEgressRule]"),
]


@pytest.mark.parametrize(("path", "model"), EMBEDDED)
def test_objects_inside_the_values_are_valid_api_objects(path: str, model: str) -> None:
    from tests.deploy.k8s.kube_models import field_errors

    node: Any = values()
    for key in path.split("."):
        node = node[key]
    assert field_errors(node, model, path) == []


# ---- the chart's documented keys ----------------------------------------------------------------


def test_values_use_only_keys_the_chart_documents() -> None:
    leaves, free = load_documented_keys()
    assert "4.4.0" in KEYS_FILE.read_text().splitlines()[0]  # the chart version values.yaml names
    assert "--version 4.4.0" in VALUES.read_text()
    assert undocumented(values(), leaves, free) == []


def test_the_key_check_refuses_a_misspelt_key() -> None:
    leaves, free = load_documented_keys()
    assert undocumented({"singleuser": {"networkPolicy": {"enable": False}}}, leaves, free) == [
        "singleuser.networkPolicy.enable"
    ]
    assert undocumented({"hub": {"extraConfig": {"anything": "x"}}}, leaves, free) == []


def test_key_paths_come_from_the_schema() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "hub": {
                "type": "object",
                "properties": {
                    "config": {"type": "object", "additionalProperties": True},
                    "extraVolumes": {"type": "array"},
                    "db": {"type": "object", "properties": {"url": {"type": ["string", "null"]}}},
                    "labels": {"type": "object", "patternProperties": {".*": {"type": "string"}}},
                },
            }
        },
    }
    assert list(schema_key_paths(schema)) == [
        "hub.config.*",
        "hub.extraVolumes",
        "hub.db.url",
        "hub.labels.*",
    ]


# ---- the pieces fit together --------------------------------------------------------------------


def spawner_config() -> dict[str, Any]:
    return values()["hub"]["config"]["EnclaveKubeSpawner"]


def test_the_hub_runs_the_enclave_spawner_and_the_chart_policy_is_replaced() -> None:
    config = values()
    assert (
        config["hub"]["config"]["JupyterHub"]["spawner_class"] == "hub_config.kubespawner.EnclaveKubeSpawner"
    )
    assert config["singleuser"]["networkPolicy"]["enabled"] is False
    assert config["singleuser"]["cloudMetadata"]["blockWithIptables"] is False  # no privileged init container
    assert (
        config["hub"]["networkPolicy"]["enabled"] is True
        and config["proxy"]["chp"]["networkPolicy"]["enabled"]
    )
    for rules in (config["hub"]["networkPolicy"], config["proxy"]["chp"]["networkPolicy"]):
        assert rules["egressAllowRules"]["nonPrivateIPs"] is False
        assert rules["egressAllowRules"]["cloudMetadataServer"] is False
    # without the chart's policy, the default deny of deploy/k8s must cover every workspace pod
    selectors = [doc["spec"]["podSelector"]["matchLabels"] for doc in of_kind("NetworkPolicy")]
    deny_all = [
        doc["spec"]["podSelector"]["matchLabels"]
        for doc in of_kind("NetworkPolicy")
        if sorted(doc["spec"]["policyTypes"]) == ["Egress", "Ingress"]
        and not doc["spec"].get("ingress")
        and not doc["spec"].get("egress")
    ]
    assert {"component": "singleuser-server"} in deny_all and {"org.enclave.role": "workspace"} in deny_all
    assert selectors


def test_service_urls_name_the_services_and_their_pods() -> None:
    config = spawner_config()
    from urllib.parse import urlsplit

    assert (
        set(config["service_urls"]) == set(config["service_pod_labels"]) == set(values()["hub"]["services"])
    )
    for name, url in config["service_urls"].items():
        parts = urlsplit(url)
        service = by_name("Service", parts.hostname)
        (port,) = service["spec"]["ports"]
        assert port["port"] == parts.port
        deployment = by_name("Deployment", parts.hostname)
        pod = deployment["spec"]["template"]
        # the project policy allows the pod's labels on the service port: Service port == pod port
        assert config["service_pod_labels"][name].items() <= pod["metadata"]["labels"].items()
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        (container,) = pod["spec"]["containers"]
        assert [p["containerPort"] for p in container["ports"]] == [parts.port]
        assert values()["hub"]["services"][name]["url"] == url
        # the service's own policy lets workspaces in on that port
        policy = by_name("NetworkPolicy", parts.hostname)
        (ingress,) = policy["spec"]["ingress"]
        assert {"podSelector": {"matchLabels": {"org.enclave.role": "workspace"}}} in ingress["from"]
        assert ingress["ports"] == [{"protocol": "TCP", "port": parts.port}]


def test_service_pods_are_locked_down() -> None:
    for deployment in of_kind("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False and spec["enableServiceLinks"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"]["limits"]


def env_sources(container: dict[str, Any]) -> list[Any]:
    return [item.get("valueFrom") for item in container.get("env", [])] + container.get("envFrom", [])


def test_secrets_are_files_never_environment_variables() -> None:
    for deployment in of_kind("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        for container in spec["containers"] + spec.get("initContainers", []):
            for source in env_sources(container):
                assert source is None or set(source) == {"fieldRef"}, container["name"]
        secret_volumes = [v for v in spec["volumes"] if "secret" in v or "projected" in v]
        for volume in secret_volumes:
            mode = (volume.get("secret") or volume.get("projected"))["defaultMode"]
            assert mode & 0o007 == 0, "no access for others"
            # only the init container reads the Secret itself; it copies the files 0400
            readers = [
                c for c in spec["containers"] if any(m["name"] == volume["name"] for m in c["volumeMounts"])
            ]
            assert readers == []
        (init,) = spec["initContainers"]
        assert "install -m 0400" in " ".join(init["command"])
    hub = values()["hub"]
    assert all(not isinstance(value, dict) for value in hub["extraEnv"].values())  # no secretKeyRef
    assert "password" not in yaml.safe_dump(values()).lower().replace("passfile", "")


def test_workspace_sized_like_the_docker_deployment() -> None:
    """The values repeat the Docker defaults (hub_config/jupyterhub_config.py, EnclaveSpawner)."""
    from hub_config.kubespawner import EnclaveKubeSpawner
    from hub_config.spawner import EnclaveSpawner

    config = spawner_config()
    assert config["pids_limit"] == EnclaveSpawner.pids_limit.default_value
    assert config["scratch_size"] == EnclaveSpawner.scratch_size.default_value
    assert config["hub_port"] == EnclaveKubeSpawner.hub_port.default_value
    assert values()["singleuser"]["uid"] == EnclaveSpawner.workspace_uid.default_value
