"""A project's life after provisioning: suspend, resume, expire, destroy, and the sweep that does
the last two on its own (ARCHITECTURE §6; R-LIFE-1..4, R-LIFE-9, R-LIFE-10).

Each step checks the transition against one table, changes the state and writes its audit event
in the caller's transaction. Revocation side effects outside the database (stopping servers,
revoking tokens) are plugged in as hooks by the hub; destruction of files is done by
``enclave.workspace.destroy``, of the project's differencing ledger by
``enclave.differencing_ledger``, and the certificate listing both is recorded in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db.models import Project
from enclave.errors import BadInput, Forbidden
from enclave.projects import ProjectState, get

# R-LIFE-4: destruction no later than 30 days after the agreed term ends.
MAX_DESTRUCTION_GRACE_DAYS = 30

S = ProjectState
VALID_TRANSITIONS: dict[str, set[str]] = {
    S.APPROVED: {S.ACTIVE, S.SUSPENDED, S.EXPIRED, S.DESTROYED},
    S.ACTIVE: {S.SUSPENDED, S.EXPIRED, S.DESTROYED},
    S.SUSPENDED: {S.ACTIVE, S.EXPIRED, S.DESTROYED},
    S.EXPIRED: {S.DESTROYED},
    S.DESTROYED: set(),
}
TRANSITION_AUDIT_ACTION = {
    S.SUSPENDED: AuditAction.PROJECT_SUSPEND,
    S.ACTIVE: AuditAction.PROJECT_RESUME,
    S.EXPIRED: AuditAction.PROJECT_EXPIRE,
    S.DESTROYED: AuditAction.PROJECT_DESTROY,
}

RevocationHook = Callable[[str], None]
"""Called with the project id when access must end now (stop servers, revoke tokens)."""


def check_transition(project: Project, to: str) -> None:
    if to not in VALID_TRANSITIONS[project.state]:
        raise Forbidden(
            "project_state_invalid",
            f"Project {project.id} is {project.state}: it cannot become {to}",
            f"项目 {project.id} 状态为 {project.state}：不能变为 {to}",
            details={"from": project.state, "to": to},
        )


def _set_state(
    session: Session, project: Project, to: str, *, actor: str, details: dict[str, Any] | None = None
) -> None:
    check_transition(project, to)
    before = project.state
    project.state = to
    project.updated_at = audit.now_iso()
    audit.record(
        session,
        TRANSITION_AUDIT_ACTION[to],
        actor=actor,
        obj=f"project:{project.id}",
        project=project.id,
        details={"from": before, "to": to, **(details or {})},
    )


def _revoke(project_id: str, hooks: Sequence[RevocationHook]) -> list[str]:
    done = []
    for hook in hooks:
        hook(project_id)
        done.append(getattr(hook, "__name__", repr(hook)))
    return done


def suspend(
    session: Session, project_id: str, *, actor: str, reason: str, hooks: Sequence[RevocationHook] = ()
) -> Project:
    """Emergency stop (R-LIFE-10): sessions end, exports freeze, access is revoked at once."""
    if not reason.strip():
        raise BadInput("reason_required", "A suspension needs a reason", "暂停项目需要说明理由")
    project = get(session, project_id)
    _set_state(
        session,
        project,
        S.SUSPENDED,
        actor=actor,
        details={"reason": reason, "revoked": _revoke(project_id, hooks)},
    )
    return project


def resume(
    session: Session, project_id: str, *, actor: str, reason: str, today: date | None = None
) -> Project:
    """Lift a suspension, inside the approved period only (R-LIFE-9)."""
    project = get(session, project_id)
    if project.state == S.SUSPENDED and date.fromisoformat(project.period_end) < (today or date.today()):
        raise Forbidden(
            "project_period_over",
            f"Project {project_id}'s period ended on {project.period_end}; it cannot be resumed",
            f"项目 {project_id} 的使用期限已于 {project.period_end} 结束，不能恢复",
        )
    _set_state(session, project, S.ACTIVE, actor=actor, details={"reason": reason})
    return project


def expire(
    session: Session,
    project_id: str,
    *,
    actor: str,
    reason: str = "period ended",
    hooks: Sequence[RevocationHook] = (),
) -> Project:
    """End of use (R-LIFE-1, R-LIFE-3): access revoked, exports frozen; data kept until destruction."""
    project = get(session, project_id)
    _set_state(
        session,
        project,
        S.EXPIRED,
        actor=actor,
        details={"reason": reason, "revoked": _revoke(project_id, hooks)},
    )
    return project


def destroy(
    session: Session,
    paths: Paths,
    project_id: str,
    *,
    actor: str,
    hooks: Sequence[RevocationHook] = (),
    volume_destroyers: Sequence[Callable[[str], list[Any]]] = (),
) -> dict[str, Any]:
    """Delete prepared data, twin, volumes, keys and the query guard's differencing ledger; record the
    signed certificate (R-LIFE-2, R-LIFE-4). The ledger rows go in this transaction."""
    from enclave import differencing_ledger
    from enclave.workspace.destroy import destroy_workspace

    project = get(session, project_id)
    check_transition(project, S.DESTROYED)
    revoked = _revoke(project_id, hooks) if project.state != S.EXPIRED else []
    certificate = destroy_workspace(
        paths,
        project_id,
        actor=actor,
        volume_destroyers=volume_destroyers,
        database_destroyers=[lambda pid: differencing_ledger.destroy(session, pid)],
        missing_ok=True,
    )
    summary = certificate.to_dict()
    _set_state(
        session, project, S.DESTROYED, actor=actor, details={"revoked": revoked, "certificate": summary}
    )
    return summary


@dataclass
class SweepResult:
    """What one scheduler pass did."""

    expired: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {"expired": self.expired, "destroyed": self.destroyed}


def plan_sweep(
    session: Session, *, today: date | None = None, grace_days: int = MAX_DESTRUCTION_GRACE_DAYS
) -> SweepResult:
    """Which projects are past their end date (to expire) and past the grace period (to destroy)."""
    if not 0 <= grace_days <= MAX_DESTRUCTION_GRACE_DAYS:
        raise BadInput(
            "grace_days_invalid",
            f"grace_days must be between 0 and {MAX_DESTRUCTION_GRACE_DAYS} (R-LIFE-4)",
            f"grace_days 必须在 0 到 {MAX_DESTRUCTION_GRACE_DAYS} 之间（R-LIFE-4）",
        )
    today = today or date.today()
    plan = SweepResult()
    live = [S.APPROVED, S.ACTIVE, S.SUSPENDED, S.EXPIRED]
    for project in session.scalars(select(Project).where(Project.state.in_(live)).order_by(Project.id)):
        end = date.fromisoformat(project.period_end)
        if project.state != S.EXPIRED and end < today:
            plan.expired.append(project.id)
        if end + timedelta(days=grace_days) < today:
            plan.destroyed.append(project.id)
    return plan


def sweep(
    open_session: Callable[[], AbstractContextManager[Session]],
    paths: Paths,
    *,
    today: date | None = None,
    grace_days: int = MAX_DESTRUCTION_GRACE_DAYS,
    actor: str = "scheduler",
    hooks: Sequence[RevocationHook] = (),
    volume_destroyers: Sequence[Callable[[str], list[Any]]] = (),
) -> SweepResult:
    """One scheduler pass: each expiry and destruction in its own transaction, so one failure
    does not undo the others."""
    with open_session() as session:
        plan = plan_sweep(session, today=today, grace_days=grace_days)
    for project_id in plan.expired:
        with open_session() as session:
            expire(session, project_id, actor=actor, reason="period ended", hooks=hooks)
    for project_id in plan.destroyed:
        with open_session() as session:
            destroy(session, paths, project_id, actor=actor, volume_destroyers=volume_destroyers)
    return plan
