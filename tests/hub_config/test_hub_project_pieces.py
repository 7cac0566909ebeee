"""The hub pieces that read a real enclave: the spawn access check, publishing, the login
authenticator called directly, and the destroyers without Docker."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from tornado import web

from enclave import db, lifecycle, projects, totp, user_locks, users
from enclave.config import Paths
from enclave.db.session import dispose_all
from enclave.errors import BadInput
from enclave.specs import parse_project_spec
from hub_config import destruction, publish
from hub_config.access import check_workspace_access
from hub_config.auth import LOGIN_REFUSED, EnclaveAuthenticator
from hub_config.errors import WorkspaceRefused
from tests.harness.factories import (
    NO_APPLICATION,
    migrated_home,
    project_spec,
    register_patients_and_visits,
)

PASSWORD = "Hub-Login-Test-2026"


@dataclass
class Enclave:
    paths: Paths
    url: str

    def session(self):  # type: ignore[no-untyped-def]
        return db.session_scope(db.connect(self.url))


@pytest.fixture(scope="module")
def enclave(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Enclave]:
    root = tmp_path_factory.mktemp("hubpieces")
    paths, url = migrated_home(root)
    setup = Enclave(paths, url)
    with setup.session() as session:
        register_patients_and_visits(session, paths, root / "src", n_patients=60)
    period = {"start": "2020-01-01", "end": "2099-12-31"}
    for fields in (
        {"id": "agg-1", "analysts": ["alice", "bob"]},
        {"id": "rows-1", "analysts": ["alice"], "access": "rows"},
        {"id": "susp-1", "analysts": ["alice"]},
    ):
        spec = parse_project_spec(project_spec(pi="alice", period=period, **fields))
        with setup.session() as session:
            projects.create_project(session, paths, spec, actor="steward", without_application=NO_APPLICATION)
    with setup.session() as session:
        lifecycle.suspend(session, "susp-1", actor="steward", reason="test")
        users.add_user(session, "alice", PASSWORD, actor="steward")
    yield setup
    dispose_all()


# ---- access -------------------------------------------------------------------------------------


def refused_code(enclave: Enclave, project: str, user: str) -> str:
    with pytest.raises(WorkspaceRefused) as refused, enclave.session() as session:
        check_workspace_access(session, project, user)
    assert refused.value.status_code == 403 and refused.value.reason == refused.value.code
    assert refused.value.message_en and refused.value.message_zh
    return refused.value.code


def test_access_allows_analysts_of_active_projects_with_their_mode(enclave: Enclave) -> None:
    with enclave.session() as session:
        assert check_workspace_access(session, "agg-1", "alice") == "aggregate"
        assert check_workspace_access(session, "rows-1", "alice") == "rows"


def test_access_refusals_carry_the_query_services_codes(enclave: Enclave) -> None:
    assert refused_code(enclave, "agg-1", "carol") == "not_a_project_analyst"  # committee, not analyst
    assert refused_code(enclave, "agg-1", "mallory") == "not_a_project_analyst"
    assert refused_code(enclave, "susp-1", "alice") == "project_not_active"
    assert refused_code(enclave, "nope-1", "alice") == "project_not_found"


def test_a_user_locked_by_monitoring_gets_no_workspace(enclave: Enclave) -> None:
    with enclave.session() as session:
        user_locks.lock_user(session, "agg-1", "bob", reason="alerts", actor="monitor")
    try:
        code = refused_code(enclave, "agg-1", "bob")
        with enclave.session() as session:
            try:
                user_locks.check_user_not_locked(session, "agg-1", "bob")
            except Exception as error:  # the gateway's own code for the same lock
                assert getattr(error, "code", None) == code
            else:
                pytest.fail("the lock did not hold")
    finally:
        with enclave.session() as session:
            user_locks.unlock_user(session, "agg-1", "bob", actor="steward", reason="cleared")
    with enclave.session() as session:
        assert check_workspace_access(session, "agg-1", "bob") == "aggregate"


# ---- publish ------------------------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="publishing hands files to another uid")


@needs_root
def test_publish_makes_a_read_only_copy_for_the_workspace_user(enclave: Enclave) -> None:
    data = publish.publish(enclave.paths, "agg-1", rows=False, uid=1000, gid=1000)
    assert data.rows_db is None and not (data.root / publish.ROWS).exists()
    assert data.root.is_relative_to(publish.workspaces_root(enclave.paths))
    assert not data.root.is_relative_to(enclave.paths.vault)
    for path in [data.root, *data.root.rglob("*")]:
        info = path.stat()
        if path.name != publish.COMPLETE:  # the marker is the service's, written after the hand-over
            assert (info.st_uid, info.st_gid) == (1000, 1000), path
        mode = stat.S_IMODE(info.st_mode)
        assert mode & 0o222 == 0, f"{path} is writable: {oct(mode)}"
        assert mode & 0o007 == 0, f"{path} is open to others: {oct(mode)}"
    with duckdb.connect(str(data.twin_db), read_only=True) as con:
        views = {
            row[0]
            for row in con.execute("select view_name from duckdb_views() where not internal").fetchall()
        }
        assert views == {"patients", "visits"}
        assert con.execute("select count(*) from patients").fetchone()[0] > 0
    again = publish.publish(enclave.paths, "agg-1", rows=False, uid=1000, gid=1000)
    assert again == data


@needs_root
def test_publish_rows_only_for_rows_projects_and_unpublish_removes_all(enclave: Enclave) -> None:
    data = publish.publish(enclave.paths, "rows-1", rows=True, uid=1000, gid=1000)
    assert data.rows_db is not None and data.rows_db.exists()
    assert sorted(p.name for p in (data.root / publish.ROWS).glob("*.parquet")) == [
        "patients.parquet",
        "visits.parquet",
    ]
    publish.unpublish(enclave.paths, "rows-1")
    assert not (publish.workspaces_root(enclave.paths) / "rows-1").exists()


def test_publish_refuses_path_tricks(enclave: Enclave) -> None:
    with pytest.raises(Exception) as refused:
        publish.publish(enclave.paths, "../vault", rows=False, uid=1000, gid=1000)
    assert getattr(refused.value, "code", None)


# ---- the authenticator, called directly ---------------------------------------------------------


class Request:
    remote_ip = "127.0.0.7"


class Handler:
    request = Request()


def authenticate(auth: EnclaveAuthenticator, data: dict[str, str]) -> str:
    return asyncio.run(auth.authenticate(Handler(), data))


def authenticator(enclave: Enclave, **settings: object) -> EnclaveAuthenticator:
    return EnclaveAuthenticator(enclave_home=str(enclave.paths.home), database_url=enclave.url, **settings)


def test_authenticate_accepts_the_right_password(enclave: Enclave) -> None:
    auth = authenticator(enclave)
    assert authenticate(auth, {"username": "alice", "password": PASSWORD}) == "alice"
    assert authenticate(auth, {"username": "ALICE", "password": PASSWORD}) == "alice"


def test_authenticate_refusals_share_one_bilingual_message(enclave: Enclave) -> None:
    auth = authenticator(enclave)
    for data in (
        {"username": "alice", "password": "Wrong-Password-9"},
        {"username": "nobody", "password": PASSWORD},
        {"username": "", "password": ""},
        {"username": "../x", "password": PASSWORD},
    ):
        with pytest.raises(web.HTTPError) as refused:
            authenticate(auth, data)
        assert refused.value.status_code == 403 and refused.value.log_message == LOGIN_REFUSED
    assert "锁定" in LOGIN_REFUSED and "locked" in LOGIN_REFUSED
    with enclave.session() as session:
        from sqlalchemy import select

        from enclave.db.models import AuditEvent

        sources = {
            e.source
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "user.login_fail"))
        }
        assert "hub@127.0.0.7" in sources


def test_authenticate_locks_out_after_the_configured_failures(enclave: Enclave) -> None:
    with enclave.session() as session:
        users.add_user(session, "bob", PASSWORD, actor="steward")
    auth = authenticator(enclave, max_failed_logins=3, lockout_seconds=600)
    for _ in range(3):
        with pytest.raises(web.HTTPError):
            authenticate(auth, {"username": "bob", "password": "Wrong-Password-9"})
    with pytest.raises(web.HTTPError):
        authenticate(auth, {"username": "bob", "password": PASSWORD})
    with enclave.session() as session:
        users.unlock_user(session, "bob", actor="steward")
    assert authenticate(auth, {"username": "bob", "password": PASSWORD}) == "bob"


def test_authenticate_requires_the_totp_code_once_enabled(enclave: Enclave) -> None:
    with enclave.session() as session:
        users.add_user(session, "erin", PASSWORD, actor="steward")
        secret, _ = users.enable_totp(session, enclave.paths, "erin", actor="steward")
    auth = authenticator(enclave)
    assert auth.request_otp is True
    with pytest.raises(web.HTTPError):
        authenticate(auth, {"username": "erin", "password": PASSWORD})
    import time

    code = totp.totp(totp.from_base32(secret), time.time())
    assert authenticate(auth, {"username": "erin", "password": PASSWORD, "otp": code}) == "erin"


def test_authenticator_traits_validate() -> None:
    from traitlets import TraitError

    with pytest.raises(TraitError):
        EnclaveAuthenticator(max_failed_logins=0)
    assert EnclaveAuthenticator().max_failed_logins == users.DEFAULT_MAX_FAILURES
    assert EnclaveAuthenticator().lockout_seconds == 15 * 60


# ---- destroyers without Docker ------------------------------------------------------------------


def test_docker_destroyers_do_nothing_without_docker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(destruction, "docker_client", lambda: None)
    found = destruction.volume_destroyers(tmp_path)
    assert [d("agg-1") for d in found] == [[], [], []]


@needs_root
def test_the_published_copy_is_destroyed_and_listed(
    enclave: Enclave, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(destruction, "docker_client", lambda: None)
    publish.publish(enclave.paths, "agg-1", rows=False, uid=1000, gid=1000)
    destroy_published = destruction.volume_destroyers(enclave.paths.home)[-1]
    assert destroy_published("agg-1") == [{"kind": "directory", "name": "workspaces/agg-1"}]
    assert not (enclave.paths.home / "workspaces" / "agg-1").exists()
    assert destroy_published("agg-1") == []
    with pytest.raises(BadInput) as refused:
        destroy_published("../../etc")
    assert refused.value.code
