"""Top-level commands ``enclave init`` and ``enclave demo-data``, and the ``enclave admin`` group
(``backup``, ``verify-backup``, ``restore``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from enclave import audit, config, db
from enclave import backup as backups
from enclave.audit import AuditAction
from enclave.cli.common import (
    ActorOption,
    JsonOption,
    ProgressView,
    actor_or_default,
    command_errors,
    console,
    emit_json,
    err_console,
    get_context,
)

admin_app = typer.Typer(
    help="Backups and restores of the state database and the vault. / 状态数据库与保险库的备份和恢复。",
    no_args_is_help=True,
)
FromOption = Annotated[Path, typer.Option("--from", help="The backup folder (`enclave admin backup --out`).")]
ExpectKeyOption = Annotated[
    str | None,
    typer.Option(
        "--expect-key",
        help="Refuse a backup not signed by this key (hex; `enclave audit public-key` of the source).",
    ),
]


def register(root: typer.Typer) -> None:
    root.command("init")(init)
    root.command("demo-data")(demo_data)
    root.add_typer(admin_app, name="admin")


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

    with ProgressView("demo data", unit="patients", as_json=as_json) as view:

        def progress(dataset: str, rows: int) -> None:
            if dataset == "patients":  # one row per patient: the other datasets follow chunk by chunk
                view.update("generating", rows, patients)

        view.update("generating", 0, patients)
        summary = generate(out, patients, seed, progress)
    if as_json:
        emit_json(summary.to_dict())
        return
    for dataset in summary.datasets:
        console.print(f"  {dataset.name:<14} {dataset.rows:>12,} rows  {dataset.parquet}")
    console.print(f"demo data for {patients:,} patients written to {out} in {summary.seconds:.1f} s")


@admin_app.command("backup")
@command_errors
def backup(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="A new (or empty) folder for the backup; made 0700.")],
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Back up the state database (pg_dump or SQLite's online backup), the vault and the audit
    checkpoint log, with a signed manifest of their sha256 and the audit head. Audited."""
    enclave = get_context(ctx)
    manifest = backups.backup(enclave.database_url, enclave.paths, out, actor=actor_or_default(actor))
    if as_json:
        emit_json({"out": str(out.expanduser().resolve()), "manifest": manifest})
        return
    head = manifest["audit_head"]
    size = sum(part["bytes"] for part in manifest["parts"].values())
    console.print(
        f"backup written to {out} ({size:,} bytes, {manifest['database']['backend']}), audit head "
        f"{head['seq']} {head['hash'][:16]}… / 备份已写入 {out}",
        markup=False,
        highlight=False,
    )


@admin_app.command("verify-backup")
@command_errors
def verify_backup(
    source: FromOption, expect_key: ExpectKeyOption = None, as_json: JsonOption = False
) -> None:
    """Check a backup's signature and the sha256 of every part, without restoring it."""
    manifest = backups.verify_backup(source, expect_key=expect_key)
    if as_json:
        emit_json({"ok": True, "manifest": manifest})
        return
    console.print(
        f"backup {source} intact: taken {manifest['created_at']}, audit head "
        f"{manifest['audit_head']['seq']} / 备份完好",
        markup=False,
        highlight=False,
    )


@admin_app.command("restore")
@command_errors
def restore(
    ctx: typer.Context,
    source: FromOption,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace a database and vault already there (files are moved aside, not deleted)."
        ),
    ] = False,
    expect_key: ExpectKeyOption = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify a backup, restore its database and vault into this home and database, then verify
    the audit chain. Exit 0 when the restored chain is intact, 1 otherwise (with its code)."""
    enclave = get_context(ctx)
    result = backups.restore(
        enclave.database_url,
        enclave.paths,
        source,
        actor=actor_or_default(actor),
        force=force,
        expect_key=expect_key,
    )
    if as_json:
        emit_json(result.to_dict())
    else:
        _print_restore(result)
    if not result.ok:
        raise typer.Exit(1)


def _print_restore(result: backups.RestoreResult) -> None:
    for aside in result.moved_aside:
        console.print(f"moved aside: {aside} / 已移至一旁", markup=False, highlight=False)
    for name in result.kept_home_files:
        console.print(f"kept this home's {name} / 保留了本主目录的 {name}", markup=False, highlight=False)
    verified = result.audit
    if verified.ok:
        console.print(
            f"restored into {result.home}; audit chain intact: {verified.checked} records "
            f"/ 已恢复；审计链完整：{verified.checked} 条记录",
            markup=False,
            highlight=False,
        )
        return
    err_console.print(
        f"restored into {result.home}, but the audit chain does not verify [{verified.code}]: "
        f"{verified.problem}\n已恢复，但审计链校验失败：{verified.problem_zh}",
        markup=False,
        highlight=False,
    )
