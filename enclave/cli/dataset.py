"""``enclave dataset``: register, list and show catalog entries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from enclave import catalog
from enclave.cli.common import (
    ActorOption,
    JsonOption,
    ProgressView,
    actor_or_default,
    command_errors,
    console,
    emit_json,
    get_context,
    print_record,
    print_table,
)

NAME = "dataset"
app = typer.Typer(help="The dataset catalog. / 数据目录。", no_args_is_help=True)


@app.command("register")
@command_errors
def register(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="Dataset spec (YAML).")],
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a dataset, or a new version of it when its source changed."""
    enclave = get_context(ctx)
    with (
        ProgressView(f"register {spec.name}", unit="bytes", as_json=as_json) as view,
        enclave.session() as session,
    ):
        result = catalog.register(
            session, enclave.paths, spec, actor=actor_or_default(actor), progress=view.update
        )
    if as_json:
        emit_json(result.to_dict())
    elif result.created or result.new_version:
        kind = "registered" if result.created else "new version of"
        console.print(
            f"{kind} [bold]{result.name}[/] ({result.row_count:,} rows, version {result.version[:12]})"
        )
    else:
        console.print(f"{result.name} is already registered at this version ({result.version[:12]})")


@app.command("list")
@command_errors
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the catalog."""
    enclave = get_context(ctx)
    with enclave.session() as session:
        rows = [catalog.describe(session, d.name) for d in catalog.list_datasets(session)]
    if as_json:
        emit_json([{k: v for k, v in r.items() if k not in ("spec", "versions")} for r in rows])
        return
    print_table(
        ("name", "title", "level", "category", "share type", "rows", "version", "steward"),
        [
            (
                r["name"],
                r["title"],
                r["level"],
                r["category"],
                r["share_type"],
                f"{r['rows']:,}",
                r["version"][:12],
                r["steward"],
            )
            for r in rows
        ],
    )


@app.command("show")
@command_errors
def show(ctx: typer.Context, name: str, as_json: JsonOption = False) -> None:
    """Show one dataset: its catalog fields, columns with roles, and versions."""
    enclave = get_context(ctx)
    with enclave.session() as session:
        info = catalog.describe(session, name)
    if as_json:
        emit_json(info)
        return
    print_record(
        {
            "name": info["name"],
            "title": info["title"],
            "level": info["level"],
            "category": info["category"],
            "share type": info["share_type"],
            "steward": info["steward"],
            "version": info["version"],
            "rows": f"{info['rows']:,}",
        }
    )
    columns = info["spec"]["columns"].items()
    print_table(("column", "role", "generalize"), [(c, m["role"], m.get("generalize")) for c, m in columns])
