"""Platform roles and the separation of duties between them (R-ROLE-3, R-ROLE-4, R-ROLE-5, R-ROLE-7).

Project roles (``pi``, ``analyst``, ``committee``) come from a project's spec and live in
``project_members``. Platform roles are held by an account across projects and live in
``staff_roles``: the Data Security Work Office (pre-review), the Data Security Committee (votes on
applications), data stewards (provision, suspend, expire, destroy), and the four duties that
R-ROLE-4 and R-ROLE-5 keep apart. ``grant`` refuses any combination in ``INCOMPATIBLE``; a
de-identification operator is never an analyst or PI of a project (R-ROLE-5).

The rules hold per person where the enclave can tell two accounts belong to one person: accounts
whose account applications carry the same identity evidence (``identity_hmac``, R-ROLE-7) are
checked together, so a second account is no way around the separation of duties. Staff accounts
that never applied with identity evidence cannot be linked: that stays an organisational control.

A role may be granted to a name with no local account: the hub may sign people in through an
external identity provider (OIDC, LDAP), whose accounts never appear in ``local_users``. The name
must still be a valid user name (``users.check_username``), so ``Alice`` and ``alice`` are never two
holders. Checks and grants are serialised on the audit chain's write lock, so two sessions granting
conflicting roles at once cannot both succeed.

This is the one permissions module (issue 15): the role names live here only, as ``Role`` and
``ProjectRole``, and so does the role each console page needs (a ``Permission``, checked with
``require``), so web handlers carry no role logic. ``tests/test_role_literals.py`` keeps it so.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from enclave import audit
from enclave.audit import AuditAction
from enclave.db.models import AccountApplication, AuditHead, ProjectMember, StaffRole
from enclave.errors import BadInput, Forbidden
from enclave.users import check_username


class Role(StrEnum):
    """A platform role. The values are stored: never rename one."""

    OFFICE = "office"  # 数据安全工作办公室: pre-review, account approval (R-ROLE-3)
    COMMITTEE = "committee"  # 数据安全委员会: votes and countersigns applications (R-APP-7)
    STEWARD = "steward"  # data manager: provision, suspend, expire, destroy (R-ROLE-2)
    SECURITY_ADMIN = "security_admin"  # 安全管理员 (R-ROLE-4)
    SECURITY_AUDITOR = "security_auditor"  # 安全审计员: read-only audit search (R-ROLE-4)
    SYSTEM_ADMIN = "system_admin"  # 系统管理员 (R-ROLE-4)
    DEID_OPERATOR = "deid_operator"  # de-identification staff (R-ROLE-5)


class ProjectRole(StrEnum):
    """A role in one project (``project_members.role``). The values are stored: never rename one."""

    PI = "pi"
    ANALYST = "analyst"
    COMMITTEE = "committee"


# The project roles an account application asks for (R-APP-18). A plain ``Literal``, not the enum's
# members: pydantic names the allowed values in its errors, and those must read 'pi' or 'analyst'.
AccountProjectRole = Literal["pi", "analyst"]


ROLE_LABELS_ZH: dict[Role, str] = {
    Role.OFFICE: "数据安全工作办公室",
    Role.COMMITTEE: "数据安全委员会委员",
    Role.STEWARD: "数据管理员",
    Role.SECURITY_ADMIN: "安全管理员",
    Role.SECURITY_AUDITOR: "安全审计员",
    Role.SYSTEM_ADMIN: "系统管理员",
    Role.DEID_OPERATOR: "去标识化操作员",
}

# R-ROLE-4: the three administrative duties (and the de-identification operator's) are held by
# different accounts; the auditor audits the Office and the stewards, so is neither. R-ROLE-5 (001
# App.E.3 cl.2): the de-identification staff are independent of everyone involved in the agreement:
# the Office pre-reviews it, the committee approves it, the steward records the DUA.
_DUTIES = (Role.SECURITY_ADMIN, Role.SECURITY_AUDITOR, Role.SYSTEM_ADMIN, Role.DEID_OPERATOR)
INCOMPATIBLE: frozenset[frozenset[Role]] = frozenset(
    {frozenset(pair) for pair in combinations(_DUTIES, 2)}
    | {frozenset({Role.SECURITY_AUDITOR, Role.STEWARD}), frozenset({Role.SECURITY_AUDITOR, Role.OFFICE})}
    | {frozenset({Role.DEID_OPERATOR, other}) for other in (Role.COMMITTEE, Role.OFFICE, Role.STEWARD)}
)
# Project roles a de-identification operator may never hold (R-ROLE-5).
DEID_EXCLUDED_PROJECT_ROLES = frozenset({ProjectRole.PI, ProjectRole.ANALYST})


@dataclass(frozen=True)
class Permission:
    """What a page or an action needs: a platform role, and what its holder does (for the refusal)."""

    role: Role
    doing: str
    doing_zh: str

    def held_by(self, held: Collection[Role]) -> bool:
        """Whether one holding the roles ``held`` has this permission, e.g. to show a link to it.

        >>> PRE_REVIEW.held_by({Role.OFFICE}), PRE_REVIEW.held_by({Role.STEWARD})
        (True, False)
        """
        return self.role in held


PRE_REVIEW = Permission(Role.OFFICE, "pre-review applications", "初审申请")
VOTE_ON_APPLICATIONS = Permission(Role.COMMITTEE, "vote on applications", "对申请投票")
PROVISION_PROJECTS = Permission(Role.STEWARD, "provision projects", "开通项目")
RUN_LIFECYCLE = Permission(Role.STEWARD, "run a project's lifecycle", "管理项目生命周期")
UNLOCK_ANALYSTS = Permission(Role.STEWARD, "unlock analysts", "解锁分析人员")
SEARCH_AUDIT_LOG = Permission(Role.SECURITY_AUDITOR, "search the audit log", "检索审计日志")


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise BadInput(
            "role_unknown",
            f"Unknown role {value!r}; roles: {', '.join(r.value for r in Role)}",
            f"未知角色 {value!r}；可用角色：{', '.join(r.value for r in Role)}",
            details={"role": value, "roles": [r.value for r in Role]},
        ) from None


def roles_of(session: Session, username: str) -> set[Role]:
    """The platform roles ``username`` holds."""
    rows = session.scalars(select(StaffRole.role).where(StaffRole.username == username))
    return {Role(r) for r in rows}


def has_role(session: Session, username: str, role: Role) -> bool:
    return role in roles_of(session, username)


def holders(session: Session, role: Role) -> list[str]:
    """Every account holding ``role``, sorted: e.g. the seated members of the committee."""
    rows = session.scalars(select(StaffRole.username).where(StaffRole.role == role.value))
    return sorted(rows)


def check_role(session: Session, username: str, role: Role, doing: str, doing_zh: str) -> None:
    """Raise ``Forbidden`` (``role_required``) unless ``username`` holds ``role``."""
    if not has_role(session, username, role):
        raise Forbidden(
            "role_required",
            f"{username} cannot {doing}: the {role.value} role is needed",
            f"{username} 不能{doing_zh}：需要{ROLE_LABELS_ZH[role]}角色",
            details={"user": username, "role": role.value},
        )


def require(session: Session, username: str, permission: Permission) -> None:
    """Raise ``Forbidden`` (``role_required``) unless ``username`` has ``permission``: for pages and
    actions whose domain call does not check the caller itself."""
    check_role(session, username, permission.role, permission.doing, permission.doing_zh)


def _lock(session: Session) -> None:
    """Take the audit chain's write lock (a row lock on PostgreSQL, the database lock on SQLite)
    before reading roles, so a check and the grant it allows are one step: of two sessions granting
    conflicting roles at once, the second sees the first's role and is refused."""
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq))


def same_person(session: Session, username: str) -> set[str]:
    """``username`` and every account applied for with the same identity evidence (R-ROLE-7)."""
    mine = select(AccountApplication.identity_hmac).where(AccountApplication.username == username)
    linked = session.scalars(
        select(AccountApplication.username).where(AccountApplication.identity_hmac.in_(mine))
    )
    return {username, *linked}


def _conflict(username: str, role: Role, held: Role, account: str) -> Forbidden:
    if account == username:
        en = f"{username} holds {held.value}, not combinable with {role.value} (separation of duties)"
        zh = f"{username} 已担任{ROLE_LABELS_ZH[held]}，不能同时担任{ROLE_LABELS_ZH[role]}（职责分离）"
    else:
        en = (
            f"{username} is the same person as {account}, who holds {held.value}: not combinable with "
            f"{role.value} (separation of duties)"
        )
        zh = (
            f"{username} 与 {account} 为同一人，{account} 已担任{ROLE_LABELS_ZH[held]}，"
            f"不能再担任{ROLE_LABELS_ZH[role]}（职责分离）"
        )
    return Forbidden(
        "role_conflict",
        en,
        zh,
        details={"user": username, "role": role.value, "held": held.value, "account": account},
    )


def check_compatible(session: Session, username: str, role: Role) -> None:
    """Raise ``Forbidden`` (``role_conflict``) if ``role`` would combine duties kept apart, for this
    account or another account of the same person (R-ROLE-4, R-ROLE-5, R-ROLE-7)."""
    accounts = same_person(session, username)
    for account in sorted(accounts):
        for held in sorted(roles_of(session, account)):
            if frozenset({held, role}) in INCOMPATIBLE:
                raise _conflict(username, role, held, account)
    if role is Role.DEID_OPERATOR:
        member = session.execute(
            select(ProjectMember.username, ProjectMember.project_id)
            .where(
                ProjectMember.username.in_(accounts),
                ProjectMember.role.in_([r.value for r in DEID_EXCLUDED_PROJECT_ROLES]),
            )
            .order_by(ProjectMember.project_id)
        ).first()
        if member is not None:
            raise Forbidden(
                "role_conflict",
                f"{member.username} uses the data of project {member.project_id}: "
                f"{username} cannot be a de-identification operator (R-ROLE-5)",
                f"{member.username} 是项目 {member.project_id} 的数据使用者："
                f"{username} 不能担任去标识化操作员",
                details={
                    "user": username,
                    "role": role.value,
                    "project": member.project_id,
                    "account": member.username,
                },
            )


def check_project_member_allowed(session: Session, username: str, project_role: str) -> None:
    """A de-identification operator (or another account of the same person) may not become an
    analyst or PI of a project (R-ROLE-5). Call it in the transaction that adds the member."""
    if project_role not in DEID_EXCLUDED_PROJECT_ROLES:
        return
    _lock(session)
    for account in sorted(same_person(session, username)):
        if has_role(session, account, Role.DEID_OPERATOR):
            who = username if account == username else f"{username} (the same person as {account})"
            who_zh = username if account == username else f"{username}（与 {account} 为同一人）"
            raise Forbidden(
                "role_conflict",
                f"{who} is a de-identification operator: not a {project_role} of a project (R-ROLE-5)",
                f"{who_zh} 是去标识化操作员：不能担任项目的{project_role}（R-ROLE-5）",
                details={
                    "user": username,
                    "role": Role.DEID_OPERATOR.value,
                    "project_role": project_role,
                    "account": account,
                },
            )


def grant(session: Session, username: str, role: Role, *, actor: str) -> None:
    """Give ``username`` the platform role, audited; refused (``role_conflict``) if it breaks the
    separation of duties. Granting a role already held changes nothing and writes no record."""
    check_username(username)
    role = parse_role(role)
    _lock(session)
    if role in roles_of(session, username):
        return
    check_compatible(session, username, role)
    session.add(StaffRole(username=username, role=role.value, granted_by=actor, granted_at=audit.now_iso()))
    session.flush()
    audit.record(
        session, AuditAction.ROLE_GRANT, actor=actor, obj=f"user:{username}", details={"role": role.value}
    )


def revoke(session: Session, username: str, role: Role, *, actor: str) -> None:
    """Take the role away at once (R-ROLE-9), audited; revoking a role not held writes nothing."""
    check_username(username)
    role = parse_role(role)
    removed = session.execute(
        delete(StaffRole).where(StaffRole.username == username, StaffRole.role == role.value)
    ).rowcount
    if removed:
        audit.record(
            session,
            AuditAction.ROLE_REVOKE,
            actor=actor,
            obj=f"user:{username}",
            details={"role": role.value},
        )
