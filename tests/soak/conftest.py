"""The soak test's parts: a real JupyterHub, the real gateway as its own process, a prepared project
with twenty analysts on the production state database (PostgreSQL), and a terminal summary.

The gateway runs as ``enclave gateway serve`` in a separate process, as an external service does in
production (``deploy/single-host``), so its memory can be read from ``/proc/<pid>/status`` without
the load generator's threads in it. Every port is a free port on 127.0.0.1.

The state database is a fresh PostgreSQL database when the server at ``$ENCLAVE_TEST_POSTGRES`` is
reachable (it must be when ``ENCLAVE_REQUIRE_POSTGRES`` is set, as ``scripts/test.sh`` does), else
SQLite; the summary says which.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from enclave import audit, db, projects
from enclave.config import Paths
from enclave.db.session import dispose_all
from enclave.specs import parse_project_spec
from tests.conftest import _fresh_postgres_database
from tests.gateway.conftest import Enclave, Hub, free_port, running_hub
from tests.harness.factories import (
    NO_APPLICATION,
    project_spec,
    register_patients_and_visits,
)

PROJECT = "soak-2026"
N_PATIENTS = 400
N_ANALYSTS = 20
ANALYSTS = [f"analyst{i:02d}" for i in range(1, N_ANALYSTS + 1)]
# Runs every query template once before the analysts start: the reference answers and the ledger's
# baseline. A user of their own, so that their queries do not count toward any analyst's monitoring.
REFERENCE_USER = "reference"
BASE_URL = "/services/enclave-gateway/"

_SUMMARY: list[str] = []


@dataclass
class SoakDatabase:
    backend: str  # "postgresql" or "sqlite"
    url: str


@pytest.fixture(scope="module")
def soak_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SoakDatabase]:
    """A fresh PostgreSQL database (production's), else SQLite when no server is reachable."""
    try:
        admin_url = request.getfixturevalue("postgres_admin_url")
    except pytest.skip.Exception:
        url = f"sqlite:///{tmp_path_factory.mktemp('soak-db') / 'state.db'}"
        db.migrate(url)
        yield SoakDatabase("sqlite", url)
        dispose_all()
        return
    for url in _fresh_postgres_database(admin_url):
        db.migrate(url)
        yield SoakDatabase("postgresql", url)


@pytest.fixture(scope="module")
def soak_enclave(soak_database: SoakDatabase, tmp_path_factory: pytest.TempPathFactory) -> Enclave:
    """The project ``soak-2026`` over 400 patients and their visits, with twenty analysts."""
    root = tmp_path_factory.mktemp("soak-enclave")
    home = root / "home"
    home.mkdir()
    audit.use_vault(soak_database.url, Paths(home))
    enclave = Enclave(home, soak_database.url)
    with enclave.session() as session:
        register_patients_and_visits(session, enclave.paths, root / "sources", n_patients=N_PATIENTS)
    spec = project_spec(id=PROJECT, pi=ANALYSTS[0], analysts=[*ANALYSTS, REFERENCE_USER])
    with enclave.session() as session:
        projects.create_project(
            session,
            enclave.paths,
            parse_project_spec(spec),
            actor="steward",
            without_application=NO_APPLICATION,
        )
    return enclave


@pytest.fixture(scope="module")
def soak_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(tmp_path_factory.mktemp("soak-hub")) as hub:
        yield hub


@dataclass
class GatewayProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def _enclave_command() -> list[str]:
    script = Path(sys.executable).with_name("enclave")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from enclave.cli import main; main()"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "api/health", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture(scope="module")
def gateway_process(
    soak_hub: Hub, soak_enclave: Enclave, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """``enclave gateway serve`` with production defaults, configured as the hub configures a service."""
    port = free_port()
    log = tmp_path_factory.mktemp("soak-gateway") / "gateway.log"
    env = {
        **os.environ,
        "ENCLAVE_DATABASE_URL": soak_enclave.database_url,
        "JUPYTERHUB_API_URL": soak_hub.api_url,
        "JUPYTERHUB_API_TOKEN": soak_hub.gateway_token,
        "JUPYTERHUB_SERVICE_PREFIX": BASE_URL,
    }
    env.pop("ENCLAVE_DATABASE_URL_FILE", None)
    command = [
        *_enclave_command(),
        *("--home", str(soak_enclave.home), "gateway", "serve", "--ip", "127.0.0.1", "--port", str(port)),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    running = GatewayProcess(f"http://127.0.0.1:{port}{BASE_URL}", process, log)
    try:
        deadline = time.monotonic() + 60
        while not _healthy(running.url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start:\n" + running.log_tail())
            time.sleep(0.2)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def soak_report() -> list[str]:
    """Lines for the terminal summary, shown whether or not ``-s`` was given."""
    return _SUMMARY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SUMMARY:
        terminalreporter.write_sep("=", "gateway soak")
        for line in _SUMMARY:
            terminalreporter.write_line(line)
