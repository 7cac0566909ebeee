"""Prometheus metrics of the gateway (issue 13, item 6), in the text exposition format.

``GET {service}/metrics`` answers only a hub token with ``read:metrics`` (the ``monitoring`` service,
stewards; ``enclave.services.hub.check_metrics_reader``). JupyterHub serves its own at ``/hub/metrics``
under the same scope.

The gateway's counters come from the audit log, read forward from the record that was last when the
service started, so they count every query recorded in the state database (gateway and CLI) since
then, like any Prometheus counter that restarts with its process. No user name or SQL is ever a
label: the metrics leave the vault for a monitoring system.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from enclave.audit import AuditAction
from enclave.db.models import AuditEvent

CONTENT_TYPE = CONTENT_TYPE_LATEST
OpenSession = Callable[[], AbstractContextManager[Session]]
_QUERY_ACTIONS = (AuditAction.QUERY_RUN.value, AuditAction.QUERY_REFUSE.value, AuditAction.QUERY_ALERT.value)
_BATCH = 5_000


class _Families:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def render(families: Iterable[Metric]) -> bytes:
    """The families in Prometheus text format (``CONTENT_TYPE``)."""
    return generate_latest(_Families(families))  # type: ignore[arg-type]


class QueryMetrics:
    """Counts of the queries, refusals (by code) and monitoring alerts (by rule) in the audit log."""

    def __init__(self, open_session: OpenSession, prefix: str = "enclave_gateway") -> None:
        self.open_session = open_session
        self.prefix = prefix
        self.started = time.time()
        self.queries: Counter[tuple[str, str]] = Counter()  # (outcome, synthetic)
        self.refusals: Counter[str] = Counter()  # the refusal's code
        self.violations: Counter[str] = Counter()  # each guard rule a refused query broke
        self.alerts: Counter[str] = Counter()  # the alert's rule
        self._lock = threading.Lock()
        with open_session() as session:
            self._cursor = session.scalar(select(func.max(AuditEvent.seq))) or 0

    def update(self) -> None:
        """Count the query records written since the last call (blocking: run it off the event loop)."""
        with self._lock:
            while True:
                with self.open_session() as session:
                    rows = session.execute(
                        select(AuditEvent.seq, AuditEvent.action, AuditEvent.details_json)
                        .where(AuditEvent.seq > self._cursor, AuditEvent.action.in_(_QUERY_ACTIONS))
                        .order_by(AuditEvent.seq)
                        .limit(_BATCH)
                    ).all()
                for seq, action, details_json in rows:
                    self._count(action, _details(details_json))
                    self._cursor = seq
                if len(rows) < _BATCH:
                    return

    def _count(self, action: str, details: dict[str, Any]) -> None:
        if action == AuditAction.QUERY_ALERT.value:
            self.alerts[str(details.get("rule", "unknown"))] += 1
            return
        synthetic = "true" if details.get("synthetic") else "false"
        if action == AuditAction.QUERY_RUN.value:
            self.queries["success", synthetic] += 1
            return
        if details.get("server_failure"):  # the server's failure (admission control), not a refusal
            self.queries["server_failure", synthetic] += 1
            return
        self.queries["refused", synthetic] += 1
        self.refusals[str(details.get("code", "unknown"))] += 1
        for reason in details.get("reasons") or []:
            self.violations[str(reason)] += 1

    def families(self) -> list[Metric]:
        p = self.prefix
        queries = CounterMetricFamily(
            f"{p}_queries",
            "Queries recorded, by outcome and whether they ran on the synthetic twin.",
            labels=["outcome", "synthetic"],
        )
        for (outcome, synthetic), count in sorted(self.queries.items()):
            queries.add_metric([outcome, synthetic], count)
        refusals = CounterMetricFamily(
            f"{p}_query_refusals", "Refused queries, by the refusal's stable code.", labels=["code"]
        )
        for code, count in sorted(self.refusals.items()):
            refusals.add_metric([code], count)
        violations = CounterMetricFamily(
            f"{p}_guard_violations", "Guard rules broken by refused queries, by rule code.", labels=["code"]
        )
        for code, count in sorted(self.violations.items()):
            violations.add_metric([code], count)
        alerts = CounterMetricFamily(
            f"{p}_query_alerts", "Monitoring alerts raised (R-QRY-5), by rule.", labels=["rule"]
        )
        for rule, count in sorted(self.alerts.items()):
            alerts.add_metric([rule], count)
        started = GaugeMetricFamily(
            f"{p}_start_time_seconds", "When the service started counting (Unix time).", value=self.started
        )
        return [queries, refusals, violations, alerts, started]


def _details(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
