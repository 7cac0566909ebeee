"""The worker with real Docker (issue 12): runs that succeed, fail, time out and are cancelled; the
run container's lock-down and network isolation, proved only with local addresses; a worker that
stops and one that crashed.

Needs root (Docker networks and the host firewall) and Docker; skips without them. Everything it
makes is named ``enclave-test-runs-*`` and removed before and after, so an e2e run on the same host
is left alone. No gateway: these notebooks compute and write files only.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from enclave import audit, db
from enclave.config import Paths
from enclave.db.models import AuditEvent
from enclave.db.session import dispose_all
from enclave.runs import queue, service
from enclave.runs.worker import Worker
from tests.crash import wait_until
from tests.export_review.factories import ExportEnv, make_project
from tests.harness.docker_objects import docker_usable, remove_named, sh
from tests.runs.factories import fake_prepared, notebook_bytes

REPO = Path(__file__).resolve().parents[2]
PREFIX = "enclave-test-runs-"
NET_PREFIX = PREFIX + "net-"
IMAGE = "enclave/analyst:latest"
PROJECT = "cardio-2026"
OTHER = "onco-2026"

pytestmark = pytest.mark.slow


if os.geteuid() != 0 or not docker_usable():
    pytest.skip("the run worker's Docker tests need root and Docker", allow_module_level=True)


@pytest.fixture(scope="module")
def image_ready() -> Iterator[None]:
    has_papermill = sh(
        "docker", "run", "--rm", "--pull", "never", IMAGE, "papermill", "--version", check=False
    )
    if has_papermill.returncode != 0:
        built = sh("bash", str(REPO / "images/build.sh"), check=False)
        assert built.returncode == 0, f"building the images failed:\n{built.stderr[-4000:]}"
    remove_named(PREFIX)
    yield
    remove_named(PREFIX)


class Listener:
    """A TCP port on the host's loopback that accepts (and counts) connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def allowed() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[ExportEnv]:
    home = tmp_path / "home"
    home.mkdir()
    paths = Paths(home)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    db.migrate(url)
    audit.use_vault(url, paths)
    (tmp_path / "work").mkdir()
    environment = ExportEnv(db.connect(url), paths, tmp_path / "work")
    for project in (PROJECT, OTHER):
        make_project(environment, project_id=project)
        fake_prepared(paths, project)
    yield environment
    dispose_all()


def make_worker(
    env: ExportEnv, allowed: Listener, hooks: tuple = (), **kwargs
) -> tuple[Worker, list[tuple[str, str]]]:
    from hub_config.batch import BatchSettings, DockerRunExecutor
    from hub_config.workspace_policy import Limits

    settings = BatchSettings(
        image=IMAGE,
        limits=Limits(memory=768 * 1024**2, cpu=1.0),
        hub_port=allowed.port,
        service_ports={"gateway": allowed.port},
        network_prefix=NET_PREFIX,
        name_prefix=PREFIX,
    )
    finished: list[tuple[str, str]] = []
    worker = Worker(
        env.session,
        env.paths,
        DockerRunExecutor(env.paths, settings),
        host_cap=2,
        poll_s=0.3,
        on_finished=[*hooks, lambda session, paths, run: finished.append((run.id, run.state))],
        **kwargs,
    )
    return worker, finished


def submit(env: ExportEnv, nb: bytes, parameters: dict | None = None, **fields) -> str:
    with env.session() as s:
        return service.submit(
            s,
            env.paths,
            project=PROJECT,
            user="bob",
            notebook=nb,
            notebook_name="analysis.ipynb",
            parameters=parameters or {},
            actor="bob",
            image=IMAGE,
            **fields,
        ).id


def described(env: ExportEnv, run_id: str) -> dict:
    with env.session() as s:
        return service.describe(s, service.get_run(s, run_id))


def output_bytes(env: ExportEnv, run_id: str, name: str) -> bytes:
    with env.session() as s:
        return service.output_path(env.paths, service.get_run(s, run_id), name).read_bytes()


def container_gone(run_id: str) -> bool:
    return not sh("docker", "ps", "-aq", "--filter", f"name={PREFIX}{run_id}").stdout.strip()


LOCKDOWN_PROBE = """
import csv, json, os
rows = [['group', 'n'], ['a', 10 * scale], ['b', 20 * scale]]
with open('table.csv', 'w', newline='') as f:
    csv.writer(f).writerows(rows)
os.makedirs('figures', exist_ok=True)
open('figures/note.txt', 'w').write('ok')
os.symlink('/etc/passwd', 'passwd-link')
os.mkfifo('pipe')
os.makedirs('.ipynb_checkpoints', exist_ok=True)
def writable(path):
    try:
        open(path, 'w').close()
        return True
    except OSError:
        return False
mounts = {line.split()[1]: line.split()[2:4] for line in open('/proc/self/mounts')}
probe = {
    'cwd': os.getcwd(), 'uid': os.getuid(), 'gid': os.getgid(),
    'token': os.environ.get('JUPYTERHUB_API_TOKEN', ''), 'run_id': os.environ.get('ENCLAVE_RUN_ID'),
    'project': os.environ.get('ENCLAVE_PROJECT'), 'env': sorted(os.environ),
    'root_writable': writable('/usr/probe'), 'in_writable': writable('/run/enclave/in/probe'),
    'home_writable': writable('/home/analyst/probe'), 'tmp_writable': writable('/tmp/probe'),
    'mounts': {p: mounts.get(p) for p in ['/', '/home/analyst', '/tmp', '/run/enclave/in']},
    'status': [l.strip() for l in open('/proc/self/status') if l.startswith(('CapEff', 'NoNewPrivs'))],
}
json.dump(probe, open('probe.json', 'w'))
"""


def test_a_run_that_succeeds(image_ready: None, env: ExportEnv, allowed: Listener) -> None:
    worker, finished = make_worker(env, allowed)
    nb = notebook_bytes(LOCKDOWN_PROBE, "print('done')", parameters="scale = 1")
    run_id = submit(env, nb, {"scale": 3})
    assert worker.run_once() == run_id
    run = described(env, run_id)
    assert run["state"] == "succeeded", run
    assert run["error"] is None
    table = b"group,n\r\na,30\r\nb,60\r\n"
    outputs = {o["name"]: o for o in run["outputs"]}
    assert set(outputs) == {"table.csv", "figures/note.txt", "probe.json"}, run["outputs"]
    assert outputs["table.csv"]["sha256"] == hashlib.sha256(table).hexdigest()
    assert output_bytes(env, run_id, "table.csv") == table
    assert run["executed"] and run["image_digest"].startswith("sha256:")
    assert run["progress"] == {"cells_done": 3, "cells_total": 3}
    with env.session() as s:
        stored = service.get_run(s, run_id)
        assert stored.token_hash is None and stored.container_id
        executed = json.loads(service.read_stored(env.paths, stored.executed_sha256))
        assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])
        log = service.log_text(env.paths, stored)
        assert "Ending Cell 4" in log and "passwd-link" in log and "pipe" in log  # the skipped, reported
        actions = [
            e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.object == f"run:{run_id}"))
        ]
        assert actions == ["run.submit", "run.start", "run.finish"]
    assert finished == [(run_id, "succeeded")]
    assert container_gone(run_id) and not service.run_dir(env.paths, run_id).exists()

    probe = json.loads(output_bytes(env, run_id, "probe.json"))
    assert probe["cwd"] == "/run/enclave/out" and (probe["uid"], probe["gid"]) == (1000, 1000)
    assert probe["token"].startswith("encrun_") and probe["run_id"] == run_id and probe["project"] == PROJECT
    assert hashlib.sha256(probe["token"].encode()).hexdigest() != stored.token_hash  # revoked (None)
    assert not probe["root_writable"] and not probe["in_writable"]
    assert probe["home_writable"] and probe["tmp_writable"]
    assert probe["mounts"]["/home/analyst"][0] == "tmpfs" and "noexec" in probe["mounts"]["/home/analyst"][1]
    assert probe["mounts"]["/run/enclave/in"][1].startswith("ro")
    assert probe["mounts"]["/"][1].startswith("ro")
    assert "CapEff:\t0000000000000000" in probe["status"] and "NoNewPrivs:\t1" in probe["status"]
    assert not [
        n for n in probe["env"] if n in ("ENCLAVE_HOME", "ENCLAVE_DATABASE_URL", "JUPYTERHUB_API_URL")
    ]


def test_a_run_that_fails_shows_the_cells_error(image_ready: None, env: ExportEnv, allowed: Listener) -> None:
    worker, finished = make_worker(env, allowed)
    nb = notebook_bytes("open('before.csv', 'w').write('1\\n')", "x = 1 / 0", "open('after.csv', 'w')")
    run_id = submit(env, nb)
    worker.run_once()
    run = described(env, run_id)
    assert run["state"] == "failed", run
    assert run["error"]["code"] == "run_failed"
    assert (
        run["error"]["message"]
        == "The notebook failed in cell 2 (In [2]): ZeroDivisionError: division by zero"
    )
    assert run["error"]["details"]["ename"] == "ZeroDivisionError"
    assert [o["name"] for o in run["outputs"]] == ["before.csv"]
    assert run["executed"] is not None
    assert finished == [(run_id, "failed")] and container_gone(run_id)


def test_a_run_that_passes_its_time_limit(image_ready: None, env: ExportEnv, allowed: Listener) -> None:
    worker, _ = make_worker(env, allowed)
    run_id = submit(
        env,
        notebook_bytes("open('started.txt', 'w').write('1')", "import time\ntime.sleep(300)"),
        timeout_s=6,
    )
    began = time.monotonic()
    worker.run_once()
    assert time.monotonic() - began < 60
    run = described(env, run_id)
    assert run["state"] == "timed_out", run
    assert run["error"]["code"] == "run_timed_out" and run["error"]["details"]["timeout_s"] == 6
    assert [o["name"] for o in run["outputs"]] == ["started.txt"]
    assert container_gone(run_id)


def running_in_background(worker: Worker, env: ExportEnv, run_id: str) -> threading.Thread:
    """The worker running the queued run ``run_id`` in a thread, once the run's first cell has run."""
    thread = threading.Thread(target=worker.run_once, daemon=True)
    thread.start()
    wait_until(lambda: described(env, run_id)["progress"]["cells_done"] >= 1, "the first cell", 90)
    return thread


def test_a_running_run_is_cancelled(image_ready: None, env: ExportEnv, allowed: Listener) -> None:
    worker, finished = make_worker(env, allowed)
    run_id = submit(env, notebook_bytes("x = 1", "import time\ntime.sleep(300)"))
    thread = running_in_background(worker, env, run_id)
    with env.session() as s:
        service.cancel(s, run_id, actor="bob")
    thread.join(timeout=60)
    assert not thread.is_alive()
    run = described(env, run_id)
    assert run["state"] == "cancelled" and run["error"]["code"] == "run_cancelled", run
    assert finished == [(run_id, "cancelled")] and container_gone(run_id)


NETWORK_PROBE = """
import json, os, socket
gateway = os.environ['ENCLAVE_GATEWAY_URL'].split('/')[2].split(':')[0]
def probe(host, port):
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect((host, port))
        return 'OPEN'
    except ConnectionRefusedError:
        return 'REFUSED'
    except OSError as e:
        return 'BLOCKED ' + str(e.errno)
    finally:
        s.close()
result = {
    'gateway': gateway,
    'allowed': probe(gateway, allowed_port),
    'forbidden': probe(gateway, forbidden_port),
    'ssh': probe(gateway, 22),
    'other_project': probe(other_gateway, allowed_port),
    'routes': open('/proc/net/route').read(),
}
json.dump(result, open('net.json', 'w'))
"""


def test_a_run_reaches_only_the_allowed_host_ports(
    image_ready: None, env: ExportEnv, allowed: Listener
) -> None:
    """The run is on its project's internal network behind the workspace firewall: the allowed
    port answers, any other host port and another project's network are refused, and no route
    leads anywhere but the (firewalled) gateway. Only local addresses are ever contacted."""
    from hub_config import firewall, network

    worker, _ = make_worker(env, allowed)
    forbidden = Listener()  # listening on the host, but not an allowed port
    client = worker.executor.client  # type: ignore[attr-defined]
    other = network.ensure_network(client, OTHER, NET_PREFIX)  # another project, as its workspace has it
    firewall.ensure(other.bridge, other.gateway, [allowed.port])
    try:
        parameters = {
            "allowed_port": allowed.port,
            "forbidden_port": forbidden.port,
            "other_gateway": other.gateway,
        }
        before = allowed.accepted
        run_id = submit(
            env,
            notebook_bytes(
                NETWORK_PROBE, parameters="allowed_port = 0\nforbidden_port = 0\nother_gateway = ''"
            ),
            parameters,
        )
        worker.run_once()
        run = described(env, run_id)
        assert run["state"] == "succeeded", run
        result = json.loads(output_bytes(env, run_id, "net.json"))
    finally:
        forbidden.close()
    mine = network.find_network(client, PROJECT, NET_PREFIX)
    assert mine is not None and result["gateway"] == mine.gateway
    assert result["allowed"] == "OPEN" and allowed.accepted > before
    assert result["forbidden"] == "REFUSED" and forbidden.accepted == 0
    assert result["ssh"] == "REFUSED"
    assert result["other_project"].startswith(("REFUSED", "BLOCKED")), result
    routes = [line.split() for line in result["routes"].splitlines()[1:] if line.strip()]
    gateway_hex = "".join(f"{int(part):02X}" for part in reversed(mine.gateway.split(".")))
    assert routes and all(f[1] != "00000000" or f[2] == gateway_hex for f in routes), result["routes"]
    info = client.inspect_network(mine.id)
    assert info["Internal"] is True


def test_a_stopped_worker_leaves_its_run_and_the_next_one_adopts_it(
    image_ready: None, env: ExportEnv, allowed: Listener
) -> None:
    worker, _ = make_worker(env, allowed)
    run_id = submit(env, notebook_bytes("import time\ntime.sleep(6)", "open('late.txt', 'w').write('done')"))
    stop = threading.Event()
    serving = threading.Thread(target=worker.serve, args=(stop,), daemon=True)
    serving.start()
    wait_until(
        lambda: described(env, run_id)["state"] == "running" and not container_gone(run_id), "start", 90
    )
    stop.set()
    serving.join(timeout=60)
    assert not serving.is_alive()
    assert described(env, run_id)["state"] == "running" and not container_gone(run_id)

    successor, finished = make_worker(env, allowed)
    assert successor.recover(wait=True) == {run_id: "adopted"}
    run = described(env, run_id)
    assert run["state"] == "succeeded" and [o["name"] for o in run["outputs"]] == ["late.txt"], run
    assert finished == [(run_id, "succeeded")] and container_gone(run_id)


def test_a_run_whose_container_is_gone_is_failed_as_lost(
    image_ready: None, env: ExportEnv, allowed: Listener
) -> None:
    worker, finished = make_worker(env, allowed)
    run_id = submit(env, notebook_bytes("x = 1"))
    with env.session() as s:
        claimed = queue.claim(s, host_cap=2)
        assert claimed is not None and claimed.id == run_id
        claimed.container_id = "0" * 64  # the crashed worker's container, removed since
    assert worker.recover() == {run_id: "lost"}
    run = described(env, run_id)
    assert run["state"] == "failed" and run["error"]["code"] == "worker_lost"
    assert finished == [(run_id, "failed")]


def test_a_run_of_a_project_suspended_since_submit_never_starts(
    image_ready: None, env: ExportEnv, allowed: Listener
) -> None:
    worker, finished = make_worker(env, allowed)
    run_id = submit(env, notebook_bytes("open('x.csv', 'w')"))
    with env.session() as s:
        from enclave.db.models import Project

        s.get(Project, PROJECT).state = "suspended"
    assert worker.run_once() == run_id
    run = described(env, run_id)
    assert run["state"] == "failed" and run["error"]["code"] == "project_not_active", run
    assert run["outputs"] == [] and finished == [(run_id, "failed")]
    with env.session() as s:
        assert (
            service.get_run(s, run_id).token_hash is None and service.get_run(s, run_id).container_id is None
        )
    assert container_gone(run_id)


def test_a_run_never_uses_other_data_than_its_record_says(
    image_ready: None, env: ExportEnv, allowed: Listener
) -> None:
    worker, _ = make_worker(env, allowed)
    run_id = submit(env, notebook_bytes("open('x.csv', 'w')"))
    fake_prepared(env.paths, PROJECT, version=2)  # the project was prepared again after the submit
    worker.run_once()
    run = described(env, run_id)
    assert run["state"] == "failed" and run["error"]["code"] == "run_data_version_changed", run
    assert run["error"]["details"] == {"recorded": 1, "current": 2}
    assert container_gone(run_id)


def test_a_failing_hook_stops_neither_the_run_nor_the_other_hooks(
    image_ready: None, env: ExportEnv, allowed: Listener
) -> None:
    def broken(session, paths, run) -> None:
        raise RuntimeError("the export review is down")

    worker, finished = make_worker(env, allowed, hooks=(broken,))
    run_id = submit(env, notebook_bytes("x = 1"))
    with env.session() as s:
        from enclave.db.models import Project

        s.get(Project, PROJECT).state = "suspended"  # ends at once, without a container
    worker.run_once()
    assert described(env, run_id)["state"] == "failed" and finished == [(run_id, "failed")]


def test_a_run_over_its_memory_limit_is_failed_as_such(
    image_ready: None, env: ExportEnv, allowed: Listener
) -> None:
    worker, _ = make_worker(env, allowed)
    run_id = submit(
        env, notebook_bytes("hog = bytearray(2 * 1024**3)\nhog[::4096] = b'x' * len(hog[::4096])")
    )
    worker.run_once()
    run = described(env, run_id)
    assert run["state"] == "failed", run
    assert run["error"]["code"] == "run_out_of_memory", run["error"]
    assert container_gone(run_id)


def test_a_running_run_stops_when_its_project_is_suspended(
    image_ready: None, env: ExportEnv, allowed: Listener
) -> None:
    worker, finished = make_worker(env, allowed)
    run_id = submit(env, notebook_bytes("x = 1", "import time\ntime.sleep(300)"))
    thread = running_in_background(worker, env, run_id)
    with env.session() as s:
        from enclave.db.models import Project

        s.get(Project, PROJECT).state = "suspended"
    thread.join(timeout=60)
    run = described(env, run_id)
    assert run["state"] == "failed" and run["error"]["code"] == "project_not_active", run
    assert finished == [(run_id, "failed")] and container_gone(run_id)


def test_a_run_cannot_fill_the_hosts_disk(
    image_ready: None, env: ExportEnv, allowed: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """out/ is the container's only writable host folder: a tmpfs of a fixed size caps it, so a
    notebook writing without end gets "No space left on device" instead of filling the vault host."""
    from enclave.runs import worker as worker_module

    monkeypatch.setattr(worker_module, "OUT_WATCH_BYTES", 16 * 1024 * 1024)
    worker, _ = make_worker(env, allowed)
    run_id = submit(
        env,
        notebook_bytes(
            "with open('big.bin', 'wb') as f:\n    for _ in range(64):\n        f.write(b'x' * 1024 * 1024)"
        ),
    )
    worker.run_once()
    run = described(env, run_id)
    assert run["state"] == "failed", run
    assert "No space left on device" in run["error"]["message"], run["error"]
    assert container_gone(run_id)
    assert not service.run_dir(env.paths, run_id).exists()
