"""``kill -9`` of the export service in the middle of a release (issue #17, crash safety).

A real hub and the service as a real process (``enclave export serve``), on SQLite and on
PostgreSQL state. An approved request is released through the API; the service is stopped at a
named point (``enclave.crashpoints``) and killed there. After a restart the request is released
exactly once (one ``export.release`` record, the outbox complete, the download works) or not at
all (approved, nothing in the outbox, and it can be released), and the audit chain verifies.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from enclave import audit, db
from enclave.config import Paths
from export_review import release as releasing
from export_review.workflow import ExportState
from tests.conftest import state_database
from tests.crash import ServiceProcess, check_audit_chain, in_background
from tests.export_review.factories import GOOD_CSV, ExportEnv, make_project, make_request
from tests.export_review.web.conftest import HUB_CONFIG, SERVICE, SERVICE_PREFIX, call
from tests.harness.services import ServiceHub, hub_with_service

pytestmark = pytest.mark.slow

USERS = ("alice", "bob", "rev1")


@dataclass
class CrashHub:
    hub: ServiceHub
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def crash_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrashHub]:
    """A hub that expects the export service on a fixed local port, and a service token per user."""
    with hub_with_service(tmp_path_factory.mktemp("crash-hub"), HUB_CONFIG, SERVICE) as hub:
        yield CrashHub(hub, hub.user_tokens(USERS, "crash tests"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def export_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ExportEnv, str]]:
    """An enclave home with one active project, its state on SQLite or on a new PostgreSQL database."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "work").mkdir()
    for url in state_database(request, home / "state.db"):
        db.migrate(url)
        audit.use_vault(url, Paths(home))
        env = ExportEnv(db.connect(url), Paths(home), tmp_path / "work")
        make_project(env)
        yield env, url


@pytest.fixture
def service(
    crash_hub: CrashHub, export_env: tuple[ExportEnv, str], tmp_path: Path
) -> Iterator[ServiceProcess]:
    env, url = export_env
    settings = {
        "JUPYTERHUB_API_TOKEN": crash_hub.hub.service_token,
        "JUPYTERHUB_API_URL": crash_hub.hub.api_url,
        "JUPYTERHUB_SERVICE_PREFIX": SERVICE_PREFIX,
        "JUPYTERHUB_SERVICE_NAME": SERVICE,
        "ENCLAVE_DATABASE_URL": url,
    }
    args = ["export", "serve", "--ip", "127.0.0.1", "--port", str(crash_hub.hub.service_port)]
    process = ServiceProcess(env.paths.home, args, settings, tmp_path / "export.log")
    try:
        yield process
    finally:
        process.stop()


def recorded(env: ExportEnv, request_id: str, action: str, outcome: str = "success") -> int:
    """How many ``action`` records with ``outcome`` the request has."""
    with env.session() as session:
        events = audit.tail(session, limit=1000)
        return sum(
            e.object == f"export:{request_id}" and e.action == action and e.outcome == outcome for e in events
        )


@pytest.mark.parametrize("point", ["release-staged", "release-publishing"])
def test_kill_9_in_the_middle_of_a_release(
    crash_hub: CrashHub, export_env: tuple[ExportEnv, str], service: ServiceProcess, point: str
) -> None:
    env, url = export_env
    api = f"{crash_hub.hub.direct_url}api/"
    files = {"a.csv": GOOD_CSV, "b.csv": GOOD_CSV + "X,50\n"}
    request_id = make_request(env, ExportState.APPROVED, files=files)
    folder = env.paths.outbox / releasing.prefix_of(env.request(request_id))

    def release() -> int:
        return call("POST", f"{api}requests/{request_id}/release", crash_hub.tokens["rev1"]).status

    service.start(f"{api}requests", pause_at=point)
    cut_off = in_background(release)
    service.wait_paused(point)
    service.kill9()
    cut_off.join(30)

    check_audit_chain(url, env.paths.home)
    if point == "release-staged":  # not committed: not released, and nothing left the vault
        assert env.state(request_id) == "approved"
        assert recorded(env, request_id, "export.release") == 0
        assert not folder.exists()
    else:  # committed: released once; the outbox has part of the files and no manifest
        assert env.state(request_id) == "released"
        assert recorded(env, request_id, "export.release") == 1
        assert (folder / "files").is_dir() and not (folder / releasing.MANIFEST).exists()

    service.start(f"{api}requests")  # the restart finishes an outbox copy left unfinished
    if point == "release-staged":
        assert release() == 200
    else:
        assert (folder / releasing.MANIFEST).exists()
    assert release() != 200  # released already: never twice
    assert recorded(env, request_id, "export.release", "refused") == 1
    assert env.state(request_id) == "released"
    assert recorded(env, request_id, "export.release") == 1
    assert sorted(p.name for p in (folder / "files").iterdir()) == ["a.csv", "b.csv"]

    answer = call("GET", f"{api}requests/{request_id}/download", crash_hub.tokens["bob"])
    assert answer.status == 200, answer.body[:500]
    with zipfile.ZipFile(io.BytesIO(answer.body)) as archive:
        manifest = json.loads(archive.read(releasing.MANIFEST))
        for name, content in files.items():
            data = archive.read(f"files/{name}")
            assert data == content.encode()
            assert {f["name"]: f["sha256"] for f in manifest["files"]}[name] == hashlib.sha256(
                data
            ).hexdigest()
    release_info = json.loads(env.request(request_id).release_json or "{}")
    manifest_bytes = (folder / releasing.MANIFEST).read_bytes()
    assert hashlib.sha256(manifest_bytes).hexdigest() == release_info["manifest_sha256"]
    assert recorded(env, request_id, "export.download") == 1
    check_audit_chain(url, env.paths.home)
