"""Project destruction removes its Docker home volumes, network and published copy, and the signed
certificate lists them (issue 7; R-LIFE-2, R-LIFE-4). Real dockerd; no hub or image needed."""

from __future__ import annotations

import json
import subprocess
from datetime import date, timedelta
from pathlib import Path

import docker
import pytest
from typer.testing import CliRunner

from enclave import catalog, db, projects
from enclave.cli import app
from enclave.config import Paths
from enclave.db.session import dispose_all
from enclave.prepare.destroy import verify_certificate
from enclave.specs import parse_project_spec
from hub_config import firewall, network, publish
from tests.e2e.conftest import PREFIX, REPO, remove_test_objects, sh
from tests.harness import factories

PROJECT = "e2e-doomed"
NEIGHBOUR = "e2e-doomed-b"  # its id starts with PROJECT's: label matching must keep it
NET_PREFIX = PREFIX + "net-"


@pytest.fixture(scope="module")
def client() -> docker.APIClient:
    started = subprocess.run(
        ["bash", str(REPO / "scripts/docker/start-dockerd.sh")], capture_output=True, text=True
    )
    assert started.returncode == 0, started.stderr[-2000:]
    remove_test_objects()
    api = docker.APIClient()
    yield api
    remove_test_objects()
    api.close()


def make_workspace_objects(api: docker.APIClient, project: str) -> tuple[list[str], str]:
    """What the spawner leaves: labelled home volumes per user, the project network and its chain."""
    volumes = []
    for user in ("alice", "bob"):
        name = f"{PREFIX}home-{project}-{user}"
        api.create_volume(name, labels={network.LABEL_PROJECT: project, "org.enclave.user": user})
        volumes.append(name)
    net = network.ensure_network(api, project, NET_PREFIX)
    firewall.apply(net.bridge, net.gateway, [8081])
    return volumes, net.name


def test_project_destroy_removes_docker_objects_and_lists_them(
    client: docker.APIClient, tmp_path: Path
) -> None:
    paths = Paths(tmp_path / "home")
    paths.home.mkdir()
    url = f"sqlite:///{paths.state_db}"
    db.migrate(url)
    sessions = db.connect(url)
    with db.session_scope(sessions) as session:
        for name, table, columns in (
            ("patients", factories.patients_table(40), factories.PATIENT_COLUMNS),
            ("visits", factories.visits_table(40), factories.VISIT_COLUMNS),
        ):
            catalog.register(
                session, paths, factories.write_dataset(tmp_path / "src", name, table, columns), actor="s"
            )
    period = {
        "start": (date.today() - timedelta(days=1)).isoformat(),
        "end": (date.today() + timedelta(days=30)).isoformat(),
    }
    for project in (PROJECT, NEIGHBOUR):
        spec = parse_project_spec(factories.project_spec(id=project, period=period))
        with db.session_scope(sessions) as session:
            projects.create_project(
                session, paths, spec, actor="steward", without_application=factories.NO_APPLICATION
            )
    dispose_all()
    doomed_volumes, doomed_net = make_workspace_objects(client, PROJECT)
    kept_volumes, kept_net = make_workspace_objects(client, NEIGHBOUR)
    published = publish.publish(paths, PROJECT, rows=False, uid=1000, gid=1000)
    bridge = network.bridge_name(doomed_net)

    result = CliRunner().invoke(
        app,
        ["--home", str(paths.home), "project", "destroy", PROJECT, "--json"],
        env={"ENCLAVE_DATABASE_URL": ""},
    )
    assert result.exit_code == 0, result.output
    certificate = json.loads(result.stdout)["certificate"]
    listed = {(item["kind"], item["name"]) for item in certificate["items"]}
    assert {("volume", v) for v in doomed_volumes} <= listed
    assert ("network", doomed_net) in listed
    assert ("directory", f"workspaces/{PROJECT}") in listed
    assert not {name for _, name in listed} & {*kept_volumes, kept_net, f"workspaces/{NEIGHBOUR}"}
    assert verify_certificate(Path(certificate["path"]))

    volumes = {v["Name"] for v in client.volumes().get("Volumes") or []}
    networks = {n["Name"] for n in client.networks()}
    assert not set(doomed_volumes) & volumes and doomed_net not in networks
    assert set(kept_volumes) <= volumes and kept_net in networks
    assert not published.root.exists()
    chains = sh("iptables", "-S", check=False).stdout
    assert firewall.chain_name(bridge) not in chains
    assert firewall.chain_name(network.bridge_name(kept_net)) in chains
