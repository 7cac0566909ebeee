"""Reading and locking export requests, and what they need to know about their project."""

from __future__ import annotations

import json

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from enclave.db.models import ExportRequest, Project, ProjectMember
from enclave.errors import NotFound
from enclave.projects import current_spec_row
from enclave.roles import ProjectRole
from enclave.specs import MIN_K


def _not_found(request_id: str) -> NotFound:
    return NotFound("export_not_found", f"No export request {request_id!r}", f"没有导出申请 {request_id!r}")


def get_request(session: Session, request_id: str) -> ExportRequest:
    request = session.get(ExportRequest, request_id)
    if request is None:
        raise _not_found(request_id)
    return request


def lock_request(session: Session, request_id: str) -> ExportRequest:
    """Take the request's row lock for the rest of the transaction, then read it fresh.

    The write comes first: on SQLite it takes the database's write lock before anything is read,
    on PostgreSQL the row lock (with ``FOR UPDATE`` as well). A second voter or releaser waits
    here and then sees the state the first one committed, so only one of them can decide.
    """
    result = session.execute(
        update(ExportRequest)
        .where(ExportRequest.id == request_id)
        .values(lock_seq=ExportRequest.lock_seq + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise _not_found(request_id)
    request = session.get(ExportRequest, request_id, with_for_update=True, populate_existing=True)
    assert request is not None
    return request


def lock_project(session: Session, project_id: str) -> None:
    """Serialise submissions of one project (the cross-border cap is a running total)."""
    session.execute(
        update(Project)
        .where(Project.id == project_id)
        .values(updated_at=Project.updated_at)
        .execution_options(synchronize_session=False)
    )
    session.execute(select(Project.id).where(Project.id == project_id).with_for_update())


def seated_committee(session: Session, project_id: str) -> list[str]:
    """The project's voting committee members, sorted."""
    return sorted(
        session.scalars(
            select(ProjectMember.username).where(
                ProjectMember.project_id == project_id, ProjectMember.role == ProjectRole.COMMITTEE.value
            )
        )
    )


def project_spec_data(session: Session, project_id: str) -> dict[str, object]:
    return json.loads(current_spec_row(session, project_id).spec_json)


def project_k(session: Session, project_id: str) -> int:
    """The project's minimum cell count, never below 5 (R-QRY-7, §11 C3)."""
    value = project_spec_data(session, project_id).get("min_cell_count", MIN_K)
    return max(int(value) if isinstance(value, int) else MIN_K, MIN_K)
