"""The lifecycle enforced by date (issue #11 item 7; R-LIFE-1..4, R-LIFE-8, R-LIFE-9, T6, T7).

A project past its end date (or before its start) is refused at every entry point even while its
state still says active, because no sweep has run yet; the sweep destroys on day end + 30 at the
latest and reminds the 5-yearly review of retained data once. "Today" is injected throughout.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit, lifecycle, projects
from enclave.config import Paths
from enclave.db import session_scope
from enclave.db.models import Project
from enclave.errors import Forbidden
from enclave.projects import ProjectState
from enclave.query_service import check_analyst_access, run_query
from enclave.specs import ProjectSpec, parse_project_spec
from hub_config.access import check_workspace_access
from hub_config.errors import WorkspaceRefused
from tests.harness.factories import (
    NO_APPLICATION,
    project_spec,
    register_patients_and_visits,
)

START, END = date(2026, 1, 1), date(2026, 6, 30)
DURING, AFTER, BEFORE = date(2026, 3, 1), END + timedelta(days=1), START - timedelta(days=1)
PROJECT = "cardio-2026"


def no_op_preparer(paths: Paths, spec: ProjectSpec, datasets: Any, *, version: int) -> dict[str, Any]:
    """Marks the project prepared (active) without building files: the access rules come first."""
    return {"datasets": {}}


@pytest.fixture
def catalogued(sessions: sessionmaker[Session], paths: Paths, tmp_path: Path) -> sessionmaker[Session]:
    with session_scope(sessions) as s:
        register_patients_and_visits(s, paths, tmp_path)
    return sessions


def create(
    sessions: sessionmaker[Session], paths: Paths, *, today: date = DURING, **fields: Any
) -> dict[str, Any]:
    fields.setdefault("period", {"start": START.isoformat(), "end": END.isoformat()})
    spec = parse_project_spec(project_spec(pi="alice", analysts=["alice", "bob"], **fields))
    with session_scope(sessions) as s:
        return projects.create_project(
            s,
            paths,
            spec,
            actor="steward",
            preparer=no_op_preparer,
            today=today,
            without_application=NO_APPLICATION,
        )


@pytest.fixture
def active(catalogued: sessionmaker[Session], paths: Paths) -> str:
    """Active (prepared) and never swept: its state does not know the period is over."""
    assert create(catalogued, paths)["state"] == ProjectState.ACTIVE
    return PROJECT


def state_of(sessions: sessionmaker[Session], project_id: str) -> str:
    with session_scope(sessions) as s:
        return projects.get(s, project_id).state


# ---- the one rule ----------------------------------------------------------------------------------


def test_the_period_is_whole_days_with_both_ends_included(
    catalogued: sessionmaker[Session], active: str
) -> None:
    with session_scope(catalogued) as s:
        project = projects.get(s, active)
        for day in (START, DURING, END):
            lifecycle.check_usable(project, day)
            assert lifecycle.usable(project, day)
        for day, code in ((AFTER, "project_ended"), (BEFORE, "project_not_started")):
            with pytest.raises(Forbidden) as info:
                lifecycle.check_usable(project, day)
            assert info.value.code == code and info.value.exit_code == 4
            assert info.value.message and info.value.message_zh
            assert not lifecycle.usable(project, day)


def test_the_day_ends_at_midnight_in_the_enclaves_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    # 16:30 UTC on the end date is already the next day in Beijing (UTC+8), the default zone.
    evening = datetime(2026, 6, 30, 16, 30, tzinfo=UTC)
    monkeypatch.delenv(lifecycle.TIMEZONE_ENV, raising=False)
    assert lifecycle.enclave_today(evening) == AFTER
    assert lifecycle.enclave_today(evening - timedelta(minutes=31)) == END  # 23:59 in Beijing
    monkeypatch.setenv(lifecycle.TIMEZONE_ENV, "UTC")
    assert lifecycle.enclave_today(evening) == END
    monkeypatch.setenv(lifecycle.TIMEZONE_ENV, "Mars/Olympus")
    with pytest.raises(Exception) as info:
        lifecycle.enclave_today(evening)
    assert getattr(info.value, "code", None) == "timezone_invalid"


# ---- creation and preparation ------------------------------------------------------------------------


def test_a_spec_whose_period_has_ended_is_refused_and_nothing_is_stored(
    catalogued: sessionmaker[Session], paths: Paths
) -> None:
    with pytest.raises(Forbidden) as info:
        create(catalogued, paths, today=END + timedelta(days=240))  # eight months later
    assert info.value.code == "project_ended"
    assert "2026-06-30" in info.value.message and "2026-06-30" in info.value.message_zh
    with session_scope(catalogued) as s:
        assert s.scalars(select(Project)).all() == []
    # On its last day it is still accepted.
    assert create(catalogued, paths, today=END)["state"] == ProjectState.ACTIVE


def test_a_period_not_started_is_created_but_not_usable_until_its_start(
    catalogued: sessionmaker[Session], paths: Paths
) -> None:
    assert create(catalogued, paths, today=BEFORE - timedelta(days=30))["state"] == ProjectState.ACTIVE
    with session_scope(catalogued) as s:
        with pytest.raises(Forbidden) as info:
            check_analyst_access(s, PROJECT, "bob", today=BEFORE)
        assert info.value.code == "project_not_started"
        check_analyst_access(s, PROJECT, "bob", today=START)


def test_preparation_is_refused_after_the_end(
    catalogued: sessionmaker[Session], paths: Paths, active: str
) -> None:
    with session_scope(catalogued) as s, pytest.raises(Forbidden) as info:
        projects.prepare_project(s, paths, active, actor="steward", preparer=no_op_preparer, today=AFTER)
    assert info.value.code == "project_ended"
    with session_scope(catalogued) as s:
        result = projects.prepare_project(
            s, paths, active, actor="steward", preparer=no_op_preparer, today=END
        )
        assert result["spec_version"] == 2


# ---- every entry point, before any sweep -------------------------------------------------------------


def test_an_ended_project_is_refused_by_the_query_service_and_audited(
    catalogued: sessionmaker[Session], paths: Paths, active: str
) -> None:
    def open_session():  # type: ignore[no-untyped-def]
        return session_scope(catalogued)

    with pytest.raises(Forbidden) as info:
        run_query(open_session, paths, active, "bob", "SELECT count(*) FROM patients", today=AFTER)
    assert info.value.code == "project_ended"
    assert state_of(catalogued, active) == ProjectState.ACTIVE, "refused by date, not by a sweep"
    with session_scope(catalogued) as s:
        (event,) = audit.tail(s, action="query.refuse")
        assert json.loads(event.details_json)["code"] == "project_ended"
        check_analyst_access(s, active, "bob", today=END)  # the last day still works


def test_an_ended_project_is_refused_at_spawn_and_poll(
    catalogued: sessionmaker[Session], active: str
) -> None:
    """``check_workspace_access`` is what ``EnclaveSpawner.check_access`` runs on start and poll."""
    with session_scope(catalogued) as s:
        assert check_workspace_access(s, active, "bob", today=END) == "aggregate"
        for day, code in ((AFTER, "project_ended"), (BEFORE, "project_not_started")):
            with pytest.raises(WorkspaceRefused) as info:
                check_workspace_access(s, active, "bob", today=day)
            assert info.value.code == code and info.value.status_code == 403


def test_state_refusals_keep_their_codes(catalogued: sessionmaker[Session], active: str) -> None:
    with session_scope(catalogued) as s:
        lifecycle.suspend(s, active, actor="steward", reason="breach suspected")
    with session_scope(catalogued) as s, pytest.raises(Forbidden) as info:
        check_analyst_access(s, active, "bob", today=AFTER)
    assert info.value.code == "project_not_active"


# ---- the sweep: day 30 at the latest, reviews of retained data -------------------------------------


def open_session_for(sessions: sessionmaker[Session]):  # type: ignore[no-untyped-def]
    return lambda: session_scope(sessions)


def test_destruction_is_due_on_day_30_not_31(catalogued: sessionmaker[Session], active: str) -> None:
    with session_scope(catalogued) as s:
        assert lifecycle.plan_sweep(s, today=END).expired == []
        assert lifecycle.plan_sweep(s, today=AFTER).expired == [active]
        assert lifecycle.plan_sweep(s, today=END + timedelta(days=29)).destroyed == []
        assert lifecycle.plan_sweep(s, today=END + timedelta(days=30)).destroyed == [active]
        assert lifecycle.plan_sweep(s, today=AFTER, grace_days=1).destroyed == [active]
        for bad in (0, 31):
            with pytest.raises(Exception) as info:
                lifecycle.plan_sweep(s, today=AFTER, grace_days=bad)
            assert getattr(info.value, "code", None) == "grace_days_invalid"


def test_the_sweep_destroys_on_day_30(catalogued: sessionmaker[Session], paths: Paths, active: str) -> None:
    revoked: list[str] = []
    day29 = lifecycle.sweep(
        open_session_for(catalogued), paths, today=END + timedelta(days=29), hooks=[revoked.append]
    )
    assert (day29.expired, day29.destroyed, day29.failed) == ([active], [], [])
    assert revoked == [active] and state_of(catalogued, active) == ProjectState.EXPIRED
    day30 = lifecycle.sweep(open_session_for(catalogued), paths, today=END + timedelta(days=30))
    assert (day30.expired, day30.destroyed, day30.failed) == ([], [active], [])
    assert state_of(catalogued, active) == ProjectState.DESTROYED


def test_a_failed_step_does_not_stop_the_pass(
    catalogued: sessionmaker[Session], paths: Paths, active: str
) -> None:
    create(catalogued, paths, id="diab-2026")

    def hub_down(project_id: str) -> None:
        if project_id == active:
            raise OSError("the hub is unreachable")

    result = lifecycle.sweep(
        open_session_for(catalogued), paths, today=END + timedelta(days=30), hooks=[hub_down]
    )
    assert result.expired == ["diab-2026"] and result.destroyed == ["diab-2026"]
    assert [(f["project"], f["step"]) for f in result.failed] == [(active, "expire")]
    # Its access was not revoked: it is not destroyed either, and is retried next time. The date
    # rule refuses it meanwhile.
    assert state_of(catalogued, active) == ProjectState.ACTIVE
    with session_scope(catalogued) as s, pytest.raises(Forbidden):
        check_analyst_access(s, active, "bob", today=END + timedelta(days=30))


def test_retained_data_review_is_reminded_once_every_five_years(
    catalogued: sessionmaker[Session], paths: Paths, active: str
) -> None:
    sweep = open_session_for(catalogued)
    lifecycle.sweep(sweep, paths, today=END + timedelta(days=30))  # expired and destroyed
    review = date(2031, 6, 30)
    with session_scope(catalogued) as s:
        info = projects.describe(s, active, today=review - timedelta(days=1))
        assert info["retention_review"] == {"next_due": "2031-06-30", "reminders": [], "pending": []}
    assert lifecycle.sweep(sweep, paths, today=review - timedelta(days=1)).reviews == []
    first = lifecycle.sweep(sweep, paths, today=review)
    assert first.reviews == [{"project": active, "due": "2031-06-30"}]
    assert lifecycle.sweep(sweep, paths, today=review + timedelta(days=1)).reviews == [], "once"
    with session_scope(catalogued) as s:
        (event,) = audit.tail(s, action="project.retention_review_due")
        assert event.actor == "scheduler" and event.project == active
        assert json.loads(event.details_json)["due"] == "2031-06-30"
        info = projects.describe(s, active, today=review)
        assert [r["due"] for r in info["retention_review"]["reminders"]] == ["2031-06-30"]
        assert info["retention_review"]["next_due"] == "2036-06-30"
    assert lifecycle.sweep(sweep, paths, today=date(2036, 7, 1)).reviews == [
        {"project": active, "due": "2036-06-30"}
    ]


def test_an_active_project_is_not_due_a_review(catalogued: sessionmaker[Session], active: str) -> None:
    with session_scope(catalogued) as s:
        assert lifecycle.plan_sweep(s, today=END).reviews == []
