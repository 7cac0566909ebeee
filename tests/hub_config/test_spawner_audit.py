"""The spawner's audit hooks against a real enclave database: refused starts, who stops a server,
and culls told apart from other stops (issue 14, item 12). Real starts and stops, with the container
id and the image digest, are checked with real Docker in tests/e2e/test_workspace_image.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub import orm
from jupyterhub.handlers.base import BaseHandler
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from tornado.web import Application

from enclave import audit, db, projects
from enclave.config import Paths
from enclave.db.session import dispose_all
from enclave.specs import parse_project_spec
from hub_config.errors import WorkspaceRefused
from hub_config.spawner import CAUSE_ACCESS, CAUSE_HUB, CAUSE_IDLE, CAUSE_REQUEST, EnclaveSpawner
from tests.harness.factories import (
    NO_APPLICATION,
    migrated_home,
    project_spec,
    register_patients_and_visits,
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    root = tmp_path_factory.mktemp("spawner-audit")
    paths, url = migrated_home(root)
    with db.session_scope(db.connect(url)) as session:
        register_patients_and_visits(session, paths, root / "src", n_patients=30)
        period = {"start": "2020-01-01", "end": "2099-12-31"}
        spec = project_spec(id="audit-1", pi="alice", analysts=["alice"], period=period)
        projects.create_project(
            session, paths, parse_project_spec(spec), actor="steward", without_application=NO_APPLICATION
        )
    yield paths
    dispose_all()


def spawner(home: Paths, user: str, name: str = "audit-1") -> EnclaveSpawner:
    hub_user = SimpleNamespace(name=user, escaped_name=user, url=f"/user/{user}/")
    return EnclaveSpawner(user=hub_user, orm_spawner=orm.Spawner(name=name), enclave_home=str(home.home))


def server_events(home: Paths) -> list[dict[str, Any]]:
    with db.session_scope(db.connect(f"sqlite:///{home.state_db}")) as session:
        events = audit.tail(session, limit=100)
        return [audit.event_to_dict(e) for e in events if e.action.startswith("server.")]


def hub_handler(caller: Any) -> BaseHandler:
    """A real hub request handler whose authenticated caller is ``caller``."""
    request = HTTPServerRequest(
        method="DELETE",
        uri="/hub/api/users/alice/servers/audit-1",
        headers=HTTPHeaders({"Host": "hub"}),
        start_line=RequestStartLine("DELETE", "/hub/api/users/alice/servers/audit-1", "HTTP/1.1"),
        connection=SimpleNamespace(set_close_callback=lambda callback: None),
    )
    handler = BaseHandler(Application(hub=SimpleNamespace(base_url="/hub/")), request)
    handler._jupyterhub_user = caller
    return handler


def stop_as_the_hub_does(handler: BaseHandler | None, target: EnclaveSpawner) -> tuple[str, dict[str, str]]:
    """The shape of BaseHandler.stop_single_user: the stop runs as a task over a closure."""

    async def run() -> tuple[str, dict[str, str]]:
        self = handler  # the hub's closure refers to the handler as ``self``

        async def stop() -> tuple[str, dict[str, str]]:
            assert self is handler
            return target.stop_cause()

        return await asyncio.ensure_future(stop())

    return asyncio.run(run())


def test_a_refused_start_is_audited_with_its_code(home: Paths) -> None:
    with pytest.raises(WorkspaceRefused):
        asyncio.run(spawner(home, "mallory").start())
    (event,) = [e for e in server_events(home) if e["details"]["user"] == "mallory"]
    assert event["action"] == "server.spawn" and event["outcome"] == "refused"
    assert event["details"]["code"] == "not_a_project_analyst"
    assert event["project"] == "audit-1" and event["actor"] == "mallory" and event["source"] == "hub"


def test_a_refused_default_server_is_audited_without_a_project(home: Paths) -> None:
    with pytest.raises(WorkspaceRefused):
        asyncio.run(spawner(home, "alice", name="").start())
    event = server_events(home)[-1]
    assert event["project"] is None and event["details"]["code"] == "named_server_required"


def test_the_idle_culler_is_told_apart_from_other_callers(home: Paths) -> None:
    target = spawner(home, "alice")
    culler = orm.Service(name="idle-culler")
    assert stop_as_the_hub_does(hub_handler(culler), target) == (
        "service:idle-culler",
        {"cause": CAUSE_IDLE, "requested_by": "service:idle-culler"},
    )
    other = orm.Service(name="enclave-admin")
    assert stop_as_the_hub_does(hub_handler(other), target)[1]["cause"] == CAUSE_REQUEST
    analyst = SimpleNamespace(name="alice", kind="user")
    assert stop_as_the_hub_does(hub_handler(analyst), target) == (
        "alice",
        {"cause": CAUSE_REQUEST, "requested_by": "alice"},
    )
    # No request behind it (hub shutdown): never mistaken for a cull.
    assert stop_as_the_hub_does(None, target) == ("hub", {"cause": CAUSE_HUB})


def test_a_user_named_like_the_culler_is_not_a_cull(home: Paths) -> None:
    impostor = SimpleNamespace(name="idle-culler", kind="user")
    assert stop_as_the_hub_does(hub_handler(impostor), spawner(home, "alice"))[1]["cause"] == CAUSE_REQUEST


def test_a_stop_for_revoked_access_says_so_once(home: Paths) -> None:
    target = spawner(home, "alice")
    target._stop_cause = {"cause": CAUSE_ACCESS, "code": "project_not_active"}
    assert target.stop_cause() == ("hub", {"cause": CAUSE_ACCESS, "code": "project_not_active"})
    assert target.stop_cause() == ("hub", {"cause": CAUSE_HUB})


def test_stop_of_a_server_without_a_container_writes_nothing(home: Paths) -> None:
    before = len(server_events(home))
    asyncio.run(spawner(home, "alice").stop())
    assert len(server_events(home)) == before


def test_audit_writes_the_container_details(home: Paths, tmp_path: Path) -> None:
    target = spawner(home, "alice")
    target.audit(
        audit.AuditAction.SERVER_CULL,
        actor="service:idle-culler",
        details={"cause": CAUSE_IDLE, "container_id": "c" * 64, "image_digest": "sha256:" + "d" * 64},
    )
    event = server_events(home)[-1]
    assert event["action"] == "server.cull" and event["object"] == "server:alice/audit-1"
    assert event["details"]["container_id"] == "c" * 64 and event["details"]["server"] == "audit-1"
    with db.session_scope(db.connect(f"sqlite:///{home.state_db}")) as session:
        assert audit.verify(session).ok
