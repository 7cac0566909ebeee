"""The requests a reviewer's pages list, and who lands on the review queue.

A viewer sees the requests of the projects they belong to, stewards see all (the rule of
``permissions.check_user_can_view`` and ``views.list_requests``). The lists are filtered by state,
project, age (days since the request was submitted, its ``created_at``) and a search text that
matches the request id, the project, the requester, a file name or the justification, ignoring case.
Decided requests stay listed: the history is every decided request the viewer may see, newest
decision first, capped at ``HISTORY_LIMIT`` rows with the total count.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from enclave.db.models import ExportFile, ExportRequest, Project, ProjectMember
from enclave.errors import BadInput
from enclave.roles import ProjectRole
from export_review.views import list_row, visible_to
from export_review.workflow import ExportState

# Decided by the committee or closed: the history.
DECIDED = (
    ExportState.APPROVED,
    ExportState.CHANGES_REQUESTED,
    ExportState.REJECTED,
    ExportState.RELEASED,
    ExportState.WITHDRAWN,
)
AGES = (1, 3, 7, 30)  # "submitted more than N days ago"
HISTORY_LIMIT = 50
MAX_QUERY = 200


@dataclass(frozen=True)
class Filters:
    """What the lists are narrowed to; ``None`` or empty means no narrowing."""

    state: str | None = None
    project: str | None = None
    older_than_days: int | None = None
    q: str = ""


def _invalid(what: str, value: str, allowed: str, allowed_zh: str) -> BadInput:
    shown = value[:40]
    return BadInput(
        "export_filter_invalid",
        f"Filter {what}={shown!r} is not valid ({allowed}): it is ignored",
        f"筛选条件 {what}={shown!r} 无效（{allowed_zh}）：已忽略",
        details={"filter": what},
    )


def parse_filters(
    *, state: str, project: str, age: str, q: str, projects: Collection[str]
) -> tuple[Filters, list[BadInput]]:
    """The filters from a form's text; each invalid one is dropped and returned as an error to show.

    ``projects`` are the projects the viewer may see: any other name is refused with the same words
    whether or not it exists, so the filter tells nothing about other projects."""
    problems: list[BadInput] = []
    states = [s.value for s in ExportState]
    if state and state not in states:
        problems.append(_invalid("state", state, "one of " + ", ".join(states), "可选 " + "、".join(states)))
        state = ""
    if project and project not in projects:
        problems.append(_invalid("project", project, "not one of your projects", "不是您可查看的项目"))
        project = ""
    days = None
    if age:
        if age.isdigit() and int(age) in AGES:
            days = int(age)
        else:
            choices = ", ".join(map(str, AGES))
            problems.append(_invalid("age", age, f"days, one of {choices}", f"天数，可选 {choices}"))
    text = q.strip()
    if len(text) > MAX_QUERY:
        problems.append(_invalid("q", text, f"at most {MAX_QUERY} characters", f"最多 {MAX_QUERY} 个字符"))
        text = ""
    return Filters(state or None, project or None, days, text), problems


def visible_projects(session: Session, viewer: str, stewards: Collection[str]) -> list[str]:
    """The projects whose requests ``viewer`` may see: their own, or all for a steward."""
    if viewer in stewards:
        return list(session.scalars(select(Project.id).order_by(Project.id)))
    query = select(ProjectMember.project_id).where(ProjectMember.username == viewer)
    return sorted(set(session.scalars(query)))


def reviews_anything(session: Session, user: str, stewards: Collection[str]) -> bool:
    """Whether ``user`` is a reviewer (``permissions.user_is_reviewer``) of some request: a steward,
    or a committee member of a project that has export requests. They land on the review queue."""
    if user in stewards:
        return True
    committee = select(ProjectMember.project_id).where(
        ProjectMember.username == user, ProjectMember.role == ProjectRole.COMMITTEE
    )
    found = select(ExportRequest.id).where(ExportRequest.project_id.in_(committee)).limit(1)
    return session.scalar(found) is not None


def _filtered(query: Select[Any], filters: Filters, now: datetime) -> Select[Any]:
    if filters.state:
        query = query.where(ExportRequest.state == filters.state)
    if filters.project:
        query = query.where(ExportRequest.project_id == filters.project)
    if filters.older_than_days is not None:
        cutoff = (now - timedelta(days=filters.older_than_days)).isoformat(timespec="microseconds")
        query = query.where(ExportRequest.created_at < cutoff)
    if filters.q:
        text = filters.q.lower()
        named = select(ExportFile.request_id).where(
            func.lower(ExportFile.name).contains(text, autoescape=True)
        )
        query = query.where(
            or_(
                *(
                    func.lower(column).contains(text, autoescape=True)
                    for column in (
                        ExportRequest.id,
                        ExportRequest.project_id,
                        ExportRequest.requester,
                        ExportRequest.justification,
                    )
                ),
                ExportRequest.id.in_(named),
            )
        )
    return query


def age_days(created_at: str, now: datetime | None = None) -> int:
    """Whole days since ``created_at`` (ISO 8601), 0 for an unreadable time."""
    now = now or datetime.now(UTC)
    try:
        created = datetime.fromisoformat(created_at)
    except ValueError:
        return 0
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return max(0, (now - created).days)


def _row(request: ExportRequest, now: datetime) -> dict[str, Any]:
    return {
        **list_row(request),
        "file_names": [f.name for f in request.files],
        "age_days": age_days(request.created_at, now),
    }


def search(
    session: Session,
    *,
    viewer: str,
    stewards: Collection[str],
    filters: Filters,
    states: Collection[str],
    oldest_first: bool = False,
    limit: int | None = None,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """The requests in ``states`` that ``viewer`` may see and ``filters`` match, with their count
    before ``limit``. Newest change first, or oldest submission first (a queue: who waited longest)."""
    now = now or datetime.now(UTC)
    query = select(ExportRequest).where(ExportRequest.state.in_([str(s) for s in states]))
    query = _filtered(visible_to(query, viewer, stewards), filters, now)
    total = None if limit is None else session.scalar(select(func.count()).select_from(query.subquery()))
    if oldest_first:
        query = query.order_by(ExportRequest.created_at, ExportRequest.id)
    else:
        query = query.order_by(ExportRequest.updated_at.desc(), ExportRequest.id)
    if limit is not None:
        query = query.limit(limit)
    query = query.options(selectinload(ExportRequest.files))  # one query for every row's files
    rows = [_row(r, now) for r in session.scalars(query)]
    return rows, len(rows) if total is None else total
