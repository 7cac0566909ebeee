"""``enclave account``: account applications, the Office's decision, memberships, platform roles and
account expiry (issue 11; R-APP-16..18, R-ROLE-3..7, R-SEC-1). Thin: the rules live in
``enclave.accounts``, ``enclave.roles`` and ``enclave.users``.

The identity number is read from standard input only (``--id-number-stdin``), never from the
command line, where the process list would show it. ``--user`` names who acts (the CLI runs as the
host operator); the command checks that this account holds the role the step needs.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from enclave import accounts, audit, roles
from enclave.audit import AuditAction
from enclave.cli.common import (
    ActorOption,
    JsonOption,
    actor_or_default,
    command_errors,
    console,
    emit_json,
    get_context,
    parse_today,
    print_result,
    print_table,
)
from enclave.db.models import LocalUser
from enclave.errors import BadInput

NAME = "account"
app = typer.Typer(
    help="Account applications, memberships, roles and expiry. / 账户申请、项目成员、角色与到期。",
    no_args_is_help=True,
)
role_app = typer.Typer(
    help="Platform roles (separation of duties). / 平台角色（职责分离）。", no_args_is_help=True
)
app.add_typer(role_app, name="role")

UserOption = Annotated[str, typer.Option("--user", help="Who is acting (must hold the role the step needs).")]
TodayOption = Annotated[str | None, typer.Option("--today", help="Pretend today is YYYY-MM-DD.")]


def _read_identity_number() -> str:
    line = sys.stdin.readline().strip()
    if not line:
        raise BadInput(
            "identity_number_missing",
            "Give the identity number on standard input (never on the command line)",
            "请通过标准输入提供证件号码（不要写在命令行上）",
        )
    return line


@app.command("apply")
@command_errors
def apply(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="The account applied for (the person's user name).")],
    project: Annotated[str, typer.Option("--project")],
    role: Annotated[str, typer.Option("--role", help="pi | analyst")],
    id_kind: Annotated[str, typer.Option("--id-kind", help="id_card | passport | staff_badge")],
    id_number_stdin: Annotated[
        bool, typer.Option("--id-number-stdin", help="Read the identity number from standard input.")
    ] = False,
    actor: ActorOption = None,
    today: TodayOption = None,
    as_json: JsonOption = False,
) -> None:
    """File an account application; the identity number is stored only as a keyed hash."""
    if not id_number_stdin:
        raise BadInput(
            "identity_number_missing",
            "Pass --id-number-stdin and give the identity number on standard input",
            "请使用 --id-number-stdin 并通过标准输入提供证件号码",
        )
    number = _read_identity_number()
    enclave = get_context(ctx)
    with enclave.session() as session:
        application = accounts.apply_for_account(
            session,
            enclave.paths,
            username=user,
            project_id=project,
            role=role,
            identity_kind=id_kind,
            identity_number=number,
            actor=actor_or_default(actor),
            today=parse_today(today),
        )
        result = accounts.application_to_dict(application)
    print_result(
        result, as_json, f"account application {result['id']}: {user} as {role} of {project} (pending)"
    )


@app.command("decide")
@command_errors
def decide(
    ctx: typer.Context,
    application_id: Annotated[int, typer.Argument(help="The account application's id.")],
    decision: Annotated[str, typer.Argument(help="approve | reject")],
    user: UserOption,
    today: TodayOption = None,
    as_json: JsonOption = False,
) -> None:
    """The Office approves (membership at once, account end date set) or rejects an application."""
    if decision not in ("approve", "reject"):
        raise BadInput(
            "decision_invalid",
            f"Decide with approve or reject, not {decision!r}",
            f"请选择 approve（批准）或 reject（拒绝），而不是 {decision!r}",
        )
    enclave = get_context(ctx)
    with enclave.session() as session:
        application = accounts.decide_account(
            session,
            enclave.paths,
            application_id,
            approve=decision == "approve",
            actor=user,
            today=parse_today(today),
        )
        result = accounts.application_to_dict(application)
        result["account_exists"] = session.get(LocalUser, application.username) is not None
    text = f"account application {application_id}: {result['state']}"
    if result["state"] == "approved":
        text += f"; the account ends on {result['expires_on']}"
        if not result["account_exists"]:
            text += f" (create it with `enclave user add {result['user']}`: it gets that end date)"
    print_result(result, as_json, text)


@app.command("list")
@command_errors
def list_(
    ctx: typer.Context,
    project: Annotated[
        str | None, typer.Option("--project", help="Only this project's applications.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List account applications (never the identity evidence)."""
    with get_context(ctx).session() as session:
        rows = [
            accounts.application_to_dict(a) for a in accounts.list_applications(session, project_id=project)
        ]
    if as_json:
        emit_json(rows)
        return
    print_table(
        ("id", "user", "project", "role", "evidence", "state", "decided by", "ends"),
        [
            (
                r["id"],
                r["user"],
                r["project"],
                r["role"],
                r["identity_kind"],
                r["state"],
                r["decided_by"],
                r["expires_on"],
            )
            for r in rows
        ],
    )


@app.command("show")
@command_errors
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user name.")],
    today: TodayOption = None,
    as_json: JsonOption = False,
) -> None:
    """An account: end date, roles, memberships, password age, TOTP on or off (never a hash)."""
    enclave = get_context(ctx)
    with enclave.session() as session:
        info = accounts.describe_account(session, enclave.paths, name, today=parse_today(today))
    if as_json:
        emit_json(info)
        return
    lines = [f"account {name}" + ("" if info["exists"] else " (no local account yet)")]
    if info["exists"]:
        lines += [
            f"  ends on:        {info['expires_on'] or '-'}",
            f"  login:          {info['login']}",
            f"  password age:   {info['password_age_days']} days (max {info['password_max_age_days']})"
            + (", must change" if info["must_change_password"] else ""),
            f"  TOTP:           {'on' if info['totp'] else 'off'}",
        ]
    lines.append(f"  platform roles: {', '.join(info['staff_roles']) or '-'}")
    for m in info["memberships"]:
        lines.append(
            f"  member of {m['project']} as {m['role']} (ends {m['period_end']}, {m['project_state']})"
        )
    print_result(info, False, "\n".join(lines))


@app.command("remove-member")
@command_errors
def remove_member(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="The project.")],
    name: Annotated[str, typer.Argument(help="The member's user name.")],
    user: UserOption,
    as_json: JsonOption = False,
) -> None:
    """A steward ends a membership at once: the member's next query is refused."""
    with get_context(ctx).session() as session:
        result = accounts.remove_member(session, project, name, actor=user)
    print_result(
        result, as_json, f"{name} is no longer a member of {project} ({', '.join(result['removed'])})"
    )


@app.command("expire-check")
@command_errors
def expire_check(
    ctx: typer.Context, actor: ActorOption = None, today: TodayOption = None, as_json: JsonOption = False
) -> None:
    """List the accounts that ended (past their end date, or every project ended), auditing each once."""
    with get_context(ctx).session() as session:
        rows = accounts.record_expiries(session, actor=actor_or_default(actor), today=parse_today(today))
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print("no account has ended / 没有已到期的账户")
        return
    print_table(
        ("user", "reason", "ends on", "newly recorded"),
        [(r["user"], r["reason"], r["expires_on"], "yes" if r["newly_recorded"] else "") for r in rows],
    )


RoleArgument = Annotated[str, typer.Argument(help=f"One of: {', '.join(r.value for r in roles.Role)}.")]


@role_app.command("grant")
@command_errors
def role_grant(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The account.")],
    role: RoleArgument,
    user: UserOption,
    as_json: JsonOption = False,
) -> None:
    """Give a platform role; combinations the separation of duties forbids exit 4 (role_conflict)."""
    _change_role(ctx, name, role, user, as_json, grant=True)


@role_app.command("revoke")
@command_errors
def role_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The account.")],
    role: RoleArgument,
    user: UserOption,
    as_json: JsonOption = False,
) -> None:
    """Take a platform role away, at once."""
    _change_role(ctx, name, role, user, as_json, grant=False)


def _change_role(ctx: typer.Context, name: str, role: str, user: str, as_json: bool, *, grant: bool) -> None:
    """Grant or revoke ``role``, a refusal audited, and print the roles ``name`` holds afterwards."""
    enclave = get_context(ctx)
    action = AuditAction.ROLE_GRANT if grant else AuditAction.ROLE_REVOKE
    with (
        audit.refusals_recorded(enclave.session, action, actor=user, obj=f"user:{name}"),
        enclave.session() as session,
    ):
        (roles.grant if grant else roles.revoke)(session, name, roles.parse_role(role), actor=user)
        held = sorted(r.value for r in roles.roles_of(session, name))
    done = "granted" if grant else "revoked"
    print_result({"user": name, done: role, "roles": held}, as_json, f"{name}: {', '.join(held) or '-'}")


@role_app.command("list")
@command_errors
def role_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every platform role and who holds it."""
    with get_context(ctx).session() as session:
        rows = {role.value: roles.holders(session, role) for role in roles.Role}
    if as_json:
        emit_json(rows)
        return
    print_table(("role", "holders"), [(role, ", ".join(names) or "-") for role, names in rows.items()])
