"""``enclave gateway``: run the query gateway, and list or lift the locks its monitoring sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from enclave.cli.common import (
    ActorOption,
    JsonOption,
    actor_or_default,
    command_errors,
    console,
    emit_json,
    get_context,
)

NAME = "gateway"
app = typer.Typer(help="The query gateway and its monitoring. / 查询网关与监控。", no_args_is_help=True)


@app.command("serve")
def serve(
    ctx: typer.Context,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="A traitlets config file (GatewayApp, QueryMonitor).")
    ] = None,
    ip: Annotated[str | None, typer.Option("--ip", help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on.")] = None,
) -> None:
    """Run the gateway (JupyterHub starts it as a managed service)."""
    from enclave.gateway.app import GatewayApp

    enclave = get_context(ctx)
    gateway = GatewayApp(enclave_home=str(enclave.home), database_url=enclave.database_url)
    if config_file is not None:
        gateway.load_config_file(str(config_file))
    if ip is not None:
        gateway.ip = ip
    if port is not None:
        gateway.port = port
    gateway.start()


@app.command("locks")
@command_errors
def locks_(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project", help="Only this project.")] = None,
    include_lifted: Annotated[bool, typer.Option("--all", help="Include lifted locks.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List users locked out of projects by monitoring (R-QRY-5)."""
    from enclave import user_locks

    enclave = get_context(ctx)
    with enclave.session() as session:
        rows = [
            user_locks.lock_to_dict(lock)
            for lock in user_locks.list_locks(session, project, include_lifted=include_lifted)
        ]
    if as_json:
        emit_json(rows)
        return
    table = Table("project", "user", "locked at", "reason", "unlocked at", "by")
    for row in rows:
        table.add_row(
            row["project"],
            row["user"],
            row["locked_at"],
            row["reason"],
            row["unlocked_at"] or "",
            row["unlocked_by"] or "",
        )
    console.print(table)


@app.command("unlock")
@command_errors
def unlock(
    ctx: typer.Context,
    project: Annotated[str, typer.Option("--project", help="Project id.")],
    user: Annotated[str, typer.Option("--user", help="The locked user.")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why (recorded in the audit log).")
    ] = "reviewed by a steward",
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """A steward lifts a user's lock on a project (audited)."""
    from enclave import user_locks

    enclave = get_context(ctx)
    with enclave.session() as session:
        lock = user_locks.unlock_user(session, project, user, actor=actor_or_default(actor), reason=reason)
        row = user_locks.lock_to_dict(lock)
    if as_json:
        emit_json(row)
    else:
        console.print(f"{user} unlocked on project {project} / 已解锁")
