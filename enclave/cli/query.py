"""``enclave query`` and ``enclave guard check``: an analyst's query exactly as the gateway runs it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from enclave.cli.common import JsonOption, command_errors, console, emit_json, get_context
from enclave.errors import EXIT_REFUSED

ProjectOption = Annotated[str, typer.Option("--project", help="Project id.")]
SqlArgument = Annotated[str, typer.Argument(help="The SQL query (DuckDB dialect).")]

guard_app = typer.Typer(help="The query guard. / 查询守卫。", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.command("query")(query)
    root.add_typer(guard_app, name="guard")


@command_errors
def query(
    ctx: typer.Context,
    sql: SqlArgument,
    project: ProjectOption,
    user: Annotated[str, typer.Option("--user", help="The analyst running the query.")],
    synthetic: Annotated[bool, typer.Option("--synthetic", help="Run on the synthetic twin.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Run a query for an analyst: guard, locked-down DuckDB, small-cell suppression, audit."""
    from enclave import query_service  # imported here so the rest of the CLI starts fast
    from enclave.guard.limits import DEFAULT_LIMITS

    enclave = get_context(ctx)
    result = query_service.run_query(
        enclave.session, enclave.paths, project, user, sql, synthetic=synthetic, limits=DEFAULT_LIMITS
    )
    if as_json:
        emit_json(result.to_dict())
        return
    table = Table(*result.columns)
    for row in result.rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
    console.print(
        f"{len(result.rows)} rows · {result.suppressed_groups} groups suppressed (too few persons) / "
        f"{result.suppressed_groups} 组因人数过少被隐藏"
    )
    for notice in result.notices:
        console.print(f"note: {notice}", markup=False)


@guard_app.command("check")
@command_errors
def guard_check(
    ctx: typer.Context, sql: SqlArgument, project: ProjectOption, as_json: JsonOption = False
) -> None:
    """The guard's verdict on a query without running it, always as JSON (exit 0 allowed, 3 refused)."""
    from enclave import query_service

    enclave = get_context(ctx)
    verdict = query_service.check_query(enclave.session, enclave.paths, project, sql)
    emit_json(verdict.to_dict())
    if not verdict.allowed:
        raise typer.Exit(EXIT_REFUSED)
