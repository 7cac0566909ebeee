"""Project lifecycle: one transition table, audited steps, revocation hooks, the sweep."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit, lifecycle, project_states, projects
from enclave.config import Paths
from enclave.db import session_scope
from enclave.db.models import GuardLedgerEntry
from enclave.errors import BadInput, Forbidden
from enclave.projects import ProjectState
from enclave.specs import parse_project_spec
from tests.harness.factories import (
    NO_APPLICATION,
    project_spec,
    register_patients_and_visits,
)


@pytest.fixture
def project(sessions: sessionmaker[Session], paths: Paths, tmp_path: Path) -> str:
    with session_scope(sessions) as s:
        register_patients_and_visits(s, paths, tmp_path)
        spec = parse_project_spec(project_spec(period={"start": "2026-01-01", "end": "2026-06-30"}))
        projects.create_project(
            s,
            paths,
            spec,
            actor="steward",
            preparer=None,
            today=date(2026, 3, 1),
            without_application=NO_APPLICATION,
        )
    return spec.id


def state_of(sessions: sessionmaker[Session], project_id: str) -> str:
    with session_scope(sessions) as s:
        return projects.get(s, project_id).state


def test_every_state_has_its_transitions_listed() -> None:
    states = set(ProjectState)
    assert set(project_states.VALID_TRANSITIONS) == states
    assert all(targets <= states for targets in project_states.VALID_TRANSITIONS.values())
    assert project_states.VALID_TRANSITIONS[ProjectState.DESTROYED] == set()


def test_suspend_revokes_and_resume_restores(sessions: sessionmaker[Session], project: str) -> None:
    revoked: list[str] = []
    with session_scope(sessions) as s:
        lifecycle.suspend(s, project, actor="steward", reason="breach suspected", hooks=[revoked.append])
    assert revoked == [project]
    assert state_of(sessions, project) == ProjectState.SUSPENDED
    with session_scope(sessions) as s:
        lifecycle.resume(s, project, actor="steward", reason="cleared", today=date(2026, 3, 1))
        events = audit.tail(s, project=project)
    assert [e.action for e in events][-2:] == ["project.suspend", "project.resume"]
    assert "breach suspected" in events[-2].details_json
    assert state_of(sessions, project) == ProjectState.ACTIVE


def test_suspend_needs_a_reason(sessions: sessionmaker[Session], project: str) -> None:
    with session_scope(sessions) as s, pytest.raises(BadInput):
        lifecycle.suspend(s, project, actor="steward", reason="  ")


def test_cannot_resume_after_the_period(sessions: sessionmaker[Session], project: str) -> None:
    with session_scope(sessions) as s:
        lifecycle.suspend(s, project, actor="steward", reason="x")
    with session_scope(sessions) as s, pytest.raises(Forbidden) as info:
        lifecycle.resume(s, project, actor="steward", reason="y", today=date(2026, 7, 1))
    assert info.value.code == "project_period_over"


def test_expired_project_cannot_come_back(sessions: sessionmaker[Session], project: str) -> None:
    with session_scope(sessions) as s:
        lifecycle.expire(s, project, actor="steward")
    for action in (
        lambda s: lifecycle.resume(s, project, actor="steward", reason="please"),
        lambda s: lifecycle.suspend(s, project, actor="steward", reason="x"),
        lambda s: lifecycle.expire(s, project, actor="steward"),
    ):
        with session_scope(sessions) as s, pytest.raises(Forbidden) as info:
            action(s)
        assert info.value.code == "project_state_invalid" and info.value.exit_code == 4
    assert state_of(sessions, project) == ProjectState.EXPIRED


def test_sweep_plans_expiry_at_period_end_and_destruction_within_30_days(
    sessions: sessionmaker[Session], project: str
) -> None:
    with session_scope(sessions) as s:
        assert lifecycle.plan_sweep(s, today=date(2026, 6, 30)).to_dict() == {
            "expired": [],
            "destroyed": [],
            "reviews": [],
            "failed": [],
        }
        assert lifecycle.plan_sweep(s, today=date(2026, 7, 1)).expired == [project]
        # R-LIFE-4: day end + 30 at the latest (it used to land on day 31).
        assert lifecycle.plan_sweep(s, today=date(2026, 7, 29)).destroyed == []
        assert lifecycle.plan_sweep(s, today=date(2026, 7, 30)).destroyed == [project]
        assert lifecycle.plan_sweep(s, today=date(2026, 7, 1), grace_days=1).destroyed == [project]
        for grace_days in (0, 31):
            with pytest.raises(BadInput):
                lifecycle.plan_sweep(s, grace_days=grace_days)


def test_sweep_expires_in_its_own_transaction(
    sessions: sessionmaker[Session], paths: Paths, project: str
) -> None:
    revoked: list[str] = []

    def open_session():  # type: ignore[no-untyped-def]
        return session_scope(sessions)

    result = lifecycle.sweep(open_session, paths, today=date(2026, 7, 5), hooks=[revoked.append])
    assert result.expired == [project] and result.destroyed == []
    assert revoked == [project]
    assert state_of(sessions, project) == ProjectState.EXPIRED
    with session_scope(sessions) as s:
        (event,) = audit.tail(s, action="project.expire")
        assert event.actor == "scheduler"


def ledger_rows(sessions: sessionmaker[Session]) -> dict[str, int]:
    with session_scope(sessions) as s:
        counted = select(GuardLedgerEntry.project_id, func.count()).group_by(GuardLedgerEntry.project_id)
        return {project_id: n for project_id, n in s.execute(counted)}


def test_destruction_clears_the_differencing_ledger_of_that_project_only(
    sessions: sessionmaker[Session], paths: Paths, project: str
) -> None:
    from enclave.guard.ledger import DatabaseLedger, Sketch
    from enclave.prepare.destroy import DestructionFailed, verify_certificate

    with session_scope(sessions) as s:
        other = parse_project_spec(project_spec(id="diab-2026"))
        projects.create_project(
            s, paths, other, actor="steward", preparer=None, without_application=NO_APPLICATION
        )
    for project_id, populations in ((project, 3), ("diab-2026", 2)):
        ledger = DatabaseLedger(lambda: session_scope(sessions), project_id)
        sketches = [Sketch.of(range(100 * i + 1, 100 * i + 50), 5) for i in range(populations)]
        assert ledger.admit(sketches, 5) == [True] * populations
    assert ledger_rows(sessions) == {project: 3, "diab-2026": 2}

    def broken(project_id: str) -> list:
        raise OSError("docker is down")

    with pytest.raises(DestructionFailed), session_scope(sessions) as s:
        lifecycle.destroy(s, paths, project, actor="steward", volume_destroyers=[broken])
    assert ledger_rows(sessions) == {project: 3, "diab-2026": 2}, "a failed destruction keeps the ledger"

    with session_scope(sessions) as s:
        summary = lifecycle.destroy(s, paths, project, actor="steward")
    assert ledger_rows(sessions) == {"diab-2026": 2}
    [item] = [i for i in summary["items"] if i["kind"] == "database_rows"]
    assert item["name"] == f"guard_ledger/{project}: 3 rows"
    assert verify_certificate(Path(summary["path"]))
    with session_scope(sessions) as s:
        [event] = audit.tail(s, action="project.destroy")
        assert item in json.loads(event.details_json)["certificate"]["items"]
