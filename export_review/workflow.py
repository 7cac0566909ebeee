"""The export request's moves in one place: three tables over its states (STYLE §5.7), which are
``enclave.export_states``' so that the vault can name them.

``VALID_TRANSITIONS`` says which moves exist and which actor may make each one; ``STATE_OWNER``
says whose turn it is in each state; ``STATE_AUDIT_ACTION`` names the audit record each move
writes. ``set_state`` checks the move and the actor before anything changes, and writes the new
state and its audit record in the caller's transaction. The committee rule and the tally of each
file are ``enclave.committee``'s (R-APP-7, T2); ``decide`` turns the files' tallies into the
request's decision, or ``None`` while it is still open.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from enclave import audit, committee, workflow
from enclave.audit import AuditAction
from enclave.committee import Tally
from enclave.db.models import ExportRequest
from enclave.export_states import ExportState


class Actor(StrEnum):
    """Who acts: the requester, the committee (by its votes), a releaser, the service itself."""

    REQUESTER = "requester"
    REVIEWER = "reviewer"
    RELEASER = "releaser"
    SYSTEM = "system"
    NOBODY = "nobody"


class Vote(StrEnum):
    """The choices ``enclave.committee.tally`` counts."""

    APPROVE = committee.APPROVE
    REJECT = committee.REJECT
    CHANGES = committee.CHANGES


S = ExportState
VALID_TRANSITIONS: dict[ExportState, dict[ExportState, Actor]] = {
    S.DRAFT: {S.SUBMITTED: Actor.REQUESTER, S.WITHDRAWN: Actor.REQUESTER},
    S.SUBMITTED: {S.CHECKED: Actor.SYSTEM, S.WITHDRAWN: Actor.REQUESTER},
    S.CHECKED: {S.IN_REVIEW: Actor.SYSTEM, S.WITHDRAWN: Actor.REQUESTER},
    S.IN_REVIEW: {
        S.APPROVED: Actor.REVIEWER,
        S.REJECTED: Actor.REVIEWER,
        S.CHANGES_REQUESTED: Actor.REVIEWER,
        S.WITHDRAWN: Actor.REQUESTER,
    },
    S.APPROVED: {S.RELEASED: Actor.RELEASER},
    # A revision is a new request (its own draft); this one keeps its history and can only be closed.
    S.CHANGES_REQUESTED: {S.WITHDRAWN: Actor.REQUESTER},
    S.REJECTED: {},
    S.RELEASED: {},
    S.WITHDRAWN: {},
}

# Whose turn it is: the web UI's queues are built from this table.
STATE_OWNER: dict[ExportState, Actor] = {
    S.DRAFT: Actor.REQUESTER,
    S.SUBMITTED: Actor.SYSTEM,
    S.CHECKED: Actor.SYSTEM,
    S.IN_REVIEW: Actor.REVIEWER,
    S.APPROVED: Actor.RELEASER,
    S.CHANGES_REQUESTED: Actor.REQUESTER,
    S.REJECTED: Actor.NOBODY,
    S.RELEASED: Actor.NOBODY,
    S.WITHDRAWN: Actor.NOBODY,
}

STATE_AUDIT_ACTION: dict[ExportState, AuditAction] = {
    S.DRAFT: AuditAction.EXPORT_SUBMIT,
    S.SUBMITTED: AuditAction.EXPORT_SUBMIT,
    S.CHECKED: AuditAction.EXPORT_CHECK,
    S.IN_REVIEW: AuditAction.EXPORT_CHECK,
    S.APPROVED: AuditAction.EXPORT_DECIDE,
    S.REJECTED: AuditAction.EXPORT_DECIDE,
    S.CHANGES_REQUESTED: AuditAction.EXPORT_DECIDE,
    S.RELEASED: AuditAction.EXPORT_RELEASE,
    S.WITHDRAWN: AuditAction.EXPORT_WITHDRAW,
}

# Requests that still hold part of the cross-border cap (R-EXP-7).
COUNTING_STATES = frozenset({S.DRAFT, S.SUBMITTED, S.CHECKED, S.IN_REVIEW, S.APPROVED, S.RELEASED})


def check_transition(request: ExportRequest, to: ExportState, actor: Actor) -> None:
    """Raise ``Forbidden`` unless ``to`` is a valid move from the request's state, for ``actor``."""
    workflow.check_transition(
        VALID_TRANSITIONS,
        ExportState(request.state),
        to,
        actor,
        kind="export",
        obj=("request", request.id),
        label=("export request", "导出申请"),
    )


def set_state(
    session: Session,
    request: ExportRequest,
    to: ExportState,
    *,
    user: str,
    actor: Actor,
    details: dict[str, Any] | None = None,
) -> None:
    """Check the move, then change the state and write its audit record in the same transaction."""
    check_transition(request, to, actor)
    previous = request.state
    request.state = to.value
    request.updated_at = audit.now_iso()
    session.flush()
    audit.record(
        session,
        STATE_AUDIT_ACTION[to],
        actor=user,
        obj=f"export:{request.id}",
        project=request.project_id,
        details={"from": previous, "to": to.value, "as": actor.value, **(details or {})},
    )


def decide(tallies: Mapping[str, Tally]) -> ExportState | None:
    """The committee's decision once every file's outcome is settled, else ``None``.

    Every file approved: approved. Otherwise the settled files that cannot be approved decide
    between rejected and changes requested by their votes (a tie favours a revision).
    """
    if not tallies or any(not (t.approved or t.blocked) for t in tallies.values()):
        return None
    blocked = [t for t in tallies.values() if t.blocked]
    if not blocked:
        return ExportState.APPROVED
    rejections = sum(t.rejections for t in blocked)
    changes = sum(t.changes for t in blocked)
    return ExportState.REJECTED if rejections > changes else ExportState.CHANGES_REQUESTED


def all_voted(tallies: Mapping[str, Tally]) -> bool:
    return all(t.outstanding == 0 for t in tallies.values())
