"""Real Docker, a real hub: fixtures for the workspace end-to-end tests (issue 7, item 4).

Everything the tests create is named ``enclave-test-*`` and removed by the session fixture, before
and after the run; when a test fails, the workspace containers' logs and settings are printed
(STYLE §5.14). The tests need root (Docker networks and the host firewall); without it they skip
and say so.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from enclave import catalog, db, projects
from enclave.config import Paths
from enclave.specs import parse_project_spec
from tests.harness import factories
from tests.harness.docker_objects import remove_named, sh
from tests.harness.jupyterhub import REPO, free_port, running_jupyterhub

HUB_TEST_CONFIG = REPO / "tests/e2e/hub_test_config.py"
PREFIX = "enclave-test-"
PROJECT_A = "e2e-alpha"
PROJECT_B = "e2e-beta"
PROJECT_C = "e2e-gamma"

if os.geteuid() != 0:
    pytest.skip(
        "the workspace e2e tests need root (Docker, networks, host firewall)", allow_module_level=True
    )


def remove_test_objects() -> None:
    """Every container, network, volume and firewall chain named enclave-test-*."""
    remove_named(PREFIX, volumes=True)


@pytest.fixture(scope="session")
def docker_ready() -> Iterator[None]:
    built = sh("bash", str(REPO / "images/build.sh"), check=False)
    assert built.returncode == 0, f"building the images failed:\n{built.stderr[-4000:]}"
    remove_test_objects()
    yield
    remove_test_objects()


@pytest.fixture(scope="session")
def enclave_home(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """An enclave with three active projects: alice and bob in alpha, frank in beta and gamma."""
    home = tmp_path_factory.mktemp("e2e-home")
    os.chmod(home, 0o755)
    paths = Paths(home)
    url = f"sqlite:///{paths.state_db}"
    db.migrate(url)
    data = home.parent / "e2e-data"
    specs = [
        factories.write_dataset(data, "patients", factories.patients_table(60), factories.PATIENT_COLUMNS),
        factories.write_dataset(data, "visits", factories.visits_table(60), factories.VISIT_COLUMNS),
    ]
    period = {
        "start": (date.today() - timedelta(days=1)).isoformat(),
        "end": (date.today() + timedelta(days=365)).isoformat(),
    }
    sessions = db.connect(url)
    with db.session_scope(sessions) as session:
        for spec in specs:
            catalog.register(session, paths, spec, actor="steward")
    for project_id, analysts in [
        (PROJECT_A, ["alice", "bob"]),
        (PROJECT_B, ["frank"]),
        (PROJECT_C, ["frank"]),
    ]:
        spec = parse_project_spec(
            factories.project_spec(id=project_id, pi=analysts[0], analysts=analysts, period=period)
        )
        with db.session_scope(sessions) as session:
            projects.create_project(
                session, paths, spec, actor="steward", without_application=factories.NO_APPLICATION
            )
    return paths


@dataclass
class Hub:
    url: str
    api: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path
    paths: Paths

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | str]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.api + path, data=data, method=method, headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                raw = response.read().decode()
                status = response.status
        except urllib.error.HTTPError as error:
            raw, status = error.read().decode(), error.code
        try:
            return status, json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return status, raw

    def get_url(self, path: str) -> tuple[int, str]:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def ensure_user(self, name: str) -> None:
        status, _ = self.call("POST", f"/users/{name}")
        assert status in (201, 409), status

    def server(self, user: str, project: str) -> dict | None:
        _, model = self.call("GET", f"/users/{user}")
        return (model.get("servers") or {}).get(project)

    def start(self, user: str, project: str, timeout: float = 120) -> str:
        """Start the workspace and wait until it is ready; returns its container name."""
        self.ensure_user(user)
        status, body = self.call("POST", f"/users/{user}/servers/{project}")
        assert status in (201, 202, 400), (status, body)  # 400: already running
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.server(user, project)
            if server and server.get("ready"):
                return container_of(user, project)
            if server is None and status != 400:
                raise AssertionError(f"the server stopped while starting:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.5)
        raise AssertionError(f"{user}/{project} did not become ready:\n{self.log.read_text()[-3000:]}")

    def stop(self, user: str, project: str) -> None:
        self.call("DELETE", f"/users/{user}/servers/{project}")


@contextmanager
def launch_hub(paths: Paths, workdir: Path, config: Path = HUB_TEST_CONFIG, **settings: str) -> Iterator[Hub]:
    """A real hub with the test config (or ``config``) on free ports, stopped on exit. ``settings``
    are extra ``ENCLAVE_*`` variables (``ENCLAVE_HUB_SERVICES`` defaults to "none")."""
    port, token = free_port(), secrets.token_hex(32)
    env = {
        "ENCLAVE_HOME": str(paths.home),
        "ENCLAVE_HUB_STATE": str(workdir),
        "ENCLAVE_HUB_PORT": str(port),
        "ENCLAVE_HUB_API_PORT": str(free_port()),
        "ENCLAVE_HUB_SERVICES": "none",
        "ENCLAVE_TEST_ADMIN_TOKEN": token,
        "ENCLAVE_TEST_PROXY_API_PORT": str(free_port()),  # never a fixed port another process may hold
        **settings,
    }
    with running_jupyterhub(config, workdir, env, hub_port=port, admin_token=token) as started:
        yield Hub(f"http://127.0.0.1:{port}", started.api_url, token, started.process, started.log, paths)


@pytest.fixture(scope="session")
def hub(docker_ready: None, enclave_home: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with launch_hub(enclave_home, tmp_path_factory.mktemp("hub")) as started:
        yield started


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call" and report.failed:
        names = sh("docker", "ps", "-a", "--filter", f"name={PREFIX}", "--format", "{{.Names}}", check=False)
        for name in names.stdout.split():
            logs = sh("docker", "logs", "--tail", "60", name, check=False)
            inspect = sh("docker", "inspect", name, check=False)
            report.sections.append((f"docker logs {name}", logs.stdout + logs.stderr))
            report.sections.append((f"docker inspect {name}", inspect.stdout[:6000]))
    return report


def container_of(user: str, project: str) -> str:
    """The running workspace container of ``user`` in ``project`` (found by the spawner's labels)."""
    found = sh(
        "docker",
        "ps",
        "--filter",
        f"label=org.enclave.project={project}",
        "--filter",
        f"label=org.enclave.user={user}",
        "--format",
        "{{.Names}}",
    ).stdout.split()
    assert len(found) == 1, found
    assert found[0].startswith(PREFIX), found
    return found[0]


def exec_python(container: str, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run Python inside the workspace as its own user."""
    return sh("docker", "exec", container, "python3", "-c", code, check=False, timeout=timeout)
