"""Monitoring thresholds on the real audit log: alert, repeat, lock, unlock (R-QRY-4, R-QRY-5, T10)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit, db, user_locks
from enclave.audit import AuditAction
from enclave.db.models import AuditEvent
from enclave.db.session import dispose_all
from enclave.errors import Forbidden, NotFound
from enclave.gateway.monitor import QueryMonitor

PROJECT = "cardio-2026"
SOURCE = "gateway@127.0.0.7"


@pytest.fixture
def sessions(tmp_path: Any) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    db.migrate(url)
    yield db.connect(url)
    dispose_all()


def audited_query(
    sessions: sessionmaker[Session], user: str, *, rows: int = 1, refused: bool = False, **details: Any
) -> None:
    """Record a query exactly as ``query_service.run_query`` does."""
    with db.session_scope(sessions) as session:
        audit.record(
            session,
            AuditAction.QUERY_REFUSE if refused else AuditAction.QUERY_RUN,
            actor=user,
            obj=f"project:{PROJECT}",
            project=PROJECT,
            outcome="refused" if refused else "success",
            source=SOURCE,
            details={"sql": "SELECT 1", **({} if refused else {"rows": rows}), **details},
        )


def evaluate(sessions: sessionmaker[Session], monitor: QueryMonitor, user: str = "bob") -> Any:
    with db.session_scope(sessions) as session:
        return monitor.evaluate(session, PROJECT, user, source=SOURCE, sql="SELECT count(*) FROM patients")


def alerts(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    with db.session_scope(sessions) as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == AuditAction.QUERY_ALERT.value)
            .order_by(AuditEvent.seq)
        ).all()
        return [
            {**json.loads(e.details_json), "ts": e.ts, "source": e.source, "object": e.object} for e in events
        ]


def test_defaults_match_the_issue() -> None:
    monitor = QueryMonitor()
    assert (monitor.queries_per_window, monitor.query_window_s) == (300, 600.0)
    assert monitor.rows_per_hour == 100_000
    assert (monitor.alerts_to_lock, monitor.lock_window_s) == (3, 86_400.0)
    # every result the differencing ledger held back, and every timeout, is an alert (§3.6)
    assert (monitor.differencing_per_hour, monitor.timeouts_per_hour) == (0, 0)


def test_settings_are_validated() -> None:
    from traitlets import TraitError

    with pytest.raises(TraitError):
        QueryMonitor(queries_per_window=0)
    with pytest.raises(TraitError):
        QueryMonitor(alerts_to_lock=0)
    with pytest.raises(TraitError):
        QueryMonitor(timeouts_per_hour=-1)


def test_below_threshold_raises_nothing(sessions: sessionmaker[Session]) -> None:
    monitor = QueryMonitor(queries_per_window=3)
    for _ in range(3):
        audited_query(sessions, "bob")
        assert evaluate(sessions, monitor).alerts == []
    assert alerts(sessions) == []


def test_query_rate_alert_carries_user_address_time_and_content(sessions: sessionmaker[Session]) -> None:
    monitor = QueryMonitor(queries_per_window=3)
    for _ in range(4):
        audited_query(sessions, "bob")
    outcome = evaluate(sessions, monitor)
    assert [a.rule for a in outcome.alerts] == ["query_rate"]
    [alert] = alerts(sessions)
    assert alert["user"] == "bob" and alert["address"] == SOURCE and alert["source"] == SOURCE
    assert alert["sql"] == "SELECT count(*) FROM patients"
    assert alert["observed"] == 4 and alert["threshold"] == 3 and alert["ts"]
    assert not outcome.locked


def test_one_burst_is_one_alert_until_the_threshold_is_passed_again(sessions: sessionmaker[Session]) -> None:
    monitor = QueryMonitor(queries_per_window=3)
    raised = []
    for _ in range(12):
        audited_query(sessions, "bob")
        raised.append(len(evaluate(sessions, monitor).alerts))
    # alerts at the 4th query, then 4 more after each alert: the 8th and the 12th
    assert [i + 1 for i, n in enumerate(raised) if n] == [4, 8, 12]


def test_third_alert_locks_the_user_until_a_steward_unlocks(sessions: sessionmaker[Session]) -> None:
    monitor = QueryMonitor(queries_per_window=2, alerts_to_lock=3)
    outcomes = []
    for _ in range(9):
        audited_query(sessions, "bob")
        outcomes.append(evaluate(sessions, monitor))
    assert [o.locked for o in outcomes].count(True) == 1
    assert outcomes[-1].locked and outcomes[-1].alerts_in_lock_window == 3
    with db.session_scope(sessions) as session:
        with pytest.raises(Forbidden) as caught:
            user_locks.check_user_not_locked(session, PROJECT, "bob")
        assert caught.value.code == "user_access_locked"
        user_locks.check_user_not_locked(session, PROJECT, "alice")  # others are not affected
        user_locks.check_user_not_locked(session, "diab-2026", "bob")  # nor bob's other projects
        [event] = audit.tail(session, 1, action=AuditAction.PROJECT_LOCK.value)
        assert json.loads(event.details_json)["user"] == "bob"


def test_rows_per_hour_counts_real_data_only(sessions: sessionmaker[Session]) -> None:
    monitor = QueryMonitor(rows_per_hour=100)
    audited_query(sessions, "bob", rows=90)
    audited_query(sessions, "bob", rows=500, synthetic=True)
    assert evaluate(sessions, monitor).alerts == []
    audited_query(sessions, "bob", rows=20)
    assert [a.rule for a in evaluate(sessions, monitor).alerts] == ["rows_per_hour"]


def test_refusals_count_but_not_access_refusals(sessions: sessionmaker[Session]) -> None:
    monitor = QueryMonitor(refused_per_hour=2)
    for _ in range(5):
        audited_query(sessions, "bob", refused=True, code="user_access_locked")
    assert evaluate(sessions, monitor).alerts == []
    for _ in range(3):
        audited_query(sessions, "bob", refused=True, code="query_rejected")
    assert [a.rule for a in evaluate(sessions, monitor).alerts] == ["refused_per_hour"]


def test_every_result_held_back_by_the_differencing_ledger_is_an_alert(
    sessions: sessionmaker[Session],
) -> None:
    monitor = QueryMonitor()
    audited_query(sessions, "bob", ledger_suppressed=0)
    audited_query(sessions, "bob", ledger_suppressed=3, synthetic=True)  # the twin: fake persons
    assert evaluate(sessions, monitor).alerts == []
    for _ in range(2):
        audited_query(sessions, "bob", ledger_suppressed=1)
        [alert] = evaluate(sessions, monitor).alerts
        assert (alert.rule, alert.observed, alert.threshold) == ("differencing", 1, 0)


def test_the_differencing_threshold_is_configurable(sessions: sessionmaker[Session]) -> None:
    monitor = QueryMonitor(differencing_per_hour=2)
    for _ in range(2):
        audited_query(sessions, "bob", ledger_suppressed=1)
    assert evaluate(sessions, monitor).alerts == []
    audited_query(sessions, "bob", ledger_suppressed=2)
    assert [(a.rule, a.observed) for a in evaluate(sessions, monitor).alerts] == [("differencing", 3)]


def test_every_timeout_is_an_alert(sessions: sessionmaker[Session]) -> None:
    monitor = QueryMonitor()
    audited_query(sessions, "bob", refused=True, code="query_rejected")
    audited_query(sessions, "bob", refused=True, code="query_cancelled")
    assert evaluate(sessions, monitor).alerts == []
    audited_query(sessions, "bob", refused=True, code="query_timeout", synthetic=True)
    assert [(a.rule, a.observed) for a in evaluate(sessions, monitor).alerts] == [("timeout", 1)]
    assert [a["rule"] for a in alerts(sessions)] == ["timeout"]


def test_a_join_refused_for_its_fan_out_is_a_timing_alert(sessions: sessionmaker[Session]) -> None:
    # Attack class 7: a fan-out that explodes only when the target matches; refusing it is the
    # guard's answer, and trying is worth an alert like a timeout.
    monitor = QueryMonitor()
    audited_query(sessions, "bob", refused=True, code="query_rejected", reasons=["QRY_JOIN"])
    assert evaluate(sessions, monitor).alerts == []
    audited_query(sessions, "bob", refused=True, code="query_rejected", reasons=["QRY_FANOUT"])
    assert [(a.rule, a.observed) for a in evaluate(sessions, monitor).alerts] == [("timeout", 1)]


def test_differencing_and_timeout_alerts_lock_like_any_other(sessions: sessionmaker[Session]) -> None:
    monitor = QueryMonitor(alerts_to_lock=3)
    audited_query(sessions, "bob", ledger_suppressed=1)
    audited_query(sessions, "bob", refused=True, code="query_timeout")
    assert not evaluate(sessions, monitor).locked  # two alerts: differencing and timeout
    audited_query(sessions, "bob", ledger_suppressed=1)
    outcome = evaluate(sessions, monitor)
    assert outcome.locked and outcome.alerts_in_lock_window == 3
    with db.session_scope(sessions) as session, pytest.raises(Forbidden):
        user_locks.check_user_not_locked(session, PROJECT, "bob")


def test_users_are_counted_separately(sessions: sessionmaker[Session]) -> None:
    monitor = QueryMonitor(queries_per_window=3)
    for user in ("alice", "bob", "alice", "bob", "alice", "bob"):
        audited_query(sessions, user)
    assert evaluate(sessions, monitor, "alice").alerts == []
    assert evaluate(sessions, monitor, "bob").alerts == []


def test_unlock(sessions: sessionmaker[Session], tmp_path: Any) -> None:
    from enclave import catalog, projects
    from enclave.config import Paths
    from enclave.specs import parse_project_spec
    from tests.harness.factories import (
        NO_APPLICATION,
        PATIENT_COLUMNS,
        patients_table,
        project_spec,
        write_dataset,
    )

    with db.session_scope(sessions) as session:
        catalog.register(
            session,
            Paths(tmp_path),
            write_dataset(tmp_path / "src", "patients", patients_table(), PATIENT_COLUMNS),
            actor="steward",
        )
        spec = project_spec(datasets={"patients": ["pid", "sex"]})
        projects.create_project(
            session,
            Paths(tmp_path),
            parse_project_spec(spec),
            actor="s",
            preparer=None,
            without_application=NO_APPLICATION,
        )
    with db.session_scope(sessions) as session:
        with pytest.raises(NotFound):
            user_locks.unlock_user(session, PROJECT, "bob", actor="steward", reason="x")
        first = user_locks.lock_user(session, PROJECT, "bob", reason="test", actor="monitor")
        assert user_locks.lock_user(session, PROJECT, "bob", reason="again", actor="monitor").id == first.id
    with db.session_scope(sessions) as session:
        user_locks.unlock_user(session, PROJECT, "bob", actor="steward", reason="talked to bob")
        user_locks.check_user_not_locked(session, PROJECT, "bob")
        [lifted] = user_locks.list_locks(session, PROJECT, include_lifted=True)
        assert lifted.unlocked_by == "steward" and user_locks.list_locks(session, PROJECT) == []
        [event] = audit.tail(session, 1, action=AuditAction.PROJECT_UNLOCK.value)
        assert event.actor == "steward"
