"""Prometheus metrics of the export queue (issue 13, item 6): requests per state, and how long the
oldest one has waited in each state that waits on someone.

Computed from the state database at each scrape, so they hold across restarts. Only the current
version of a request counts: a version that a revision replaced is history. No user name, project
or file name is a label (``enclave.metrics``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from enclave.db.models import ExportRequest
from export_review.workflow import ExportState

# States in which a request waits for someone (checks, the committee, the requester, a releaser).
WAITING = (
    ExportState.SUBMITTED,
    ExportState.CHECKED,
    ExportState.IN_REVIEW,
    ExportState.CHANGES_REQUESTED,
    ExportState.APPROVED,
)


def export_families(session: Session, now: datetime | None = None) -> list[Metric]:
    """Requests per state (every state, zeros included) and the oldest wait per waiting state."""
    now = now or datetime.now(UTC)
    successor = aliased(ExportRequest)
    current = ~select(successor.id).where(successor.previous_id == ExportRequest.id).exists()
    rows = session.execute(
        select(ExportRequest.state, func.count(), func.min(ExportRequest.updated_at))
        .where(current)
        .group_by(ExportRequest.state)
    ).all()
    by_state = {state: (count, oldest) for state, count, oldest in rows}
    requests = GaugeMetricFamily(
        "enclave_export_requests", "Export requests (current versions) in each state.", labels=["state"]
    )
    for state in ExportState:
        requests.add_metric([state.value], by_state.get(state.value, (0, None))[0])
    age = GaugeMetricFamily(
        "enclave_export_oldest_request_age_seconds",
        "Seconds the oldest request has been in each waiting state (0 when none waits).",
        labels=["state"],
    )
    for state in WAITING:
        oldest = by_state.get(state.value, (0, None))[1]
        waited = (now - datetime.fromisoformat(oldest)).total_seconds() if oldest else 0.0
        age.add_metric([state.value], max(waited, 0.0))
    return [requests, age]
