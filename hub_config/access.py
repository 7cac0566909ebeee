"""Who may start (and keep) a project's workspace (ARCHITECTURE §1, §6)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy.orm import Session

from enclave.errors import EnclaveError, Forbidden
from hub_config.errors import WorkspaceRefused

OpenSession = Callable[[], AbstractContextManager[Session]]


def check_workspace_access(session: Session, project_id: str, user: str) -> str:
    """The project's access mode if ``user`` may work in it now; ``WorkspaceRefused`` otherwise.

    The same rule, codes and texts as ``enclave.query_service.check_analyst_access`` (an analyst of
    an active, unlocked project; R-QRY-2, R-QRY-16). It is written against ``enclave.projects``
    here so the hub does not import the query engine; a test keeps the two in step.
    """
    from enclave import projects
    from enclave.projects import ProjectState

    try:
        project = projects.get(session, project_id)
        if "analyst" not in projects.roles_of(session, project_id, user):
            raise Forbidden(
                "not_a_project_analyst",
                f"{user} is not an analyst of project {project_id}",
                f"{user} 不是项目 {project_id} 的分析人员",
            )
        if project.state != ProjectState.ACTIVE:
            raise Forbidden(
                "project_not_active",
                f"Project {project_id} is {project.state}: workspaces are not allowed",
                f"项目 {project_id} 状态为 {project.state}：不允许使用工作空间",
            )
        if project.locked:
            raise Forbidden(
                "project_access_locked",
                f"Access to project {project_id} is locked after monitoring alerts; a steward must unlock it",
                f"因监控告警，项目 {project_id} 的访问已被锁定；需由数据管理员解锁",
            )
        return projects.current_spec(session, project_id).access.value
    except EnclaveError as error:
        raise WorkspaceRefused.from_error(error) from None
