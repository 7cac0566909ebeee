"""A project's life after provisioning: suspend, resume, expire, destroy, and the sweep that does
the last two on its own (ARCHITECTURE §6; R-LIFE-1..4, R-LIFE-9, R-LIFE-10).

Each step checks the transition against one table, changes the state and writes its audit event
in the caller's transaction. Revocation side effects outside the database (stopping servers,
revoking tokens) are plugged in as hooks by the hub; destruction of files is done by
``enclave.prepare.destroy``, of the project's differencing ledger by
``enclave.differencing_ledger``, and the certificate listing both is recorded in the audit log.

Dates (R-LIFE-9, T6): a project's period is a range of whole calendar days, both ends included,
in the enclave's time zone (``$ENCLAVE_TIMEZONE``, default Asia/Shanghai: the standards are
Chinese). Use ends at 24:00 local time on the end date. ``check_usable`` applies that rule on every
access path, so an ended project is refused before any sweep has expired it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db.models import AuditEvent, Project
from enclave.errors import BadInput, Forbidden
from enclave.project_states import ProjectState, check_transition
from enclave.projects import get
from enclave.specs import ProjectSpec

log = logging.getLogger(__name__)

# R-LIFE-4: destruction no later than 30 days after the agreed term ends: on day end + 30 at the latest.
MAX_DESTRUCTION_GRACE_DAYS = 30
# R-LIFE-8: retained data (released exports, audit log, destruction certificate) is reviewed every 5 years.
RETENTION_REVIEW_YEARS = 5
TIMEZONE_ENV = "ENCLAVE_TIMEZONE"
DEFAULT_TIMEZONE = "Asia/Shanghai"


def enclave_timezone() -> ZoneInfo:
    """The zone whose calendar days the periods are written in (``$ENCLAVE_TIMEZONE``)."""
    name = os.environ.get(TIMEZONE_ENV) or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(
            "timezone_invalid",
            f"${TIMEZONE_ENV}: unknown time zone {name!r}",
            f"${TIMEZONE_ENV}：未知时区 {name!r}",
        ) from None


def enclave_today(now: datetime | None = None) -> date:
    """Today's date in the enclave's time zone (``now``: an aware moment, for tests)."""
    return (now or datetime.now(ZoneInfo("UTC"))).astimezone(enclave_timezone()).date()


def period_of(project: Project) -> tuple[date, date]:
    return date.fromisoformat(project.period_start), date.fromisoformat(project.period_end)


def check_usable(project: Project, today: date | None = None) -> None:
    """Refuse a project outside its period (R-LIFE-3, R-LIFE-9, T6), whatever its state says.

    Every access path calls this (query, workspace spawn and poll, export submit, vote, release,
    download, preparation), so the date rule holds even before the sweep has expired the project.
    """
    day = today or enclave_today()
    check_not_ended(project, day)
    start = period_of(project)[0]
    if day < start:
        raise Forbidden(
            "project_not_started",
            f"Project {project.id}'s period starts on {start.isoformat()}: it cannot be used before then",
            f"项目 {project.id} 的使用期限自 {start.isoformat()} 开始：此前不能使用",
            details={"project": project.id, "period_start": start.isoformat(), "today": day.isoformat()},
        )


def check_not_ended(project: Project | ProjectSpec, today: date | None = None) -> None:
    """Refuse once the period is over (``project_ended``); preparation before the start is allowed."""
    if isinstance(project, Project):
        pid, end = project.id, period_of(project)[1]
    else:
        pid, end = project.id, project.period.end
    day = today or enclave_today()
    if day > end:
        raise Forbidden(
            "project_ended",
            f"Project {pid}'s period ended on {end.isoformat()}: it can no longer be used "
            "(a new approved application is needed to continue)",
            f"项目 {pid} 的使用期限已于 {end.isoformat()} 结束：不能再使用（如需继续，须重新申请并获批准）",
            details={"project": pid, "period_end": end.isoformat(), "today": day.isoformat()},
        )


def usable(project: Project, today: date | None = None) -> bool:
    """``check_usable`` as a bool."""
    try:
        check_usable(project, today)
    except Forbidden:
        return False
    return True


def destruction_due(project: Project, grace_days: int = MAX_DESTRUCTION_GRACE_DAYS) -> date:
    """The day the sweep destroys the project: ``grace_days`` after the end date (R-LIFE-4)."""
    return period_of(project)[1] + timedelta(days=grace_days)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def retention_reviews_due(project: Project, today: date) -> list[date]:
    """The 5-yearly review dates of the data retained after the end (R-LIFE-8) reached by ``today``."""
    end = period_of(project)[1]
    due = []
    cycle = 1
    while (day := _add_years(end, RETENTION_REVIEW_YEARS * cycle)) <= today:
        due.append(day)
        cycle += 1
    return due


def retention_reminders(session: Session, project_id: str) -> dict[str, str]:
    """The review reminders recorded for the project: due date -> when the sweep recorded it."""
    events = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.project == project_id, AuditEvent.action == str(AuditAction.PROJECT_RETENTION_REVIEW)
        )
        .order_by(AuditEvent.seq)
    )
    return {json.loads(e.details_json).get("due", ""): e.ts for e in events}


def retention_review(session: Session, project: Project, today: date | None = None) -> dict[str, Any]:
    """For ``project show``/``list``: the next review date, and the reminders recorded so far."""
    day = today or enclave_today()
    reached = retention_reviews_due(project, day)
    upcoming = _add_years(period_of(project)[1], RETENTION_REVIEW_YEARS * (len(reached) + 1))
    reminders = retention_reminders(session, project.id)
    return {
        "next_due": upcoming.isoformat(),
        "reminders": [{"due": due, "recorded_at": at} for due, at in sorted(reminders.items())],
        "pending": [d.isoformat() for d in reached if d.isoformat() not in reminders],
    }


S = ProjectState
TRANSITION_AUDIT_ACTION = {
    S.SUSPENDED: AuditAction.PROJECT_SUSPEND,
    S.ACTIVE: AuditAction.PROJECT_RESUME,
    S.EXPIRED: AuditAction.PROJECT_EXPIRE,
    S.DESTROYED: AuditAction.PROJECT_DESTROY,
}

RevocationHook = Callable[[str], None]
"""Called with the project id when access must end now (stop servers, revoke tokens)."""


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
    if project.state == S.SUSPENDED and date.fromisoformat(project.period_end) < (today or enclave_today()):
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
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Delete prepared data, twin, volumes, keys and the query guard's differencing ledger; record the
    signed certificate (R-LIFE-2, R-LIFE-4). The ledger rows go in this transaction; ``progress`` is
    told each step (``destroy_workspace``)."""
    from enclave import differencing_ledger
    from enclave.prepare.destroy import destroy_workspace
    from enclave.runs import retention

    project = get(session, project_id)
    check_transition(project, S.DESTROYED)
    revoked = _revoke(project_id, hooks) if project.state != S.EXPIRED else []
    certificate = destroy_workspace(
        paths,
        project_id,
        actor=actor,
        volume_destroyers=volume_destroyers,
        database_destroyers=[
            lambda pid: differencing_ledger.destroy(session, pid),
            lambda pid: retention.destroy(session, paths, pid),
        ],
        missing_ok=True,
        progress=progress,
    )
    summary = certificate.to_dict()
    _set_state(
        session, project, S.DESTROYED, actor=actor, details={"revoked": revoked, "certificate": summary}
    )
    return summary


@dataclass
class SweepResult:
    """What one scheduler pass did (or, from ``plan_sweep``, would do)."""

    expired: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    reviews: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "expired": self.expired,
            "destroyed": self.destroyed,
            "reviews": self.reviews,
            "failed": self.failed,
        }


def plan_sweep(
    session: Session, *, today: date | None = None, grace_days: int = MAX_DESTRUCTION_GRACE_DAYS
) -> SweepResult:
    """Which projects are past their end date (to expire), have reached end + ``grace_days`` (to
    destroy: day 30 at the latest, R-LIFE-4), and whose retained data is due a review (R-LIFE-8)."""
    if not 1 <= grace_days <= MAX_DESTRUCTION_GRACE_DAYS:
        raise BadInput(
            "grace_days_invalid",
            f"grace_days must be between 1 and {MAX_DESTRUCTION_GRACE_DAYS} (R-LIFE-4)",
            f"grace_days 必须在 1 到 {MAX_DESTRUCTION_GRACE_DAYS} 之间（R-LIFE-4）",
        )
    today = today or enclave_today()
    plan = SweepResult()
    for project in session.scalars(select(Project).order_by(Project.id)):
        end = period_of(project)[1]
        if project.state in (S.APPROVED, S.ACTIVE, S.SUSPENDED) and end < today:
            plan.expired.append(project.id)
        if project.state != S.DESTROYED and destruction_due(project, grace_days) <= today:
            plan.destroyed.append(project.id)
        if end < today:
            reminded = retention_reminders(session, project.id)
            for due in retention_reviews_due(project, today):
                if due.isoformat() not in reminded:
                    plan.reviews.append({"project": project.id, "due": due.isoformat()})
    return plan


def remind_retention_review(session: Session, project_id: str, due: date, *, actor: str) -> bool:
    """Record that the project's retained data is due its review (R-LIFE-8); once per due date."""
    project = get(session, project_id)
    if due.isoformat() in retention_reminders(session, project_id):
        return False
    audit.record(
        session,
        AuditAction.PROJECT_RETENTION_REVIEW,
        actor=actor,
        obj=f"project:{project_id}",
        project=project_id,
        details={
            "due": due.isoformat(),
            "period_end": project.period_end,
            "state": project.state,
            "retained": ["released exports", "audit log", "destruction certificate"],
            "action": "review security and use; anonymise or delete what is no longer needed",
        },
    )
    return True


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
    """One scheduler pass: each expiry, destruction and reminder in its own transaction, so one
    failure neither undoes nor stops the others (it is in ``failed`` and retried on the next pass)."""
    today = today or enclave_today()
    with open_session() as session:
        plan = plan_sweep(session, today=today, grace_days=grace_days)
    done = SweepResult()
    steps: list[tuple[str, str, Callable[[Session], object], Any]] = []
    for project_id in plan.expired:

        def run_expire(s: Session, p: str = project_id) -> object:
            return expire(s, p, actor=actor, reason="period ended", hooks=hooks)

        steps.append(("expire", project_id, run_expire, project_id))
    for project_id in plan.destroyed:

        def run_destroy(s: Session, p: str = project_id) -> object:
            return destroy(s, paths, p, actor=actor, hooks=hooks, volume_destroyers=volume_destroyers)

        steps.append(("destroy", project_id, run_destroy, project_id))
    for review in plan.reviews:

        def run_review(s: Session, r: dict[str, str] = review) -> object:
            return remind_retention_review(s, r["project"], date.fromisoformat(r["due"]), actor=actor)

        steps.append(("review", review["project"], run_review, review))
    done_lists: dict[str, list[Any]] = {
        "expire": done.expired,
        "destroy": done.destroyed,
        "review": done.reviews,
    }
    for step, project_id, run, item in steps:
        if step == "destroy" and any(f["project"] == project_id for f in done.failed):
            continue  # its expiry failed: never destroy a project whose access was not revoked
        try:
            with open_session() as session:
                run(session)
        except Exception as error:  # one project's failure must not stop the pass
            log.exception("sweep: %s of project %s failed", step, project_id)
            done.failed.append(
                {"project": project_id, "step": step, "error": f"{type(error).__name__}: {error}"}
            )
            continue
        done_lists[step].append(item)
    return done
