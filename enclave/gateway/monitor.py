"""Query monitoring (GB/T 39725 Table 5; R-QRY-4, R-QRY-5; test T10).

After each query the gateway calls ``QueryMonitor.evaluate``. It counts the user's recent queries
in the audit log and raises a ``query.alert`` event (user, source address, time, the query) when a
threshold is passed: queries per window, rows returned per hour, refused queries per hour, results
held back by the differencing ledger, and queries stopped by the time limit (ARCHITECTURE §3.6; by
default every one of the last two is an alert). An alert rule fires again only when the threshold
is passed again *after* its last alert, so one burst is one alert, and a sustained burst gives one
alert per threshold's worth of queries. At ``alerts_to_lock`` alerts within ``lock_window_s`` the
user's access to the project is locked.

Every rule is counted from the audit log, not from the query at hand: ``enclave query`` (the CLI)
does not call the monitor, but what it records is counted at the user's next gateway query.

A failure the server caused (``outcome: server_failure``: busy, out of memory or time while sharing
the server, stopped by a shutdown; ``enclave.gateway.admission``) is not the analyst's doing and is
counted by no rule: under load an honest analyst must never be locked out for the server's shortage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable

from enclave import audit, user_locks
from enclave.audit import AuditAction
from enclave.db.models import AuditEvent
from enclave.query_service import SERVER_FAILURE_CODES

MONITOR_ACTOR = "enclave-gateway"
MAX_ALERT_SQL = 2_000
# Refusals that are about who may query, not about what was asked: they are not counted, since a
# locked user's retries must not keep raising alerts.
ACCESS_REFUSAL_CODES = frozenset(
    {
        "not_a_project_analyst",
        "project_not_active",
        "project_access_locked",
        "user_access_locked",
        "project_not_found",
    }
)


@dataclass(frozen=True)
class Alert:
    """One threshold passed: which rule, the count observed, the threshold and window."""

    rule: str
    observed: int
    threshold: int
    window_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "observed": self.observed,
            "threshold": self.threshold,
            "window_s": self.window_s,
        }


@dataclass
class MonitorOutcome:
    """What one evaluation did: the alerts it raised, and whether it locked the user."""

    alerts: list[Alert] = field(default_factory=list)
    locked: bool = False
    alerts_in_lock_window: int = 0


TIMEOUT_CODE = "query_timeout"
FANOUT_CODE = "QRY_FANOUT"


@dataclass(frozen=True)
class _QueryEvent:
    ts: str
    refused: bool
    rows: int
    ledger_suppressed: int = 0
    timed_out: bool = False


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class QueryMonitor(LoggingConfigurable):
    """Thresholds that raise alerts and lock users (R-QRY-4, R-QRY-5). All per user and project."""

    queries_per_window = Integer(
        300,
        min=1,
        help="Alert when a user runs more than this many queries on a project within `query_window_s`.",
    ).tag(config=True)
    query_window_s = Float(
        600.0, min=1.0, help="Window for `queries_per_window`, in seconds (default: 10 minutes)."
    ).tag(config=True)
    rows_per_hour = Integer(
        100_000,
        min=1,
        help="Alert when the result rows returned to a user from a project's real data within one hour "
        "pass this (bulk extraction; R-QRY-4). Queries on the synthetic twin are not counted.",
    ).tag(config=True)
    refused_per_hour = Integer(
        50,
        min=1,
        help="Alert when more than this many of a user's queries are refused within one hour "
        "(probing the guard). Refusals for lack of access are not counted.",
    ).tag(config=True)
    differencing_per_hour = Integer(
        0,
        min=0,
        help="Alert when more than this many of a user's queries on a project's real data within one "
        "hour had values or groups held back by the differencing ledger (a result differing by 1 to "
        "k-1 persons from one already released: the shape of a differencing attack). 0, the default: "
        "every such query is an alert. Queries on the synthetic twin are not counted.",
    ).tag(config=True)
    timeouts_per_hour = Integer(
        0,
        min=0,
        help="Alert when more than this many of a user's queries are stopped by the time limit "
        "(`query_timeout`) or refused for a join's fan-out (`QRY_FANOUT`) within one hour, on real "
        "data or the twin. 0, the default: every one is an alert.",
    ).tag(config=True)
    alerts_to_lock = Integer(
        3,
        min=1,
        help="Lock the user's access to the project at this many alerts within `lock_window_s`; "
        "a steward unlocks it (`enclave gateway unlock`).",
    ).tag(config=True)
    lock_window_s = Float(
        86_400.0, min=1.0, help="Window for `alerts_to_lock`, in seconds (default: 24 hours)."
    ).tag(config=True)

    HOUR_S = 3600.0

    def _recent_queries(self, session: Session, project_id: str, user: str, since: str) -> list[_QueryEvent]:
        rows = session.execute(
            select(AuditEvent.ts, AuditEvent.action, AuditEvent.details_json).where(
                AuditEvent.actor == user,
                AuditEvent.project == project_id,
                AuditEvent.ts >= since,
                AuditEvent.action.in_([AuditAction.QUERY_RUN.value, AuditAction.QUERY_REFUSE.value]),
            )
        ).all()
        events = []
        for ts, action, details_json in rows:
            details = json.loads(details_json)
            refused = action == AuditAction.QUERY_REFUSE.value
            if refused and details.get("code") in ACCESS_REFUSAL_CODES:
                continue
            if refused and (details.get("server_failure") or details.get("code") in SERVER_FAILURE_CODES):
                continue  # the server's failure, not the analyst's
            real = not refused and not details.get("synthetic")
            real_rows = int(details.get("rows") or 0) if real else 0
            ledger_suppressed = int(details.get("ledger_suppressed") or 0) if real else 0
            # A timeout, or a join refused for its fan-out: the timing side channel (attack class 7).
            timed_out = refused and (
                details.get("code") == TIMEOUT_CODE or FANOUT_CODE in (details.get("reasons") or [])
            )
            events.append(_QueryEvent(ts, refused, real_rows, ledger_suppressed, timed_out))
        return events

    def _recent_alerts(
        self, session: Session, project_id: str, user: str, since: str
    ) -> list[tuple[str, str]]:
        rows = session.execute(
            select(AuditEvent.ts, AuditEvent.details_json).where(
                AuditEvent.actor == MONITOR_ACTOR,
                AuditEvent.project == project_id,
                AuditEvent.action == AuditAction.QUERY_ALERT.value,
                AuditEvent.object == f"user:{user}",
                AuditEvent.ts >= since,
            )
        ).all()
        return [(ts, json.loads(details_json).get("rule", "")) for ts, details_json in rows]

    def _rules(self) -> list[tuple[str, float, int]]:
        return [
            ("query_rate", self.query_window_s, self.queries_per_window),
            ("rows_per_hour", self.HOUR_S, self.rows_per_hour),
            ("refused_per_hour", self.HOUR_S, self.refused_per_hour),
            ("differencing", self.HOUR_S, self.differencing_per_hour),
            ("timeout", self.HOUR_S, self.timeouts_per_hour),
        ]

    @staticmethod
    def _observed(rule: str, events: list[_QueryEvent]) -> int:
        if rule == "query_rate":
            return len(events)
        if rule == "rows_per_hour":
            return sum(e.rows for e in events)
        if rule == "differencing":
            return sum(1 for e in events if e.ledger_suppressed > 0)
        if rule == "timeout":
            return sum(1 for e in events if e.timed_out)
        return sum(1 for e in events if e.refused)

    def check_thresholds(
        self, session: Session, project_id: str, user: str, now: datetime | None = None
    ) -> list[Alert]:
        """The rules the user's recent queries pass, each counted since its own last alert."""
        now = now or datetime.now(UTC)
        rules = self._rules()
        oldest = _iso(now - timedelta(seconds=max(w for _, w, _ in rules)))
        events = self._recent_queries(session, project_id, user, oldest)
        last_alert: dict[str, str] = {}
        for ts, rule in self._recent_alerts(session, project_id, user, oldest):
            last_alert[rule] = max(ts, last_alert.get(rule, ""))
        alerts = []
        for rule, window_s, threshold in rules:
            since = max(_iso(now - timedelta(seconds=window_s)), last_alert.get(rule, ""))
            observed = self._observed(rule, [e for e in events if e.ts > since])
            if observed > threshold:
                alerts.append(Alert(rule, observed, threshold, window_s))
        return alerts

    def evaluate(
        self,
        session: Session,
        project_id: str,
        user: str,
        *,
        source: str | None,
        sql: str,
        now: datetime | None = None,
    ) -> MonitorOutcome:
        """Raise the alerts due after this query, and lock the user past the lock threshold.

        Runs in the caller's transaction: alerts and the lock commit together.
        """
        now = now or datetime.now(UTC)
        outcome = MonitorOutcome(alerts=self.check_thresholds(session, project_id, user, now))
        for alert in outcome.alerts:
            audit.record(
                session,
                AuditAction.QUERY_ALERT,
                actor=MONITOR_ACTOR,
                obj=f"user:{user}",
                project=project_id,
                outcome="alert",
                source=source,
                details={
                    **alert.to_dict(),
                    "user": user,
                    "address": source,
                    "sql": sql[:MAX_ALERT_SQL],
                },
            )
            self.log.warning(
                "query alert %s: user=%s project=%s address=%s observed=%d threshold=%d",
                alert.rule,
                user,
                project_id,
                source,
                alert.observed,
                alert.threshold,
            )
        if not outcome.alerts:
            return outcome
        since = _iso(now - timedelta(seconds=self.lock_window_s))
        outcome.alerts_in_lock_window = len(self._recent_alerts(session, project_id, user, since))
        if outcome.alerts_in_lock_window >= self.alerts_to_lock and not user_locks.user_is_locked(
            session, project_id, user
        ):
            user_locks.lock_user(
                session,
                project_id,
                user,
                reason=f"{outcome.alerts_in_lock_window} monitoring alerts within {self.lock_window_s:g} s",
                actor=MONITOR_ACTOR,
                source=source,
                details={"alerts": [a.to_dict() for a in outcome.alerts]},
            )
            outcome.locked = True
            self.log.warning("locked %s out of project %s", user, project_id)
        return outcome
