"""From inside a real workspace container: the lock-down holds (issue 7, item 4).

Egress is proven only with local addresses (ARCHITECTURE §8): no default route, DNS refused by
the firewalled gateway, host ports other than the hub's refused, another project's container
unreachable. Each "cannot" is paired with a "can" where one exists, so a test cannot pass because
the container is simply broken.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import pytest

from enclave import audit, db, lifecycle
from hub_config.revocation import stop_project_servers
from tests.e2e.conftest import PROJECT_A, PROJECT_B, PROJECT_C, Hub, exec_python, sh

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def alice(hub: Hub) -> str:
    return hub.start("alice", PROJECT_A)


def inspect(container: str) -> dict:
    return json.loads(sh("docker", "inspect", container).stdout)[0]


def gateway_of(container: str) -> str:
    networks = inspect(container)["NetworkSettings"]["Networks"]
    (net,) = networks.values()
    return net["Gateway"]


def test_container_settings_are_locked_down(alice: str) -> None:
    info = inspect(alice)
    host = info["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Privileged"] is False
    assert host["PidsLimit"] == 64
    assert host["Memory"] == 256 * 1024**2 and host["MemorySwap"] == host["Memory"]
    assert host["NanoCpus"] or host["CpuQuota"]
    assert info["Config"]["User"] == "1000:1000"
    (name,) = info["NetworkSettings"]["Networks"]
    assert name == f"enclave-test-net-{PROJECT_A}"
    network = json.loads(sh("docker", "network", "inspect", name).stdout)[0]
    assert network["Internal"] is True


def test_environment_holds_no_secrets_beyond_the_server_token(alice: str) -> None:
    env = dict(item.split("=", 1) for item in inspect(alice)["Config"]["Env"])
    assert "JUPYTERHUB_API_TOKEN" in env
    allowed = (
        "JUPYTERHUB_",
        "ENCLAVE_",
        "JPY_API_TOKEN",
        "JUPYTER_IMAGE_SPEC",
        "MEM_LIMIT",
        "CPU_LIMIT",
        "PATH",
        "HOME",
        "SHELL",
        "LANG",
        "JUPYTER_RUNTIME_DIR",
        "JUPYTER_CONFIG_DIR",  # the image's: a root-owned directory, not the home
        "JUPYTERLAB_SETTINGS_DIR",
        "JUPYTERLAB_WORKSPACES_DIR",
        "PYTHONDONTWRITEBYTECODE",
        "MPLCONFIGDIR",
    )
    assert [k for k in env if not k.startswith(allowed)] == []
    assert "ENCLAVE_HOME" not in env and "ENCLAVE_DATABASE_URL" not in env
    assert env["ENCLAVE_PROJECT"] == PROJECT_A


def test_runs_as_non_root_without_capabilities(alice: str) -> None:
    done = exec_python(
        alice,
        "import os; s = open('/proc/self/status').read();"
        "caps = [l.split()[1] for l in s.splitlines() if l.startswith(('CapEff', 'CapPrm', 'CapBnd'))];"
        "print(os.getuid(), os.getgid(), *caps)",
    )
    uid, gid, *caps = done.stdout.split()
    assert (uid, gid) == ("1000", "1000")
    assert all(int(cap, 16) == 0 for cap in caps), caps


def test_root_filesystem_is_read_only_and_home_is_writable(alice: str) -> None:
    done = exec_python(
        alice,
        "import errno\n"
        "for path in ['/escape', '/opt/venv/escape', '/etc/escape']:\n"
        "    try:\n        open(path, 'w')\n        print('WROTE', path)\n"
        "    except OSError as e:\n        print(errno.errorcode[e.errno], path)\n"
        "open('/home/analyst/work.txt', 'w').write('ok'); print('HOME OK')\n"
        "open('/tmp/scratch', 'w').write('ok'); print('TMP OK')\n",
    )
    assert "WROTE" not in done.stdout, done.stdout
    assert done.stdout.count("EROFS") + done.stdout.count("EACCES") == 3, done.stdout
    assert "HOME OK" in done.stdout and "TMP OK" in done.stdout, done.stdout + done.stderr


def test_no_docker_socket_and_no_vault(alice: str, hub: Hub) -> None:
    vault = str(hub.paths.vault)
    done = exec_python(
        alice,
        "import os, sys\n"
        f"for p in ['/var/run/docker.sock', '/run/docker.sock', {vault!r}, {str(hub.paths.state_db)!r}]:\n"
        "    print(p, os.path.exists(p))\n"
        "print('MOUNTS', open('/proc/self/mounts').read())\n",
    )
    lines = [
        line for line in done.stdout.splitlines() if not line.startswith(("MOUNTS", " ")) and " " in line
    ]
    assert lines and all(line.endswith("False") for line in lines[:4]), done.stdout
    assert "docker.sock" not in done.stdout.split("MOUNTS", 1)[1]


def test_no_raw_or_prepared_data_only_the_twin(alice: str) -> None:
    env = dict(item.split("=", 1) for item in inspect(alice)["Config"]["Env"])
    assert env["ENCLAVE_ACCESS"] == "aggregate" and "ENCLAVE_ROWS_DB" not in env
    twin_db = env["ENCLAVE_TWIN_DB"]
    done = exec_python(
        alice,
        "import duckdb, os\n"
        f"con = duckdb.connect({twin_db!r}, read_only=True)\n"
        "print('TWIN', con.sql('SELECT count(*) FROM patients').fetchone()[0])\n"
        f"root = os.path.dirname({twin_db!r})\n"
        "print('FILES', sorted(os.listdir(root)))\n"
        "try:\n    open(os.path.join(root, 'x'), 'w')\nexcept OSError as e:\n    print('RO', e.errno)\n"
        "con.close()\n"  # the client's locked-down connection is a different configuration of the file
        "import enclave_client\n"
        "print('CLIENT', enclave_client.twin().sql('SELECT count(*) FROM patients').fetchone()[0])\n"
        "try:\n    enclave_client.rows()\n"
        "except enclave_client.QueryError as e:\n    print('NOROWS', e.code)\n",
    )
    assert "TWIN" in done.stdout and int(done.stdout.split("TWIN ")[1].split()[0]) > 0, (
        done.stdout + done.stderr
    )
    files = done.stdout.split("FILES ")[1].splitlines()[0]
    assert "rows" not in files and "views.duckdb" not in files, files
    assert "RO" in done.stdout
    # The client opens the same twin (ENCLAVE_TWIN_DB) and says the project has no rows.
    assert "CLIENT " in done.stdout, done.stdout + done.stderr
    assert done.stdout.split("CLIENT ")[1].split()[0] == done.stdout.split("TWIN ")[1].split()[0]
    assert "NOROWS no_row_access" in done.stdout, done.stdout + done.stderr


def test_no_route_out(alice: str) -> None:
    """Docker puts a default route to the network's gateway (the host) even on internal networks;
    what matters is that the host forwards nothing from this bridge anywhere else and does not
    masquerade it, so nothing leaves (proved without sending a packet off this machine)."""
    done = exec_python(alice, "print(open('/proc/net/route').read())")
    routes = [line.split() for line in done.stdout.splitlines()[1:] if line.strip()]
    gateway = gateway_of(alice)
    gateway_hex = "".join(f"{int(part):02X}" for part in reversed(gateway.split(".")))
    assert routes and all(f[1] != "00000000" or f[2] == gateway_hex for f in routes), done.stdout
    bridge = json.loads(sh("docker", "network", "inspect", f"enclave-test-net-{PROJECT_A}").stdout)[0]
    name = bridge["Options"]["com.docker.network.bridge.name"]
    subnet = bridge["IPAM"]["Config"][0]["Subnet"]
    forward = sh("iptables", "-S").stdout
    assert f"-i {name} ! -d {subnet}" in forward.replace("-A DOCKER-ISOLATION-STAGE-1 ", "") or any(
        name in line and "DROP" in line and "! -d" in line for line in forward.splitlines()
    ), forward
    nat = sh("iptables", "-t", "nat", "-S").stdout
    assert not any(subnet in line and "MASQUERADE" in line for line in nat.splitlines()), nat


def test_dns_does_not_resolve_outside_names(alice: str) -> None:
    done = exec_python(
        alice,
        "import socket\ntry:\n    print('RESOLVED', socket.getaddrinfo('pypi.org', 443))\n"
        "except socket.gaierror as e:\n    print('NO DNS', e)\n",
        timeout=60,
    )
    assert "NO DNS" in done.stdout, done.stdout + done.stderr
    assert inspect(alice)["HostConfig"]["Dns"] == [gateway_of(alice)]


def test_only_the_allowed_host_ports_are_reachable(alice: str, hub: Hub) -> None:
    gateway = gateway_of(alice)
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(5)
    forbidden_port = listener.getsockname()[1]
    threading.Thread(target=lambda: listener.accept(), daemon=True).start()
    hub_port = int(hub.api.split(":")[2].split("/")[0])
    api_port = hub_api_port(alice)
    code = (
        "import socket\n"
        "def probe(port):\n"
        "    s = socket.socket(); s.settimeout(5)\n"
        f"    try:\n        s.connect(({gateway!r}, port)); return 'OPEN'\n"
        "    except ConnectionRefusedError:\n        return 'REFUSED'\n"
        "    except OSError as e:\n        return 'ERR ' + str(e)\n"
        f"for port in {[api_port, forbidden_port, hub_port, 22]!r}:\n    print(port, probe(port))\n"
    )
    try:
        done = exec_python(alice, code)
    finally:
        listener.close()
    result = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert result[str(api_port)] == "OPEN", done.stdout + done.stderr
    assert result[str(forbidden_port)] == "REFUSED", done.stdout
    assert result[str(hub_port)] == "REFUSED", done.stdout  # the public proxy port is not for workspaces
    assert result["22"] == "REFUSED", done.stdout


def hub_api_port(container: str) -> int:
    env = dict(item.split("=", 1) for item in inspect(container)["Config"]["Env"])
    return int(env["JUPYTERHUB_API_URL"].split(":")[2].split("/")[0])


def test_another_projects_container_is_unreachable(alice: str, hub: Hub) -> None:
    frank = hub.start("frank", PROJECT_B)
    (b_net,) = inspect(frank)["NetworkSettings"]["Networks"].values()
    code = (
        "import socket\n"
        f"for host in {[b_net['IPAddress'], b_net['Gateway']]!r}:\n"
        "    s = socket.socket(); s.settimeout(5)\n"
        "    try:\n        s.connect((host, 8888)); print(host, 'OPEN')\n"
        "    except OSError as e:\n        print(host, 'BLOCKED', e.errno)\n"
    )
    done = exec_python(alice, code)
    assert done.stdout.count("BLOCKED") == 2, done.stdout + done.stderr
    # The hub itself (from the host) does reach frank's server: the block is the network, not a dead server.
    status, _ = hub.get_url(f"/user/frank/{PROJECT_B}/api/status")
    assert status == 200


def test_download_endpoints_refuse(alice: str, hub: Hub) -> None:
    exec_python(
        alice,
        "open('/home/analyst/secret.csv', 'w').write('a,b\\n1,2\\n');"
        "open('/home/analyst/blob.bin', 'wb').write(bytes(range(256)))",
    )
    base = f"/user/alice/{PROJECT_A}"
    status, body = hub.get_url(f"{base}/api/contents/")
    assert status == 200 and "secret.csv" in body  # the contents API itself works
    for path in [
        "/files/secret.csv",
        "/files/secret.csv?download=1",
        "/view/secret.csv",
        "/nbconvert/html/secret.csv",
        "/api/contents/blob.bin?content=1&format=base64",
        "/api/contents/blob.bin?content=1",
    ]:
        status, body = hub.get_url(base + path)
        assert status == 403, (path, status, body[:300])
    status, body = hub.get_url(f"{base}/files/secret.csv")
    assert json.loads(body)["errors"][0]["code"] == "download_disabled"
    status, body = hub.get_url(f"{base}/lab/api/settings")
    config = sh("docker", "exec", alice, "cat", "/opt/venv/etc/jupyter/labconfig/page_config.json").stdout
    assert json.loads(config)["lockedExtensions"]["@jupyterlab/filebrowser-extension:download"] is True


def test_a_user_outside_the_project_cannot_start_its_server(hub: Hub) -> None:
    hub.ensure_user("mallory")
    status, body = hub.call("POST", f"/users/mallory/servers/{PROJECT_A}")
    assert status >= 400 and "not_a_project_analyst" in json.dumps(body, ensure_ascii=False), (status, body)
    assert "不是项目" in json.dumps(body, ensure_ascii=False)
    assert hub.server("mallory", PROJECT_A) is None
    assert not sh(
        "docker", "ps", "-q", "--filter", f"name=enclave-test-ws-{PROJECT_A}-mallory"
    ).stdout.strip()
    status, body = hub.call("POST", "/users/mallory/server")  # the default (unnamed) server is refused too
    assert status >= 400 and "named_server_required" in json.dumps(body), (status, body)


def test_memory_limit_holds(alice: str) -> None:
    done = exec_python(
        alice, "b = []\nfor _ in range(64):\n    b.append(bytearray(16 * 1024 * 1024))\nprint('SURVIVED')"
    )
    assert "SURVIVED" not in done.stdout
    assert done.returncode in (137, -9), (done.returncode, done.stderr[-300:])


def test_fork_bomb_is_stopped_by_the_pid_limit(alice: str, hub: Hub) -> None:
    code = (
        "import os, time, signal\n"
        "kids = []\n"
        "try:\n"
        "    for _ in range(500):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n            time.sleep(30); os._exit(0)\n"
        "        kids.append(pid)\n"
        "    print('FORKED', len(kids))\n"
        "except OSError as e:\n    print('STOPPED', len(kids), e.errno)\n"
        "for pid in kids:\n    os.kill(pid, signal.SIGKILL)\n"
        "for pid in kids:\n    os.waitpid(pid, 0)\n"
    )
    done = exec_python(alice, code)
    assert done.stdout.startswith("STOPPED"), done.stdout + done.stderr
    assert int(done.stdout.split()[1]) < 64
    status, _ = hub.get_url(f"/user/alice/{PROJECT_A}/api/status")  # the workspace survived
    assert status == 200


def test_an_expired_projects_server_is_stopped(hub: Hub) -> None:
    container = hub.start("frank", PROJECT_B)
    sessions = db.connect(f"sqlite:///{hub.paths.state_db}")
    with db.session_scope(sessions) as session:
        lifecycle.expire(
            session, PROJECT_B, actor="steward", hooks=[stop_project_servers(hub.api, hub.token)]
        )
    assert wait_until_gone(hub, "frank", PROJECT_B, container)
    status, body = hub.call("POST", f"/users/frank/servers/{PROJECT_B}")
    assert status >= 400 and "project_not_active" in json.dumps(body), (status, body)


def test_a_suspended_projects_server_stops_at_the_next_poll(hub: Hub) -> None:
    container = hub.start("frank", PROJECT_C)
    sessions = db.connect(f"sqlite:///{hub.paths.state_db}")
    with db.session_scope(sessions) as session:  # no revocation hook: the spawner's poll must notice
        lifecycle.suspend(session, PROJECT_C, actor="steward", reason="e2e test")
    assert wait_until_gone(hub, "frank", PROJECT_C, container)
    with db.session_scope(sessions) as session:  # the stop is audited with its cause and container
        (stop,) = [e for e in audit.tail(session, 50, project=PROJECT_C) if e.action == "server.stop"][-1:]
        details = json.loads(stop.details_json)
    assert details["cause"] == "access_revoked" and details["code"], details
    assert details["container_name"] == container and details["image_digest"].startswith("sha256:")


def wait_until_gone(hub: Hub, user: str, project: str, container: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = subprocess.run(
            ["docker", "ps", "-q", "--filter", f"name={container}"], capture_output=True, text=True
        ).stdout.strip()
        if not running and hub.server(user, project) is None:
            return True
        time.sleep(1)
    return False
