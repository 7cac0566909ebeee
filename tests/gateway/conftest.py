"""A real JupyterHub (its API mints the tokens), prepared projects, and the real gateway.

One hub per test session in this folder, one enclave home and gateway per module; every port is a
free port on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from enclave import audit, db, lifecycle, projects
from enclave.config import Paths
from enclave.db.session import dispose_all
from enclave.specs import parse_project_spec
from tests.harness.factories import (
    NO_APPLICATION,
    project_spec,
    register_patients_and_visits,
)
from tests.harness.jupyterhub import free_port, proxy_command, running_jupyterhub

HUB_CONFIG = Path(__file__).with_name("hub_config.py")

PROJECT = "cardio-2026"
OTHER_PROJECT = "diab-2026"
EXPIRED_PROJECT = "old-2025"
N_PATIENTS = 400


def http(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = response.read()
            return response.status, json.loads(payload) if payload else None
    except urllib.error.HTTPError as error:
        payload = error.read()
        try:
            return error.code, json.loads(payload)
        except ValueError:
            return error.code, payload


@dataclass
class Hub:
    """The running hub and an admin service token to drive its REST API."""

    api_url: str
    admin_token: str
    gateway_token: str
    process: subprocess.Popen[bytes]
    users: set[str] = field(default_factory=set)

    def ensure_user(self, name: str) -> None:
        if name not in self.users:
            status, body = http("POST", f"{self.api_url}/users/{name}", self.admin_token)
            assert status in (201, 409), body
            self.users.add(name)

    def server_token(self, user: str, server: str, *, expires_in: int | None = None) -> tuple[str, str]:
        """A token bound to the user's named server, like the one a spawner hands the server."""
        self.ensure_user(user)
        body: dict[str, Any] = {"scopes": [f"access:servers!server={user}/{server}"], "note": "test"}
        if expires_in is not None:
            body["expires_in"] = expires_in
        status, answer = http("POST", f"{self.api_url}/users/{user}/tokens", self.admin_token, body)
        assert status == 201, answer
        return answer["token"], answer["id"]

    def user_token(self, user: str) -> str:
        """A personal token with all the user's permissions: bound to no single server."""
        self.ensure_user(user)
        status, answer = http(
            "POST", f"{self.api_url}/users/{user}/tokens", self.admin_token, {"note": "broad"}
        )
        assert status == 201, answer
        return answer["token"]

    def revoke(self, user: str, token_id: str) -> None:
        status, answer = http("DELETE", f"{self.api_url}/users/{user}/tokens/{token_id}", self.admin_token)
        assert status == 204, answer

    def start_server(self, user: str, server: str) -> None:
        self.ensure_user(user)
        status, answer = http("POST", f"{self.api_url}/users/{user}/servers/{server}", self.admin_token, {})
        assert status in (201, 202), answer
        deadline = time.monotonic() + 30
        while not self.server_ready(user, server):
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)

    def server_ready(self, user: str, server: str) -> bool:
        status, model = http("GET", f"{self.api_url}/users/{user}", self.admin_token)
        assert status == 200, model
        return bool(model.get("servers", {}).get(server, {}).get("ready"))


@contextmanager
def running_hub(directory: Path) -> Iterator[Hub]:
    """Start JupyterHub (with configurable-http-proxy) on free local ports; stop it on exit."""
    hub_port, admin_token, gateway_token = free_port(), secrets.token_hex(32), secrets.token_hex(32)
    env = {
        "TEST_HUB_PORT": str(hub_port),
        "TEST_HUB_PROXY_PORT": str(free_port()),
        "TEST_HUB_PROXY_API_PORT": str(free_port()),
        "TEST_HUB_CHP": proxy_command(),
        "TEST_HUB_DIR": str(directory),
        "TEST_GATEWAY_TOKEN": gateway_token,
        "TEST_ADMIN_TOKEN": admin_token,
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32),
    }
    with running_jupyterhub(HUB_CONFIG, directory, env, hub_port=hub_port, admin_token=admin_token) as hub:
        yield Hub(hub.api_url, admin_token, gateway_token, hub.process)


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(tmp_path_factory.mktemp("hub")) as running:
        yield running


@dataclass
class Enclave:
    """A prepared enclave home with three projects."""

    home: Path
    database_url: str

    @property
    def paths(self) -> Paths:
        return Paths(self.home)

    def session(self) -> Any:
        return db.session_scope(db.connect(self.database_url))


def _create_project(session: Session, paths: Paths, today: date | None = None, **fields: Any) -> None:
    spec = parse_project_spec(project_spec(**fields))
    projects.create_project(
        session, paths, spec, actor="steward", today=today, without_application=NO_APPLICATION
    )


def prepared_enclave(root: Path, url: str, members: Iterable[tuple[str, str, list[str]]]) -> Enclave:
    """A home in ``root / "home"`` on the state database ``url`` (migrated, its audit chain keyed by
    the home's vault), with the patients and visits datasets and a prepared project for each
    (id, PI, analysts) in ``members``."""
    home = root / "home"
    home.mkdir()
    db.migrate(url)
    audit.use_vault(url, Paths(home))
    setup = Enclave(home, url)
    with setup.session() as session:
        register_patients_and_visits(session, setup.paths, root / "sources", n_patients=N_PATIENTS)
    for project_id, pi, analysts in members:
        with setup.session() as session:
            _create_project(session, setup.paths, id=project_id, pi=pi, analysts=analysts)
    return setup


@pytest.fixture(scope="module")
def enclave(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Enclave]:
    root = tmp_path_factory.mktemp("enclave")
    home = root / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'state.db'}"
    db.migrate(url)
    setup = Enclave(home, url)
    with setup.session() as session:
        register_patients_and_visits(session, setup.paths, root / "sources", n_patients=N_PATIENTS)
    with setup.session() as session:
        _create_project(session, setup.paths, id=PROJECT, pi="alice", analysts=["alice", "bob", "mallory"])
    with setup.session() as session:
        _create_project(session, setup.paths, id=OTHER_PROJECT, pi="dan", analysts=["dan"])
    with setup.session() as session:
        _create_project(
            session,
            setup.paths,
            id=EXPIRED_PROJECT,
            pi="eve",
            analysts=["eve"],
            period={"start": "2025-01-01", "end": "2025-12-31"},
            today=date(2025, 6, 1),  # created while it ran; ended and expired since
        )
    with setup.session() as session:
        lifecycle.expire(session, EXPIRED_PROJECT, actor="steward", reason="period ended")
    yield setup
    dispose_all()


class RunningService:
    """A hub service app (``enclave.services.hub.HubServiceApp``) served on its own event loop in a thread."""

    def __init__(self, app: Any, name: str) -> None:
        self.app = app
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()
        assert self.ready.wait(30), f"{name} did not start"

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stopped = asyncio.Event()
            await self.app.serve()
            self.ready.set()
            await self.stopped.wait()
            await self.app.shutdown()

        asyncio.run(main())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopped.set)
        self.thread.join(30)


class RunningGateway(RunningService):
    """The gateway app served on its own event loop in a thread."""

    def __init__(self, **settings: Any) -> None:
        from enclave.gateway.app import GatewayApp

        super().__init__(GatewayApp(**settings), "gateway")
        self.url = f"http://127.0.0.1:{self.app.bound_port}{self.app.base_url}"


def start_gateway(hub: Hub, enclave: Enclave, **settings: Any) -> RunningGateway:
    return RunningGateway(
        ip="127.0.0.1",
        port=0,
        base_url="/services/enclave-gateway/",
        hub_api_url=hub.api_url,
        api_token=hub.gateway_token,
        enclave_home=str(enclave.home),
        database_url=enclave.database_url,
        **settings,
    )


@pytest.fixture(scope="module")
def gateway(hub: Hub, enclave: Enclave) -> Iterator[RunningGateway]:
    running = start_gateway(hub, enclave, auth_cache_ttl_s=1, query_timeout_s=20.0)
    yield running
    running.stop()


@pytest.fixture
def slow_query_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a slow query (``test_gateway.SLOW``) through the guard's fan-out rules.

    The guard refuses such joins (attack class 7); tests of cancelling need one that runs long.
    """
    monkeypatch.setattr("enclave.guard.analyze.MAX_MULTI_ROW", 99)
    monkeypatch.setattr("enclave.guard.execute._estimated_rows", lambda *args: 0)
