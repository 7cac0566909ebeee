"""``enclave user``: local accounts for the hub's embedded login (issue 7; R-SEC-1..4).

Passwords are read from standard input (one line; typed twice, unechoed, on a terminal), never
from the command line, where other users could see them in the process list.
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated, Any

import typer

from enclave import users
from enclave.cli.common import (
    ActorOption,
    JsonOption,
    actor_or_default,
    command_errors,
    console,
    emit_json,
    get_context,
    print_table,
)
from enclave.errors import BadInput

NAME = "user"
app = typer.Typer(help="Local accounts of the hub login. / 平台登录的本地账户。", no_args_is_help=True)

UserArgument = Annotated[str, typer.Argument(help="The user name (as in project specs).")]


def read_password() -> str:
    """The new password from stdin: the first line (its newline removed), or typed twice on a TTY."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password / 密码: ")
        if getpass.getpass("Again / 再次输入: ") != first:
            raise BadInput("password_mismatch", "The two passwords differ", "两次输入的密码不一致")
        return first
    line = sys.stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    if password.endswith("\r"):
        password = password[:-1]
    if not password:
        raise BadInput(
            "password_missing",
            "Give the password on standard input (never on the command line)",
            "请通过标准输入提供密码（不要写在命令行上）",
        )
    return password


def _done(name: str, what: str, as_json: bool, **extra: object) -> None:
    if as_json:
        emit_json({"user": name, "done": what, **extra})
    else:
        console.print(f"user {name}: {what}")


@app.command("add")
@command_errors
def add(
    ctx: typer.Context,
    name: UserArgument,
    actor: ActorOption = None,
    keep_password: Annotated[
        bool,
        typer.Option(
            "--no-forced-change",
            help="Scripted set-ups and demos only: the first login does not ask for a new password "
            "(audited). / 仅用于脚本化部署和演示：首次登录不要求修改密码（记入审计）。",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create an account; the password comes from stdin (≥ 12 characters, not the user name).

    The steward chose this password, so the user replaces it at the first login (R-SEC-1) unless
    ``--no-forced-change`` is given; the audit record says which.
    """
    users.check_username(name)
    password = read_password()
    with get_context(ctx).session() as session:
        users.add_user(
            session, name, password, actor=actor_or_default(actor), must_change_password=not keep_password
        )
    _done(name, "added", as_json)


@app.command("passwd")
@command_errors
def passwd(
    ctx: typer.Context, name: UserArgument, actor: ActorOption = None, as_json: JsonOption = False
) -> None:
    """Set a new password (from stdin); lifts an automatic lockout."""
    password = read_password()
    with get_context(ctx).session() as session:
        users.set_password(session, name, password, actor=actor_or_default(actor))
    _done(name, "password changed", as_json)


@app.command("lock")
@command_errors
def lock(
    ctx: typer.Context,
    name: UserArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")] = "",
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Disable the account until it is unlocked."""
    with get_context(ctx).session() as session:
        users.lock_user(session, name, actor=actor_or_default(actor), reason=reason)
    _done(name, "locked", as_json)


@app.command("unlock")
@command_errors
def unlock(
    ctx: typer.Context, name: UserArgument, actor: ActorOption = None, as_json: JsonOption = False
) -> None:
    """Enable the account again and clear failed logins."""
    with get_context(ctx).session() as session:
        users.unlock_user(session, name, actor=actor_or_default(actor))
    _done(name, "unlocked", as_json)


@app.command("totp")
@command_errors
def enable_totp(
    ctx: typer.Context, name: UserArgument, actor: ActorOption = None, as_json: JsonOption = False
) -> None:
    """Require a one-time code at login; prints the secret and otpauth URI once."""
    enclave = get_context(ctx)
    with enclave.session() as session:
        secret, uri = users.enable_totp(session, enclave.paths, name, actor=actor_or_default(actor))
    if as_json:
        emit_json({"user": name, "done": "totp enabled", "secret": secret, "uri": uri})
        return
    console.print(f"user {name}: TOTP enabled / 已启用动态口令. Shown once / 仅显示一次:", highlight=False)
    console.print(f"  secret: {secret}", highlight=False, markup=False)
    console.print(f"  uri:    {uri}", highlight=False, markup=False)


@app.command("list")
@command_errors
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List accounts (never their secrets)."""
    with get_context(ctx).session() as session:
        rows = users.list_users(session)
    if as_json:
        emit_json(rows)
        return
    print_table(
        ("name", "created", "TOTP", "state"),
        [(r["name"], r["created_at"][:19], "yes" if r["totp"] else "no", _state(r)) for r in rows],
    )


def _state(row: dict[str, Any]) -> str:
    if row["disabled"]:
        return "disabled"
    return f"locked until {row['locked_until']}" if row["locked_until"] else "active"
