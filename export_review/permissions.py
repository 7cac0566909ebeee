"""Who may do what with an export request: ``check_user_can_X`` raises, ``user_can_X`` answers.

The requester never votes on, releases or downloads their own unreleased request (R-APP-10);
exports are frozen unless the project is active and inside its period (R-LIFE-3, R-LIFE-9,
R-LIFE-10: ``enclave.lifecycle.check_usable``, whatever the sweep has done yet). States are the
workflow's business: these functions ask only about the user and the project. ``today`` replaces
the enclave's date (tests).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date

from sqlalchemy.orm import Session

from enclave import lifecycle
from enclave.db.models import ExportRequest, Project
from enclave.errors import EnclaveError, Forbidden
from enclave.projects import ProjectState, get, roles_of
from enclave.roles import ProjectRole
from export_review.workflow import ExportState

REQUESTER_ROLES = frozenset({ProjectRole.ANALYST, ProjectRole.PI})


def _as_bool(check: Callable[[], None]) -> bool:
    try:
        check()
    except EnclaveError:
        return False
    return True


def check_project_open_for_exports(project: Project, today: date | None = None) -> None:
    if project.state != ProjectState.ACTIVE or project.locked:
        raise Forbidden(
            "export_frozen",
            f"Project {project.id} is {project.state}{' and locked' if project.locked else ''}: "
            "exports are frozen",
            f"项目 {project.id} 状态为 {project.state}{'且已锁定' if project.locked else ''}：导出已冻结",
            details={"project": project.id, "state": project.state, "locked": project.locked},
        )
    lifecycle.check_usable(project, today)


def check_user_can_submit(session: Session, project_id: str, user: str, today: date | None = None) -> None:
    project = get(session, project_id)
    if not roles_of(session, project_id, user) & REQUESTER_ROLES:
        raise Forbidden(
            "export_not_analyst",
            f"{user} is not an analyst or the PI of project {project_id}",
            f"{user} 不是项目 {project_id} 的分析人员或负责人",
        )
    check_project_open_for_exports(project, today)


def check_user_is_not_requester(request: ExportRequest, user: str, what: str, what_zh: str) -> None:
    if user == request.requester:
        raise Forbidden(
            "export_self_review",
            f"{user} cannot {what} their own export request {request.id}",
            f"{user} 不能{what_zh}自己的导出申请 {request.id}",
        )


def check_user_can_vote(
    session: Session, request: ExportRequest, user: str, today: date | None = None
) -> None:
    check_user_is_not_requester(request, user, "vote on", "投票审核")
    if ProjectRole.COMMITTEE not in roles_of(session, request.project_id, user):
        raise Forbidden(
            "export_not_committee",
            f"{user} is not a voting committee member of project {request.project_id}",
            f"{user} 不是项目 {request.project_id} 的表决委员",
        )
    check_project_open_for_exports(get(session, request.project_id), today)


def user_can_vote(session: Session, request: ExportRequest, user: str) -> bool:
    return _as_bool(lambda: check_user_can_vote(session, request, user))


def user_is_reviewer(session: Session, request: ExportRequest, user: str, stewards: Collection[str]) -> bool:
    """A steward or a committee member of the request's project: who may release it and preview it."""
    return user in stewards or ProjectRole.COMMITTEE in roles_of(session, request.project_id, user)


def check_user_can_release(
    session: Session, request: ExportRequest, user: str, stewards: Collection[str], today: date | None = None
) -> None:
    check_user_is_not_requester(request, user, "release", "发布")
    if not user_is_reviewer(session, request, user, stewards):
        raise Forbidden(
            "export_not_releaser",
            f"{user} is neither a committee member of project {request.project_id} nor a steward",
            f"{user} 既不是项目 {request.project_id} 的委员，也不是数据管理员",
        )
    check_project_open_for_exports(get(session, request.project_id), today)


def user_can_release(session: Session, request: ExportRequest, user: str, stewards: Collection[str]) -> bool:
    return _as_bool(lambda: check_user_can_release(session, request, user, stewards))


def check_user_can_preview(
    session: Session, request: ExportRequest, user: str, stewards: Collection[str]
) -> None:
    """Stored bytes are shown to reviewers only (committee members and stewards), never to others,
    and never to the requester."""
    if user == request.requester or not user_is_reviewer(session, request, user, stewards):
        raise Forbidden(
            "export_preview_forbidden",
            f"Only reviewers of export request {request.id} may preview its files",
            f"只有导出申请 {request.id} 的审核人可以预览其文件",
        )


def user_can_preview(session: Session, request: ExportRequest, user: str, stewards: Collection[str]) -> bool:
    return _as_bool(lambda: check_user_can_preview(session, request, user, stewards))


def check_user_can_download(
    session: Session, request: ExportRequest, user: str, today: date | None = None
) -> None:
    """Only the requester and the PI, only once released (R-EXP-1, R-EXP-8), and only while the project
    is in use: frozen when suspended, locked, expired or past its end date (R-LIFE-3, R-LIFE-10)."""
    project = get(session, request.project_id)
    if user != request.requester and user != project.pi:
        raise Forbidden(
            "export_not_recipient",
            f"Only the requester or the PI can download export request {request.id}",
            f"只有申请人或项目负责人可以下载导出申请 {request.id}",
        )
    if request.state != ExportState.RELEASED:
        raise Forbidden(
            "export_not_released",
            f"Export request {request.id} is {request.state}: nothing is released yet",
            f"导出申请 {request.id} 状态为 {request.state}：尚未发布",
        )
    if project.state != ProjectState.ACTIVE or project.locked:
        raise Forbidden(
            "export_frozen",
            f"Project {project.id} is {project.state}{' and locked' if project.locked else ''}: "
            "downloads are frozen",
            f"项目 {project.id} 状态为 {project.state}{'且已锁定' if project.locked else ''}：下载已冻结",
            details={"project": project.id, "state": project.state, "locked": project.locked},
        )
    lifecycle.check_usable(project, today)


def user_can_download(session: Session, request: ExportRequest, user: str) -> bool:
    return _as_bool(lambda: check_user_can_download(session, request, user))


def check_user_can_withdraw(request: ExportRequest, user: str) -> None:
    if user != request.requester:
        raise Forbidden(
            "export_not_requester",
            f"Only the requester can withdraw export request {request.id}",
            f"只有申请人可以撤回导出申请 {request.id}",
        )


def check_user_can_register_key(reviewer: str, user: str, stewards: Collection[str]) -> None:
    """A reviewer registers their own key; a steward may do it for them (audited either way)."""
    if user != reviewer and user not in stewards:
        raise Forbidden(
            "export_key_register_forbidden",
            f"{user} cannot register a key for {reviewer}: only the reviewer or a steward can",
            f"{user} 不能为 {reviewer} 登记密钥：只有审核人本人或数据管理员可以",
        )


def check_user_can_view(
    session: Session, request: ExportRequest, user: str, stewards: Collection[str]
) -> None:
    if user in stewards or roles_of(session, request.project_id, user):
        return
    raise Forbidden(
        "export_not_member",
        f"{user} is not a member of project {request.project_id}",
        f"{user} 不是项目 {request.project_id} 的成员",
    )


def user_sees_votes(session: Session, request: ExportRequest, user: str | None, everyone_voted: bool) -> bool:
    """Reviewers are blind to each other's votes until all have voted or the committee decided;
    the requester's side sees them once decided; the operator (no user) sees all."""
    if user is None:
        return True
    decided = request.state not in (ExportState.IN_REVIEW, ExportState.CHECKED, ExportState.SUBMITTED)
    if ProjectRole.COMMITTEE in roles_of(session, request.project_id, user):
        return everyone_voted or decided
    return decided
