"""Bind addresses (issue 13, item 2): the hub API, the gateway, the export review and the runs
service listen on loopback only, so every other address of the host refuses their ports, while a
workspace still reaches all of them at its project network's gateway, on a network made after the
hub started.

A real hub with its managed services, started from ``hub_config/jupyterhub_config.py`` (the test
config loads it), and a real workspace container. Only local addresses are contacted.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from enclave import db, projects
from enclave.config import Paths
from enclave.specs import parse_project_spec
from tests.e2e.conftest import Hub, container_of, exec_python, free_port, launch_hub, sh
from tests.harness import factories

pytestmark = pytest.mark.slow

PROJECT = "e2e-bind"  # a project of its own: its network does not exist until this hub spawns


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def bound(
    docker_ready: None, enclave_home: Paths, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Hub, dict[str, int]]]:
    """A hub running the gateway, the export review and the runs service; the name -> port of the
    listeners."""
    period = {
        "start": (date.today() - timedelta(days=1)).isoformat(),
        "end": (date.today() + timedelta(days=60)).isoformat(),
    }
    spec = parse_project_spec(factories.project_spec(id=PROJECT, pi="ivy", analysts=["ivy"], period=period))
    with db.session_scope(db.connect(f"sqlite:///{enclave_home.state_db}")) as session:
        projects.create_project(
            session, enclave_home, spec, actor="steward", without_application=factories.NO_APPLICATION
        )
    (enclave_home.home / "export-review.yaml").write_text("stewards: [sam]\n")
    ports = {
        "hub API": free_port(),
        "gateway": free_port(),
        "export review": free_port(),
        "runs": free_port(),
    }
    workdir = tmp_path_factory.mktemp("bind-hub")
    with launch_hub(
        enclave_home,
        workdir,
        ENCLAVE_HUB_API_PORT=str(ports["hub API"]),
        ENCLAVE_GATEWAY_PORT=str(ports["gateway"]),
        ENCLAVE_EXPORT_REVIEW_PORT=str(ports["export review"]),
        ENCLAVE_RUNS_PORT=str(ports["runs"]),
        ENCLAVE_HUB_SERVICES="gateway,export-review,runs",
        ENCLAVE_TEST_PROXY_API_PORT=str(free_port()),
    ) as hub:
        deadline = time.monotonic() + 90
        while not all(listening(port) for port in ports.values()):
            assert time.monotonic() < deadline, f"a service did not start:\n{hub.log.read_text()[-4000:]}"
            time.sleep(0.5)
        yield hub, ports
        hub.stop("ivy", PROJECT)


def host_addresses() -> list[tuple[str, str]]:
    """(interface, address) of every address of the host but loopback's, from ``ip -j addr``."""
    found = []
    for link in json.loads(sh("ip", "-j", "addr").stdout):
        for info in link.get("addr_info", []):
            address = info["local"]
            if link["ifname"] == "lo" or address.startswith("127.") or address == "::1":
                continue
            found.append((link["ifname"], address))
    return found


def connect(interface: str, address: str, port: int) -> str:
    scope = f"%{interface}" if address.startswith("fe80:") else ""
    family, kind, proto, _, target = socket.getaddrinfo(f"{address}{scope}", port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.settimeout(5)
        try:
            probe.connect(target)
        except ConnectionRefusedError:
            return "REFUSED"
        except OSError as error:
            return f"ERR {error}"
    return "OPEN"


def test_nothing_listens_on_a_wildcard_address(bound: tuple[Hub, dict[str, int]]) -> None:
    _, ports = bound
    for name, port in ports.items():
        lines = sh("ss", "-Hltn", f"sport = :{port}").stdout.split("\n")
        local = {line.split()[3].rsplit(":", 1)[0] for line in lines if line.strip()}
        assert local == {"127.0.0.1"}, (name, lines)


def test_every_other_host_address_refuses_and_loopback_answers(bound: tuple[Hub, dict[str, int]]) -> None:
    hub, ports = bound
    container = hub.start("ivy", PROJECT)  # a project bridge now exists: its address is checked too
    settings = json.loads(sh("docker", "inspect", container).stdout)[0]["NetworkSettings"]
    (network,) = settings["Networks"].values()
    bridge_gateway = network["Gateway"]
    addresses = host_addresses()
    names = {name for name, _ in addresses}
    assert "docker0" in names and any(n.startswith("encl-") for n in names), addresses
    assert bridge_gateway in {address for _, address in addresses}
    for name, port in ports.items():
        assert connect("lo", "127.0.0.1", port) == "OPEN", name
        for interface, address in addresses:
            assert connect(interface, address, port) == "REFUSED", (name, interface, address)


def test_a_workspace_reaches_all_three_on_its_gateway(bound: tuple[Hub, dict[str, int]]) -> None:
    hub, ports = bound
    container = hub.start("ivy", PROJECT)
    assert container == container_of("ivy", PROJECT)
    code = (
        "import json, os, socket, urllib.request\n"
        "gateway = os.environ['ENCLAVE_GATEWAY_URL']\n"
        "host = gateway.split('//')[1].split(':')[0]\n"
        "def probe(port):\n"
        "    s = socket.socket(); s.settimeout(5)\n"
        "    try:\n        s.connect((host, port)); return 'OPEN'\n"
        "    except OSError as e:\n        return 'ERR ' + str(e)\n"
        "    finally:\n        s.close()\n"
        f"print(json.dumps({{str(p): probe(p) for p in {sorted(ports.values())!r}}}))\n"
        "print(urllib.request.urlopen(gateway + 'api/health', timeout=10).status)\n"
    )
    done = exec_python(container, code)
    assert done.returncode == 0, done.stdout + done.stderr
    reached, health = done.stdout.splitlines()
    assert json.loads(reached) == {str(port): "OPEN" for port in ports.values()}, done.stdout
    assert health == "200"


def test_the_proxy_is_the_only_way_in_from_the_host(bound: tuple[Hub, dict[str, int]]) -> None:
    """The public URL still serves the services (the proxy reaches them on loopback)."""
    hub, _ = bound
    status, body = hub.get_url("/services/gateway/api/health")
    assert status == 200 and json.loads(body) == {"ok": True}
