"""Per-user project locks: set when monitoring passes the lock threshold, lifted by a steward (R-QRY-5).

``check_user_not_locked`` is called by ``enclave.query_service.check_analyst_access``, so a lock
stops the CLI as well as the gateway. Locking and unlocking are audited in the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit, projects
from enclave.audit import AuditAction
from enclave.db.models import UserLock
from enclave.errors import Forbidden, NotFound


def active_lock(session: Session, project_id: str, username: str) -> UserLock | None:
    return session.scalar(
        select(UserLock)
        .where(
            UserLock.project_id == project_id,
            UserLock.username == username,
            UserLock.unlocked_at.is_(None),
        )
        .order_by(UserLock.id.desc())
        .limit(1)
    )


def user_is_locked(session: Session, project_id: str, username: str) -> bool:
    return active_lock(session, project_id, username) is not None


def check_user_not_locked(session: Session, project_id: str, username: str) -> None:
    """Raise ``Forbidden(user_access_locked)`` while the user's access to the project is locked."""
    lock = active_lock(session, project_id, username)
    if lock is not None:
        raise Forbidden(
            "user_access_locked",
            f"{username}'s access to project {project_id} was locked at {lock.locked_at} after "
            "monitoring alerts; a data steward must unlock it",
            f"因监控告警，{username} 对项目 {project_id} 的访问已于 {lock.locked_at} 被锁定；"
            "需由数据管理员解锁",
            details={"locked_at": lock.locked_at, "reason": lock.reason},
        )


def lock_user(
    session: Session,
    project_id: str,
    username: str,
    *,
    reason: str,
    actor: str,
    source: str | None = None,
    details: dict[str, Any] | None = None,
) -> UserLock:
    """Lock the user out of the project (idempotent: an active lock is returned as it is)."""
    existing = active_lock(session, project_id, username)
    if existing is not None:
        return existing
    lock = UserLock(project_id=project_id, username=username, locked_at=audit.now_iso(), reason=reason)
    session.add(lock)
    session.flush()
    audit.record(
        session,
        AuditAction.PROJECT_LOCK,
        actor=actor,
        obj=f"user:{username}",
        project=project_id,
        source=source,
        details={"user": username, "reason": reason, **(details or {})},
    )
    return lock


def unlock_user(session: Session, project_id: str, username: str, *, actor: str, reason: str) -> UserLock:
    """A steward lifts the lock; the row stays as history."""
    projects.get(session, project_id)
    lock = active_lock(session, project_id, username)
    if lock is None:
        raise NotFound(
            "lock_not_found",
            f"{username} is not locked out of project {project_id}",
            f"{username} 对项目 {project_id} 的访问未被锁定",
        )
    lock.unlocked_at = audit.now_iso()
    lock.unlocked_by = actor
    audit.record(
        session,
        AuditAction.PROJECT_UNLOCK,
        actor=actor,
        obj=f"user:{username}",
        project=project_id,
        details={"user": username, "reason": reason, "locked_at": lock.locked_at},
    )
    return lock


def list_locks(
    session: Session, project_id: str | None = None, *, include_lifted: bool = False
) -> list[UserLock]:
    query = select(UserLock).order_by(UserLock.id)
    if project_id:
        query = query.where(UserLock.project_id == project_id)
    if not include_lifted:
        query = query.where(UserLock.unlocked_at.is_(None))
    return list(session.scalars(query))


def lock_to_dict(lock: UserLock) -> dict[str, Any]:
    return {
        "project": lock.project_id,
        "user": lock.username,
        "locked_at": lock.locked_at,
        "reason": lock.reason,
        "unlocked_at": lock.unlocked_at,
        "unlocked_by": lock.unlocked_by,
    }
