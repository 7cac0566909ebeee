"""A project's life as one enum and one transition table (ARCHITECTURE §6, issue 15), as exports,
applications and runs have theirs. ``lifecycle`` makes the audited moves; preparation (``projects``)
makes a project active through the same table.
"""

from __future__ import annotations

from enum import StrEnum

from enclave.db.models import Project
from enclave.errors import Forbidden


class ProjectState(StrEnum):
    """Where a project is in its lifecycle. The values are stored: never rename one."""

    APPROVED = "approved"  # spec stored, data not prepared
    ACTIVE = "active"
    SUSPENDED = "suspended"  # emergency stop (R-LIFE-10)
    EXPIRED = "expired"  # period over: access revoked, exports frozen (R-LIFE-1, R-LIFE-3)
    DESTROYED = "destroyed"  # data, volumes and keys deleted (R-LIFE-2, R-LIFE-4)


S = ProjectState
VALID_TRANSITIONS: dict[ProjectState, set[ProjectState]] = {
    S.APPROVED: {S.ACTIVE, S.SUSPENDED, S.EXPIRED, S.DESTROYED},
    S.ACTIVE: {S.SUSPENDED, S.EXPIRED, S.DESTROYED},
    S.SUSPENDED: {S.ACTIVE, S.EXPIRED, S.DESTROYED},
    S.EXPIRED: {S.DESTROYED},
    S.DESTROYED: set(),
}
# Data may be prepared (again) only here; preparing an approved project makes it active.
PREPARABLE = frozenset({S.APPROVED, S.ACTIVE})


def check_transition(project: Project, to: ProjectState) -> None:
    """``project_state_invalid`` unless ``to`` is a move from the project's state."""
    if to not in VALID_TRANSITIONS[ProjectState(project.state)]:
        raise Forbidden(
            "project_state_invalid",
            f"Project {project.id} is {project.state}: it cannot become {to}",
            f"项目 {project.id} 状态为 {project.state}：不能变为 {to}",
            details={"from": project.state, "to": to.value},
        )


def check_preparable(project: Project) -> None:
    """``project_state_invalid`` unless the project's data may be prepared now."""
    if ProjectState(project.state) not in PREPARABLE:
        raise Forbidden(
            "project_state_invalid",
            f"Project {project.id} is {project.state}; only approved or active projects can be prepared",
            f"项目 {project.id} 状态为 {project.state}；只有已批准或活动的项目可以准备数据",
        )
