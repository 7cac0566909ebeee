"""Spawn latency: from the spawn request to a ready server, warm image, EnclaveSpawner vs plain
DockerSpawner (issue 7). Needs root and Docker; run with ``.venv/bin/python bench/spawn.py [N]``.

Both hubs load the enclave's hub config (as the e2e tests do); the plain run swaps in DockerSpawner
with the same image on Docker's default bridge. Prints median and p95 for each and their ratio.
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from enclave import catalog, db, projects  # noqa: E402
from enclave.config import Paths  # noqa: E402
from enclave.specs import parse_project_spec  # noqa: E402
from tests import factories  # noqa: E402
from tests.e2e.conftest import Hub, _proxy_command, free_port, remove_test_objects, sh  # noqa: E402

PROJECT = "bench-spawn"
USER = "alice"

PLAIN_CONFIG = """
import os
from pathlib import Path
load_subconfig(str(Path({repo!r}) / "tests" / "e2e" / "hub_test_config.py"))
c = get_config()
from dockerspawner import DockerSpawner
c.JupyterHub.spawner_class = DockerSpawner
c.DockerSpawner.image = "enclave/analyst:latest"
c.DockerSpawner.pull_policy = "never"
c.DockerSpawner.remove = True
c.DockerSpawner.name_template = "enclave-test-plain-{{servername}}-{{username}}"
c.DockerSpawner.hub_connect_url = "http://172.17.0.1:" + os.environ["ENCLAVE_HUB_API_PORT"]
"""


def make_home(root: Path) -> Paths:
    paths = Paths(root / "home")
    paths.home.mkdir(parents=True)
    os.chmod(root, 0o755)
    os.chmod(paths.home, 0o755)
    url = f"sqlite:///{paths.state_db}"
    db.migrate(url)
    sessions = db.connect(url)
    with db.session_scope(sessions) as session:
        for name, table, columns in (
            ("patients", factories.patients_table(60), factories.PATIENT_COLUMNS),
            ("visits", factories.visits_table(60), factories.VISIT_COLUMNS),
        ):
            catalog.register(
                session, paths, factories.write_dataset(root / "src", name, table, columns), actor="s"
            )
    period = {
        "start": (date.today() - timedelta(days=1)).isoformat(),
        "end": (date.today() + timedelta(days=30)).isoformat(),
    }
    spec = parse_project_spec(factories.project_spec(id=PROJECT, pi=USER, analysts=[USER], period=period))
    with db.session_scope(sessions) as session:
        projects.create_project(session, paths, spec, actor="steward")
    return paths


def start_hub(paths: Paths, config: Path, workdir: Path) -> Hub:
    port, api_port, token = free_port(), free_port(), secrets.token_hex(32)
    env = {
        **os.environ,
        "ENCLAVE_HOME": str(paths.home),
        "ENCLAVE_HUB_STATE": str(workdir),
        "ENCLAVE_HUB_PORT": str(port),
        "ENCLAVE_HUB_API_PORT": str(api_port),
        "ENCLAVE_HUB_SERVICES": "none",
        "ENCLAVE_TEST_ADMIN_TOKEN": token,
        "PATH": f"{Path(_proxy_command()).parent}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
    }
    log = workdir / "hub.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    hub = Hub(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/hub/api", token, process, log, paths)
    deadline = time.monotonic() + 60
    while True:
        try:
            if hub.call("GET", "/")[0] == 200:
                return hub
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the hub did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def time_spawns(hub: Hub, runs: int) -> list[float]:
    hub.ensure_user(USER)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        status, body = hub.call("POST", f"/users/{USER}/servers/{PROJECT}")
        assert status in (201, 202), (status, body)
        while not (hub.server(USER, PROJECT) or {}).get("ready"):
            if time.perf_counter() - started > 180:
                raise SystemExit(f"spawn did not finish:\n{hub.log.read_text()[-3000:]}")
            time.sleep(0.05)
        times.append(time.perf_counter() - started)
        hub.stop(USER, PROJECT)
        while hub.server(USER, PROJECT) is not None:
            time.sleep(0.1)
    return times


def summary(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if os.geteuid() != 0:
        raise SystemExit("run as root: the spawner manages Docker networks and the host firewall")
    sh("bash", str(REPO / "scripts/docker/start-dockerd.sh"))
    sh("bash", str(REPO / "scripts/docker/build-images.sh"))
    remove_test_objects()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-spawn-") as tmp:
        root = Path(tmp)
        paths = make_home(root)
        plain_config = root / "plain_config.py"
        plain_config.write_text(PLAIN_CONFIG.format(repo=str(REPO)))
        for label, config in (
            ("EnclaveSpawner", REPO / "tests/e2e/hub_test_config.py"),
            ("DockerSpawner", plain_config),
        ):
            workdir = root / label
            workdir.mkdir()
            hub = start_hub(paths, config, workdir)
            try:
                time_spawns(hub, 1)  # warm-up: image layers cached, network created, data published
                results[label] = time_spawns(hub, runs)
            finally:
                hub.process.terminate()
                hub.process.wait(30)
        remove_test_objects()
    for label, times in results.items():
        median, p95 = summary(times)
        rounded = [round(t, 2) for t in times]
        print(f"{label:15s} n={len(times)} median {median:.2f} s  p95 {p95:.2f} s  all {rounded}")
    ratio = summary(results["EnclaveSpawner"])[0] / summary(results["DockerSpawner"])[0]
    print(f"EnclaveSpawner / DockerSpawner median ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
