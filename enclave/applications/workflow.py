"""An application's life in one place: one state enum and its tables (R-APP-6, STYLE §5.7).

``VALID_TRANSITIONS`` says which moves exist and which actor may make each one; ``STATE_AUDIT_ACTION``
names the audit record each move writes. ``set_state`` checks the move before anything changes,
and writes the new state and its audit record in the caller's transaction, so both commit together
or not at all. The committee's decision (``voting``) comes through ``set_state`` too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from enclave import audit, workflow
from enclave.audit import AuditAction
from enclave.db.models import Application
from enclave.errors import Forbidden


class ApplicationState(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    OFFICE_REVIEW = "office_review"
    RETURNED = "returned"
    COMMITTEE_REVIEW = "committee_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class ApplicationActor(StrEnum):
    """Who makes a move: the applicant, the Office (pre-review), the Committee (by its votes), the
    service itself, or nobody (a closed application)."""

    APPLICANT = "applicant"
    OFFICE = "office"
    COMMITTEE = "committee"
    SYSTEM = "system"
    NOBODY = "nobody"


S = ApplicationState
A = ApplicationActor
VALID_TRANSITIONS: dict[ApplicationState, dict[ApplicationState, ApplicationActor]] = {
    S.DRAFT: {S.SUBMITTED: A.APPLICANT, S.WITHDRAWN: A.APPLICANT},
    S.SUBMITTED: {S.OFFICE_REVIEW: A.SYSTEM, S.WITHDRAWN: A.APPLICANT},
    # R-APP-6: a failed pre-review returns the materials, a passed one forwards them to the Committee.
    S.OFFICE_REVIEW: {S.RETURNED: A.OFFICE, S.COMMITTEE_REVIEW: A.OFFICE, S.WITHDRAWN: A.APPLICANT},
    S.RETURNED: {S.SUBMITTED: A.APPLICANT, S.WITHDRAWN: A.APPLICANT},
    S.COMMITTEE_REVIEW: {S.APPROVED: A.COMMITTEE, S.REJECTED: A.COMMITTEE, S.WITHDRAWN: A.APPLICANT},
    S.APPROVED: {},
    S.REJECTED: {},
    S.WITHDRAWN: {},
}

# Whose turn it is: the web console's queues are built from this table.
STATE_OWNER: dict[ApplicationState, ApplicationActor] = {
    S.DRAFT: A.APPLICANT,
    S.SUBMITTED: A.SYSTEM,
    S.OFFICE_REVIEW: A.OFFICE,
    S.RETURNED: A.APPLICANT,
    S.COMMITTEE_REVIEW: A.COMMITTEE,
    S.APPROVED: A.NOBODY,
    S.REJECTED: A.NOBODY,
    S.WITHDRAWN: A.NOBODY,
}

STATE_AUDIT_ACTION: dict[ApplicationState, AuditAction] = {
    S.DRAFT: AuditAction.APPLICATION_FILE,
    S.SUBMITTED: AuditAction.APPLICATION_SUBMIT,
    S.OFFICE_REVIEW: AuditAction.APPLICATION_REVIEW,
    S.RETURNED: AuditAction.APPLICATION_RETURN,
    S.COMMITTEE_REVIEW: AuditAction.APPLICATION_FORWARD,
    S.APPROVED: AuditAction.APPLICATION_DECIDE,
    S.REJECTED: AuditAction.APPLICATION_DECIDE,
    S.WITHDRAWN: AuditAction.APPLICATION_WITHDRAW,
}

TERMINAL_STATES = frozenset(s for s, moves in VALID_TRANSITIONS.items() if not moves)
# The applicant may change the form and its attachments only here; afterwards it is locked.
EDITABLE_STATES = frozenset({S.DRAFT, S.RETURNED})
DECISIONS = frozenset({S.APPROVED, S.REJECTED})

_ACTOR_ZH = {
    A.APPLICANT: "申请人",
    A.OFFICE: "数据安全工作办公室",
    A.COMMITTEE: "数据安全委员会",
    A.SYSTEM: "系统",
    A.NOBODY: "无人",
}


def check_transition(app: Application, to: ApplicationState, actor: ApplicationActor) -> None:
    """Raise ``Forbidden`` unless ``to`` is a valid move from the application's state, for ``actor``."""
    workflow.check_transition(
        VALID_TRANSITIONS,
        ApplicationState(app.state),
        to,
        actor,
        kind="application",
        obj=("application", app.id),
        label=("application", "申请"),
        actor_zh=_ACTOR_ZH.__getitem__,
    )


def set_state(
    session: Session,
    app: Application,
    to: ApplicationState,
    *,
    user: str,
    actor: ApplicationActor,
    details: dict[str, Any] | None = None,
) -> None:
    """Check the move, then change the state and write its audit record in the same transaction."""
    check_transition(app, to, actor)
    if actor is A.APPLICANT and user != app.applicant:
        raise Forbidden(
            "application_not_applicant",
            f"Only the applicant ({app.applicant}) may do this to application {app.id}",
            f"只有申请人（{app.applicant}）可以对申请 {app.id} 执行此操作",
            details={"application": app.id, "user": user},
        )
    previous = app.state
    now = audit.now_iso()
    app.state = to.value
    app.updated_at = now
    if to is S.SUBMITTED:
        app.submitted_at = now
    if to in DECISIONS:
        app.decided_at = now
    session.flush()
    audit.record(
        session,
        STATE_AUDIT_ACTION[to],
        actor=user,
        obj=f"application:{app.id}",
        details={
            "from": previous,
            "to": to.value,
            "as": actor.value,
            "revision": app.revision,
            **(details or {}),
        },
    )
