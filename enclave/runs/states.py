"""A run's life in one place: one state enum, one transition table, one audited move (STYLE §5.7).

An analyst cancels a queued run directly; a running run is cancelled by asking (``cancel_requested``)
and the worker, which owns the container, makes the move once the container is stopped.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from enclave import audit, workflow
from enclave.audit import AuditAction
from enclave.db.models import Run


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class RunActor(StrEnum):
    """Who makes a move: the analyst whose run it is, or the worker executing it."""

    ANALYST = "analyst"
    WORKER = "worker"


S = RunState
A = RunActor
TRANSITIONS: dict[RunState, dict[RunState, RunActor]] = {
    # queued -> failed: the worker found the run could not start (project ended, data gone).
    S.QUEUED: {S.RUNNING: A.WORKER, S.CANCELLED: A.ANALYST, S.FAILED: A.WORKER},
    S.RUNNING: {S.SUCCEEDED: A.WORKER, S.FAILED: A.WORKER, S.TIMED_OUT: A.WORKER, S.CANCELLED: A.WORKER},
    S.SUCCEEDED: {},
    S.FAILED: {},
    S.TIMED_OUT: {},
    S.CANCELLED: {},
}
TERMINAL = frozenset(state for state, moves in TRANSITIONS.items() if not moves)

MOVE_AUDIT_ACTION: dict[RunState, AuditAction] = {
    S.RUNNING: AuditAction.RUN_START,
    S.SUCCEEDED: AuditAction.RUN_FINISH,
    S.FAILED: AuditAction.RUN_FINISH,
    S.TIMED_OUT: AuditAction.RUN_FINISH,
    S.CANCELLED: AuditAction.RUN_CANCEL,
}
_OUTCOME = {S.FAILED: "failure", S.TIMED_OUT: "failure", S.CANCELLED: "cancelled"}
_ACTOR_ZH = {A.ANALYST: "分析人员", A.WORKER: "批处理执行器"}


def is_terminal(state: str) -> bool:
    return RunState(state) in TERMINAL


def move(
    session: Session,
    run: Run,
    to: RunState,
    actor: RunActor,
    *,
    by: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Check the move, set the state (and the start or end time) and audit it in ``session``.

    ``by`` is who is recorded as the audit actor (the analyst's name, or ``worker``).
    """
    workflow.check_transition(
        TRANSITIONS,
        RunState(run.state),
        to,
        actor,
        kind="run",
        obj=("run", run.id),
        label=("run", "批处理作业"),
        actor_zh=lambda who: _ACTOR_ZH[who],
    )
    now = audit.now_iso()
    run.state = to.value
    if to is S.RUNNING:
        run.started_at = now
    elif to in TERMINAL:
        run.ended_at = now
    audit.record(
        session,
        MOVE_AUDIT_ACTION[to],
        actor=by,
        obj=f"run:{run.id}",
        project=run.project_id,
        outcome=_OUTCOME.get(to, "success"),
        details={"run": run.id, "user": run.user, "kind": run.kind, "state": to.value, **(details or {})},
    )
    session.flush()
