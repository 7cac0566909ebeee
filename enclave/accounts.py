"""Account applications, the Office's decision, project memberships and account expiry (issue 11).

A person applies for an account on one project with one role (``pi`` or ``analyst``) and shows
identity evidence (R-APP-16, R-APP-18). The evidence number is kept only as a keyed hash:
HMAC-SHA256 under a vault key, over the number without spaces in upper case. It lets the Office
see that two applications come from the same person, and nobody read the number back. One person
has one account per role and an account belongs to one person (R-ROLE-7): an account name that
comes back with other evidence, or the same evidence under a second name for the same role, is
refused.

The Data Security Work Office decides (``Role.OFFICE``, never on its own application). An approval
makes the person a project member at once and gives the account its end date: the earlier of the
project's end and its data-use agreement's end (R-APP-17). A later approval for another project
can move that date only to that project's own end. When the account does not exist yet, the
decision is recorded and ``enclave user add`` gives the new account its end date then
(``users.add_user`` calls ``account_expiry``). No password is made here: the steward who creates
the account hands out its first password, and the user must change it at the first login.

``remove_member`` ends a membership at once. The gateway, the CLI and the spawner read the
membership from the database for every query and every workspace start and poll, so the next
query is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from enclave import audit, lifecycle, projects, roles, users
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db.models import AccountApplication, AuditEvent, LocalUser, Project, ProjectMember
from enclave.errors import BadInput, Forbidden, NotFound, Reason
from enclave.files import private_dir, write_private
from enclave.roles import AccountProjectRole, Role

IDENTITY_KEY_FILE = "identity.hmac"
IDENTITY_KEY_BYTES = 32
_NUMBER = re.compile(r"[A-Z0-9-]{5,32}")
_ID_CARD = re.compile(r"[0-9]{17}[0-9X]")
# GB 11643-1999: the 18th character of a resident identity card number is an ISO 7064 MOD 11-2 check.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


class AccountState(StrEnum):
    """Where an account application is. The values are stored: never rename one."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"  # the membership was removed after approval


S = AccountState
VALID_TRANSITIONS: dict[AccountState, set[AccountState]] = {
    S.PENDING: {S.APPROVED, S.REJECTED},
    S.APPROVED: {S.REVOKED},
    S.REJECTED: set(),
    S.REVOKED: set(),
}
# Applications that still speak for a person: a rejected one proves nothing about who they are.
_LIVE = (S.PENDING.value, S.APPROVED.value, S.REVOKED.value)


class AccountApplicationForm(BaseModel):
    """What an account application names, the identity number aside (it never enters a model whose
    errors could echo it)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    username: str
    project_id: str
    role: AccountProjectRole
    identity_kind: Literal["id_card", "passport", "staff_badge"]


def _form(**fields: Any) -> AccountApplicationForm:
    try:
        return AccountApplicationForm.model_validate(fields)
    except ValidationError as error:
        reasons = [
            Reason(
                "account_field_invalid",
                f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}",
                f"字段 {'.'.join(str(p) for p in item['loc'])}：{item['msg']}",
            )
            for item in error.errors(include_url=False, include_input=False)
        ]
        raise BadInput(
            "account_application_invalid",
            "The account application is invalid: " + "; ".join(r.message for r in reasons),
            "账户申请无效：" + "；".join(r.message_zh for r in reasons),
            reasons=reasons,
        ) from None


# ---- the identity evidence, as a keyed hash only (R-APP-18) ---------------------------------------


def identity_key(paths: Paths) -> bytes:
    """The vault's HMAC key for identity numbers: 32 random bytes, 0600, made on first use."""
    path = paths.vault / "keys" / IDENTITY_KEY_FILE
    if not path.exists():
        private_dir(path.parent)
        write_private(path, secrets.token_bytes(IDENTITY_KEY_BYTES), replace=False)  # a racing creator wins
    key = path.read_bytes()
    if len(key) != IDENTITY_KEY_BYTES:
        raise BadInput(
            "identity_key_invalid",
            f"{path} is not a {IDENTITY_KEY_BYTES}-byte key",
            f"{path} 不是 {IDENTITY_KEY_BYTES} 字节的密钥",
        )
    return key


def normalise_identity_number(kind: str, number: str) -> str:
    """The number without whitespace, in upper case; ``identity_number_invalid`` (which never
    repeats the number) when it cannot be one, or when an identity card's check character is wrong."""
    cleaned = "".join(number.split()).upper()
    valid = _NUMBER.fullmatch(cleaned) is not None
    if kind == "id_card":
        valid = _ID_CARD.fullmatch(cleaned) is not None and _id_card_check(cleaned)
    if not valid:
        raise BadInput(
            "identity_number_invalid",
            f"The {kind} number is not valid (5 to 32 letters, digits or '-'; an identity card has "
            "18 characters with a valid check character)",
            f"{kind} 号码无效（5 至 32 位字母、数字或“-”；身份证号为 18 位且校验码正确）",
            details={"identity_kind": kind},
        )
    return cleaned


def _id_card_check(number: str) -> bool:
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17]


def identity_hmac(paths: Paths, kind: str, number: str) -> str:
    """HMAC-SHA256 (hex) of the normalised number under the vault key: what is stored."""
    cleaned = normalise_identity_number(kind, number)
    return hmac.new(identity_key(paths), cleaned.encode("ascii"), hashlib.sha256).hexdigest()


# ---- applications ---------------------------------------------------------------------------------


def get_application(session: Session, account_application_id: int) -> AccountApplication:
    found = session.get(AccountApplication, account_application_id)
    if found is None:
        raise NotFound(
            "account_application_not_found",
            f"No account application {account_application_id}",
            f"账户申请 {account_application_id} 不存在",
        )
    return found


def _check_project_open(project: Project, today: date | None) -> None:
    if project.state in users.ENDED_PROJECT_STATES:
        raise Forbidden(
            "project_ended",
            f"Project {project.id} is {project.state}: it takes no new members",
            f"项目 {project.id} 状态为 {project.state}：不再接受新成员",
            details={"project": project.id, "state": project.state},
        )
    lifecycle.check_not_ended(project, today)


def _pending(who: str) -> Forbidden:
    return Forbidden(
        "account_application_pending",
        f"{who} already has a pending account application for this project",
        f"{who} 在此项目已有待审批的账户申请",
    )


def _check_one_person_one_account(session: Session, form: AccountApplicationForm, digest: str) -> None:
    """R-ROLE-7: no shared account (a name with other evidence), no second account for one role."""
    earlier = session.scalars(
        select(AccountApplication).where(
            AccountApplication.state.in_(_LIVE),
            or_(AccountApplication.username == form.username, AccountApplication.identity_hmac == digest),
        )
    ).all()
    for row in earlier:
        if row.username == form.username and not hmac.compare_digest(row.identity_hmac, digest):
            raise Forbidden(
                "identity_mismatch",
                f"The account {form.username} belongs to another person's identity evidence: "
                "accounts are personal and never shared",
                f"账户 {form.username} 已登记他人的身份证明：账户仅限本人使用，不得共用",
                details={"user": form.username},
            )
        if row.username != form.username and row.role == form.role:
            raise Forbidden(
                "person_has_account",
                f"This person already has the account {row.username} for the {form.role} role: "
                "one account per person and role",
                f"此人已有 {form.role} 角色的账户 {row.username}：每人每个角色仅一个账户",
                details={"account": row.username, "role": form.role},
            )
        if row.project_id == form.project_id and row.state == S.PENDING:
            raise _pending(form.username)


def apply_for_account(
    session: Session,
    paths: Paths,
    *,
    username: str,
    project_id: str,
    role: str,
    identity_kind: str,
    identity_number: str,
    actor: str,
    today: date | None = None,
) -> AccountApplication:
    """File one person's application for an account on one project (R-APP-16, R-APP-18, R-ROLE-7).

    One pending application per person and project; the identity number is stored only as its
    keyed hash (``identity_hmac``) and appears in no error, audit record or log.
    """
    form = _form(username=username, project_id=project_id, role=role, identity_kind=identity_kind)
    users.check_username(form.username)
    digest = identity_hmac(paths, form.identity_kind, identity_number)
    project = projects.get(session, form.project_id)
    _check_project_open(project, today)
    roles.check_project_member_allowed(session, form.username, form.role)
    if form.role in projects.roles_of(session, form.project_id, form.username):
        raise Forbidden(
            "already_member",
            f"{form.username} is already {form.role} of project {form.project_id}",
            f"{form.username} 已是项目 {form.project_id} 的 {form.role}",
        )
    _check_one_person_one_account(session, form, digest)
    application = AccountApplication(
        username=form.username,
        project_id=form.project_id,
        role=form.role,
        identity_kind=form.identity_kind,
        identity_hmac=digest,
        state=S.PENDING.value,
        requested_by=actor,
        requested_at=audit.now_iso(),
    )
    session.add(application)
    session.flush()
    audit.record(
        session,
        AuditAction.ACCOUNT_APPLY,
        actor=actor,
        obj=_obj(application),
        project=form.project_id,
        details={"user": form.username, "role": form.role, "identity_kind": form.identity_kind},
    )
    return application


def _obj(application: AccountApplication) -> str:
    return f"account-application:{application.id}"


def _set_state(application: AccountApplication, to: AccountState, *, actor: str) -> None:
    """Check the move against ``VALID_TRANSITIONS`` and make it (the caller audits it)."""
    if to not in VALID_TRANSITIONS[AccountState(application.state)]:
        raise Forbidden(
            "account_application_decided",
            f"Account application {application.id} is {application.state}: it cannot become {to}",
            f"账户申请 {application.id} 状态为 {application.state}：不能变为 {to}",
            details={"from": application.state, "to": to.value},
        )
    application.state = to.value
    if to in (S.APPROVED, S.REJECTED):
        application.decided_by = actor
        application.decided_at = audit.now_iso()


def decide_account(
    session: Session,
    paths: Paths,
    account_application_id: int,
    *,
    approve: bool,
    actor: str,
    today: date | None = None,
) -> AccountApplication:
    """The Office approves or rejects an account application (R-APP-16, R-APP-17, R-ROLE-7).

    ``actor`` must hold ``Role.OFFICE`` and be neither the applicant nor who filed it. An approval
    adds the project membership at once and sets the account's end date (``account_expiry``).
    """
    application = get_application(session, account_application_id)
    roles.check_role(session, actor, Role.OFFICE, "decide account applications", "审批账户申请")
    if actor in (application.username, application.requested_by):
        raise Forbidden(
            "own_application",
            "Nobody decides an account application they filed or that is for their own account",
            "任何人不得审批本人提交或为本人账户提交的账户申请",
            details={"user": actor},
        )
    if not approve:
        _set_state(application, S.REJECTED, actor=actor)
        _audit_decision(session, application, actor)
        return application
    _set_state(application, S.APPROVED, actor=actor)
    project = projects.get(session, application.project_id)
    _check_project_open(project, today)
    roles.check_project_member_allowed(session, application.username, application.role)
    application.expires_on = project_account_end(session, project).isoformat()
    if application.role not in projects.roles_of(session, project.id, application.username):
        session.add(
            ProjectMember(project_id=project.id, username=application.username, role=application.role)
        )
    session.flush()
    _audit_decision(session, application, actor)
    _audit_membership(session, project.id, application.username, actor, "added", [application.role])
    _update_expiry(session, application.username, actor)
    return application


def _audit_decision(session: Session, application: AccountApplication, actor: str) -> None:
    audit.record(
        session,
        AuditAction.ACCOUNT_DECIDE,
        actor=actor,
        obj=_obj(application),
        project=application.project_id,
        details={
            "user": application.username,
            "role": application.role,
            "outcome": application.state,
            "expires_on": application.expires_on,
        },
    )


def _audit_membership(
    session: Session, project_id: str, username: str, actor: str, change: str, member_roles: list[str]
) -> None:
    audit.record(
        session,
        AuditAction.ACCOUNT_MEMBERSHIP,
        actor=actor,
        obj=f"user:{username}",
        project=project_id,
        details={"change": change, "roles": sorted(member_roles)},
    )


# ---- the account's end date (R-APP-17) -----------------------------------------------------------


def project_account_end(session: Session, project: Project) -> date:
    """The earlier of the project's end and its data-use agreement's end (no application: the project's)."""
    from enclave.agreements import current_dua  # the agreements module builds on the applications

    end = date.fromisoformat(project.period_end)
    if project.application_id:
        dua = current_dua(session, project.application_id)
        if dua is not None:
            end = min(end, date.fromisoformat(dua.end))
    return end


def account_expiry(session: Session, username: str) -> date | None:
    """The day the account ends: the latest of its approved projects' account ends, each capped by
    its own project and DUA (so a later approval extends it only to that project's end); None
    without an approved account application."""
    project_ids = session.scalars(
        select(AccountApplication.project_id).where(
            AccountApplication.username == username, AccountApplication.state == S.APPROVED.value
        )
    ).all()
    ends = [
        project_account_end(session, p)
        for p in session.scalars(select(Project).where(Project.id.in_(project_ids)))
    ]
    return max(ends) if ends else None


def _update_expiry(session: Session, username: str, actor: str) -> None:
    """Give an existing account the end date its approvals make; nothing while it does not exist."""
    user = session.get(LocalUser, username)
    expiry = account_expiry(session, username)
    if user is None or expiry is None or user.expires_on == expiry.isoformat():
        return
    before, user.expires_on = user.expires_on, expiry.isoformat()
    audit.record(
        session,
        AuditAction.ACCOUNT_EXPIRE,
        actor=actor,
        obj=f"user:{username}",
        details={"change": "set", "expires_on": user.expires_on, "before": before},
    )


# ---- memberships -----------------------------------------------------------------------------------


def remove_member(session: Session, project_id: str, username: str, *, actor: str) -> dict[str, Any]:
    """A steward ends someone's membership of a project, at once (R-ROLE-9: the next query is refused)."""
    roles.check_role(session, actor, Role.STEWARD, "remove project members", "移除项目成员")
    projects.get(session, project_id)
    removed = sorted(projects.roles_of(session, project_id, username))
    if not removed:
        raise NotFound(
            "member_not_found",
            f"{username} is not a member of project {project_id}",
            f"{username} 不是项目 {project_id} 的成员",
        )
    session.execute(
        delete(ProjectMember).where(
            ProjectMember.project_id == project_id, ProjectMember.username == username
        )
    )
    for application in session.scalars(
        select(AccountApplication).where(
            AccountApplication.project_id == project_id,
            AccountApplication.username == username,
            AccountApplication.state == S.APPROVED.value,
        )
    ):
        _set_state(application, S.REVOKED, actor=actor)
    session.flush()
    _audit_membership(session, project_id, username, actor, "removed", removed)
    _update_expiry(session, username, actor)
    return {"project": project_id, "user": username, "removed": removed}


# ---- listing and describing ------------------------------------------------------------------------


def list_applications(
    session: Session, *, project_id: str | None = None, username: str | None = None
) -> list[AccountApplication]:
    query = select(AccountApplication).order_by(AccountApplication.id)
    if project_id is not None:
        query = query.where(AccountApplication.project_id == project_id)
    if username is not None:
        query = query.where(AccountApplication.username == username)
    return list(session.scalars(query))


def application_to_dict(application: AccountApplication) -> dict[str, Any]:
    """The application as shown: without the identity hash."""
    return {
        "id": application.id,
        "user": application.username,
        "project": application.project_id,
        "role": application.role,
        "identity_kind": application.identity_kind,
        "state": application.state,
        "requested_by": application.requested_by,
        "requested_at": application.requested_at,
        "decided_by": application.decided_by,
        "decided_at": application.decided_at,
        "expires_on": application.expires_on,
    }


def describe_account(
    session: Session, paths: Paths, username: str, *, now: datetime | None = None, today: date | None = None
) -> dict[str, Any]:
    """``enclave account show``: end date, roles, memberships, password age, TOTP on or off. No secret."""
    user = session.get(LocalUser, username)
    applications = list_applications(session, username=username)
    members = session.execute(
        select(ProjectMember.project_id, ProjectMember.role, Project.period_end, Project.state)
        .join(Project, Project.id == ProjectMember.project_id)
        .where(ProjectMember.username == username)
        .order_by(ProjectMember.project_id, ProjectMember.role)
    ).all()
    if user is None and not applications and not members:
        raise NotFound("account_not_found", f"No account {username!r}", f"账户 {username!r} 不存在")
    at = now or datetime.now(UTC)
    day = today or lifecycle.enclave_today(at)
    out: dict[str, Any] = {
        "user": username,
        "exists": user is not None,
        "staff_roles": sorted(r.value for r in roles.roles_of(session, username)),
        "memberships": [
            {
                "project": m.project_id,
                "role": m.role,
                "period_end": m.period_end,
                "project_state": m.state,
                "ended": m.state in users.ENDED_PROJECT_STATES or date.fromisoformat(m.period_end) < day,
            }
            for m in members
        ],
        "applications": [application_to_dict(a) for a in applications],
        "account_expiry": _iso(account_expiry(session, username)),
    }
    if user is not None:
        changed = datetime.fromisoformat(user.password_changed_at)
        changed = changed if changed.tzinfo else changed.replace(tzinfo=UTC)
        out.update(
            expires_on=user.expires_on,
            disabled=user.disabled,
            totp=user.totp_secret is not None,
            must_change_password=user.must_change_password,
            password_changed_at=user.password_changed_at,
            password_age_days=(at - changed).days,
            password_max_age_days=users.password_max_age(paths),
            login=users.login_refusal(session, paths, username, now=at, today=day) or "allowed",
        )
    return out


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def expired_accounts(session: Session, *, today: date | None = None) -> list[dict[str, Any]]:
    """Accounts that log in no more because they ended: past ``expires_on`` or all projects ended."""
    day = today or lifecycle.enclave_today()
    out = []
    for user in session.scalars(select(LocalUser).order_by(LocalUser.name)):
        reason = users.ended_reason(session, user.name, today=day)
        if reason is not None:
            out.append({"user": user.name, "reason": reason, "expires_on": user.expires_on})
    return out


def record_expiries(session: Session, *, actor: str, today: date | None = None) -> list[dict[str, Any]]:
    """``expired_accounts``, each audited once (``account.expire``) for its reason and end date."""
    found = expired_accounts(session, today=today)
    for row in found:
        details = {"change": "ended", "reason": row["reason"], "expires_on": row["expires_on"]}
        seen = session.scalars(
            select(AuditEvent.details_json).where(
                AuditEvent.action == AuditAction.ACCOUNT_EXPIRE.value,
                AuditEvent.object == f"user:{row['user']}",
            )
        )
        row["newly_recorded"] = all(json.loads(d) != details for d in seen)
        if row["newly_recorded"]:
            audit.record(
                session, AuditAction.ACCOUNT_EXPIRE, actor=actor, obj=f"user:{row['user']}", details=details
            )
    return found
