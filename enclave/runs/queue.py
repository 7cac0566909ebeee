"""Claiming queued runs under the caps (issue 12): at most one running run per analyst and project,
at most ``host_cap`` running runs on the host, oldest first.

A claim is one transaction that holds the queue's lock (PostgreSQL: a transaction-level advisory
lock; SQLite: ``BEGIN IMMEDIATE``, the database's only write lock, taken before the first read), so
two workers counting the running runs side by side can never both see room for the last slot. The
move itself is a compare-and-set (``UPDATE runs ... WHERE state = 'queued'``): a run the analyst
cancelled a moment before, or that another worker took, is never started. The winner moves the run
to ``running`` (``states.move``, audited) in the same transaction, before any container exists, so
the slot is taken from the moment the claim commits.
"""

from __future__ import annotations

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from enclave.db.models import Run
from enclave.runs.states import RunActor, RunState, move

LOCK_KEY = "runs:queue"
WORKER_ACTOR = "worker"


def lock(session: Session) -> None:
    """Hold the queue until the session's transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": LOCK_KEY})
    elif not session.connection().connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        session.execute(text("BEGIN IMMEDIATE"))
    # else: SQLite already in a write transaction holds the database's only write lock


def running_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Run).where(Run.state == "running")) or 0)


def busy_pairs(session: Session) -> set[tuple[str, str]]:
    """(project, user) of every running run: each may have only one."""
    rows = session.execute(select(Run.project_id, Run.user).where(Run.state == RunState.RUNNING.value))
    return {(project, user) for project, user in rows}


def next_candidates(session: Session, limit: int = 50, run_id: str | None = None) -> list[Run]:
    """Queued runs (or only ``run_id``), oldest first, whose analyst has no run running in that project."""
    busy = busy_pairs(session)
    query = select(Run).where(Run.state == RunState.QUEUED.value, Run.cancel_requested.is_(False))
    if run_id is not None:
        query = query.where(Run.id == run_id)
    queued = session.scalars(query.order_by(Run.created_at, Run.id).limit(limit))
    return [run for run in queued if (run.project_id, run.user) not in busy]


def _compare_and_set(session: Session, run: Run) -> bool:
    """Mark ``run`` running if it is still queued and not asked to cancel; whether it was."""
    done = session.execute(
        update(Run)
        .where(Run.id == run.id, Run.state == RunState.QUEUED.value, Run.cancel_requested.is_(False))
        .values(state=RunState.RUNNING.value)
        .execution_options(synchronize_session=False)
    )
    return done.rowcount == 1  # type: ignore[attr-defined]


def claim(
    session: Session, *, host_cap: int, by: str = WORKER_ACTOR, run_id: str | None = None
) -> Run | None:
    """Move the next startable queued run (or only ``run_id``, for ``submit --wait``) to ``running``
    and return it, or ``None`` when the host is full or nothing may start. The caller commits (that
    is when the slot is taken)."""
    if host_cap < 1:
        return None
    lock(session)
    if running_count(session) >= host_cap:
        return None
    for run in next_candidates(session, run_id=run_id):
        if not _compare_and_set(session, run):  # cancelled since it was read
            continue
        # The row says running now; the object still says queued, so the move checks
        # queued -> running, stamps the start and writes the audit record.
        move(session, run, RunState.RUNNING, RunActor.WORKER, by=by)
        return run
    return None
