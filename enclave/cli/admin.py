"""Top-level commands: ``enclave init`` and ``enclave demo-data``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from enclave import audit, config, db
from enclave.audit import AuditAction
from enclave.cli.common import (
    ActorOption,
    JsonOption,
    actor_or_default,
    command_errors,
    console,
    emit_json,
    get_context,
)


def register(root: typer.Typer) -> None:
    root.command("init")(init)
    root.command("demo-data")(demo_data)


@command_errors
def init(ctx: typer.Context, actor: ActorOption = None, as_json: JsonOption = False) -> None:
    """Create the enclave home and the state database (safe to run again)."""
    enclave = get_context(ctx)
    paths = enclave.paths
    config.secure_home(paths)  # 0700, the outbox 0750, whatever the umask; tightens an older home
    first_time = not db.session.is_initialised(enclave.database_url)
    db.migrate(enclave.database_url)
    if first_time:
        with enclave.session() as session:
            audit.record(
                session, AuditAction.ENCLAVE_INIT, actor=actor_or_default(actor), obj=f"home:{paths.home}"
            )
    if as_json:
        emit_json({"home": str(paths.home), "initialised": first_time})
    else:
        console.print(f"enclave home {paths.home} {'initialised' if first_time else 'is up to date'}")


@command_errors
def demo_data(
    out: Annotated[Path, typer.Option("--out", help="Directory for the Parquet files and specs.")],
    patients: Annotated[int, typer.Option("--patients", min=1)] = 10_000,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    as_json: JsonOption = False,
) -> None:
    """Write a synthetic health cohort (Parquet) with matching dataset specs."""
    from enclave.demo_data import generate

    summary = generate(out, patients, seed)
    if as_json:
        emit_json(summary.to_dict())
        return
    for dataset in summary.datasets:
        console.print(f"  {dataset.name:<14} {dataset.rows:>12,} rows  {dataset.parquet}")
    console.print(f"demo data for {patients:,} patients written to {out} in {summary.seconds:.1f} s")
