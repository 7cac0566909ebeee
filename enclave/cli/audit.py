"""``enclave audit``: read and verify the tamper-evident audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from enclave import audit
from enclave.cli.common import (
    ActorOption,
    JsonOption,
    actor_or_default,
    command_errors,
    console,
    emit_json,
    err_console,
    get_context,
    print_table,
)

NAME = "audit"
app = typer.Typer(help="The audit log. / 审计日志。", no_args_is_help=True)


@app.command("tail")
@command_errors
def tail(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, max=100_000)] = 20,
    project: Annotated[str | None, typer.Option("--project")] = None,
    action: Annotated[str | None, typer.Option("--action")] = None,
    as_json: JsonOption = False,
) -> None:
    """The newest events, oldest first."""
    enclave = get_context(ctx)
    with enclave.session() as session:
        events = audit.events_to_dicts(audit.tail(session, limit, project=project, action=action))
    if as_json:
        emit_json(events)
        return
    _print_events(events)


def _print_events(events: list[dict[str, Any]]) -> None:
    rows = []
    for e in events:
        details = json.dumps(e["details"], ensure_ascii=False)
        if len(details) > 100:
            details = details[:97] + "..."
        rows.append(
            (
                e["seq"],
                e["ts"][:19],
                e["actor"],
                e["action"],
                e["object"],
                e["project"],
                e["outcome"],
                details,
            )
        )
    print_table(("seq", "time", "actor", "action", "object", "project", "outcome", "details"), rows)


def _print_result(result: audit.VerifyResult, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        checkpoint = f", checkpoint at {result.checkpoint_seq}" if result.checkpoint_seq else ""
        console.print(
            f"audit chain intact: {result.checked} records{checkpoint} / 审计链完整：{result.checked} 条记录"
        )
    else:
        where = f"at record {result.broken_seq}" if result.broken_seq else ""
        where_zh = f"在第 {result.broken_seq} 条记录处" if result.broken_seq else ""
        err_console.print(
            f"audit chain BROKEN {where} [{result.code}]: {result.problem}\n"
            f"审计链{where_zh}断裂：{result.problem_zh}",
            markup=False,
        )
    if not result.ok:
        raise typer.Exit(1)


@app.command("verify")
@command_errors
def verify(
    ctx: typer.Context,
    checkpoint: Annotated[
        bool,
        typer.Option("--checkpoint/--no-checkpoint", help="Sign a checkpoint at the head when intact."),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Recompute the keyed hash chain and check it against the newest signed checkpoint.
    Exit 0 when intact, 1 with the first break (a stable code) otherwise."""
    enclave = get_context(ctx)
    with enclave.session() as session:
        result = audit.verify(session, paths=enclave.paths, write_checkpoint=checkpoint)
    _print_result(result, as_json)


@app.command("checkpoint")
@command_errors
def checkpoint(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Verify the chain, then sign a checkpoint at its head into the vault (and the S3 outbox).
    A chain written before keyed hashing is anchored first."""
    enclave = get_context(ctx)
    with enclave.session() as session:
        result = audit.checkpoint(session, paths=enclave.paths)
    _print_result(result, as_json)


@app.command("public-key")
@command_errors
def public_key(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """The checkpoint signing key's public half (hex), for checking checkpoints offline."""
    from enclave import audit_checkpoints
    from enclave.errors import NotFound

    enclave = get_context(ctx)
    public = audit_checkpoints.public_key(enclave.paths)
    if public is None:
        raise NotFound(
            "audit_checkpoint_key_missing",
            "No checkpoint has been signed yet: run `enclave audit checkpoint`",
            "尚未签署任何检查点：请运行 `enclave audit checkpoint`",
        )
    if as_json:
        emit_json({"public_key": public, "algorithm": "ed25519"})
    else:
        console.print(public, markup=False, highlight=False)


@app.command("subject")
@command_errors
def subject(
    ctx: typer.Context,
    source_id: Annotated[str, typer.Argument(help="The subject's id in the source data (e.g. the pid).")],
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Which projects and released exports included a data subject (subject look-back, R-AUD-9)."""
    from enclave.lookback import subject_history

    enclave = get_context(ctx)
    with enclave.session() as session:
        history = subject_history(session, enclave.paths, source_id, actor=actor_or_default(actor))
    if as_json:
        emit_json(history)
        return
    if not history["projects"]:
        console.print("no project has included this subject / 没有项目包含该数据主体")
    for entry in history["projects"]:
        console.print(
            f"project {entry['project']} · {entry['dataset']} v{entry['version']} · "
            f"prepared {entry['prepared_at']}"
        )
    for export in history["exports"]:
        console.print(f"released export {export['request']} ({export['project']}) on {export['released_at']}")


@app.command("search")
@command_errors
def search(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="The security auditor searching.")],
    actor: Annotated[str | None, typer.Option("--actor", help="Records of this actor only.")] = None,
    project: Annotated[str | None, typer.Option("--project")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="An action (export.vote) or a prefix (export.).")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO date or time, inclusive.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO date or time, inclusive.")] = None,
    text: Annotated[str | None, typer.Option("--text", help="Text in the object or the details.")] = None,
    limit: Annotated[int, typer.Option("-n", "--limit")] = 100,
    offset: Annotated[int, typer.Option("--offset")] = 0,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="Write the records to this CSV file (mode 0600).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Search the audit log, newest first: a security auditor's read-only search (R-ROLE-4).

    The search itself is audited (audit.search: who searched for what); a user without the
    security_auditor role is refused (role_required, exit 4), and the refusal is audited too."""
    from enclave import audit_search
    from enclave.audit import AuditAction
    from enclave.errors import BadInput
    from enclave.files import write_private

    if csv_file is not None and as_json:
        raise BadInput(
            "audit_output_conflict", "Give --csv FILE or --json, not both", "--csv FILE 与 --json 只能选一个"
        )
    enclave = get_context(ctx)
    filters = {"user": actor, "project": project, "action": action, "since": since, "until": until}
    refusals = audit.refusals_recorded(enclave.session, AuditAction.AUDIT_SEARCH, actor=user, obj="audit_log")
    with refusals, enclave.session() as session:
        rows = audit_search.audited_search(
            session, auditor=user, **filters, text=text, limit=limit, offset=offset
        )
    if csv_file is not None:
        write_private(csv_file, audit_search.to_csv(rows).encode("utf-8-sig"))
        console.print(f"{len(rows)} records written to {csv_file} / 已将 {len(rows)} 条记录写入 {csv_file}")
        return
    if as_json:
        emit_json(rows)
        return
    _print_events(rows)
    if len(rows) == limit:
        console.print(f"(first {limit} records; use --offset or --limit for more / 仅显示前 {limit} 条)")
