"""``enclave agreement``: record and show the data-use agreement of an approved application (R-APP-15)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from enclave import agreements, audit
from enclave.audit import AuditAction
from enclave.cli.common import JsonOption, command_errors, console, emit_json, get_context
from enclave.errors import BadInput

NAME = "agreement"
app = typer.Typer(
    help="Data-use agreements: no data is provisioned without one. / 数据使用协议：未签署不得提供数据。",
    no_args_is_help=True,
)

UserOption = Annotated[str, typer.Option("--user", help="Who is acting: a steward, or the PI e-signing.")]


def _date(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadInput(
            "date_invalid", f"{option}: not a date (YYYY-MM-DD): {value!r}", f"{option}：不是日期：{value!r}"
        ) from None


def _read_pdf(path: Path) -> bytes:
    try:
        if path.stat().st_size > agreements.MAX_PDF_BYTES:
            raise BadInput(
                "dua_invalid",
                f"{path} is larger than {agreements.MAX_PDF_BYTES} bytes",
                f"{path} 超过 {agreements.MAX_PDF_BYTES} 字节",
            )
        return path.read_bytes()
    except OSError as error:
        raise BadInput(
            "file_unreadable", f"Cannot read {path}: {error.strerror}", f"无法读取 {path}：{error.strerror}"
        ) from None


@app.command("record")
@command_errors
def record(
    ctx: typer.Context,
    application: Annotated[str, typer.Argument(help="The approved application's id.")],
    user: UserOption,
    start: Annotated[str, typer.Option("--start", help="First day of the agreement, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last day of the agreement, YYYY-MM-DD.")],
    pdf: Annotated[Path | None, typer.Option("--pdf", help="The signed agreement (PDF).")] = None,
    esign: Annotated[
        bool, typer.Option("--esign", help="The PI signs the standard agreement with their key.")
    ] = False,
    signer: Annotated[
        str | None,
        typer.Option("--signer", help="Who signed: the PI for --esign (default: the applicant)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Record the signed DUA of an approved application: --pdf FILE (a steward) or --esign --signer PI.

    The agreement must cover the approved period; it is kept six years after its end (R-GOV-12)."""
    enclave = get_context(ctx)
    with audit.refusals_recorded(
        enclave.session, AuditAction.DUA_RECORD, actor=user, obj=f"application:{application}"
    ):
        if (pdf is None) == (not esign):
            raise BadInput(
                "dua_kind_invalid",
                "Give exactly one of --pdf FILE or --esign",
                "请只提供 --pdf FILE 或 --esign 其中之一",
            )
        first, last = _date("--start", start), _date("--end", end)
        data = _read_pdf(pdf) if pdf is not None else None
        with enclave.session() as session:
            who = signer or agreements.application(session, application).applicant
            row = agreements.record_dua(
                session,
                enclave.paths,
                application,
                kind="esign" if esign else "pdf",
                start=first,
                end=last,
                actor=user,
                signer=who,
                pdf=data,
                filename=pdf.name if pdf is not None else None,
            )
            result = agreements.dua_to_dict(row)
    if as_json:
        emit_json(result)
        return
    console.print(
        f"agreement recorded for {application} ({result['kind']}, {result['start']} → {result['end']}, "
        f"kept until {result['retain_until']}) / 协议已登记"
    )


@app.command("show")
@command_errors
def show(
    ctx: typer.Context,
    application: Annotated[str, typer.Argument(help="The application's id.")],
    as_json: JsonOption = False,
) -> None:
    """Show the application's current DUA, every earlier one, and whether each document verifies."""
    enclave = get_context(ctx)
    with enclave.session() as session:
        info = agreements.describe(session, enclave.paths, application)
    if as_json:
        emit_json(info)
        return
    current = info["current"]
    if current is None:
        console.print(f"{application}: no data-use agreement recorded / 尚未登记数据使用协议")
        return
    for row in info["agreements"]:
        mark = "current" if row["id"] == current["id"] else "earlier"
        state = "verified" if row["verified"] else "NOT VERIFIED"
        console.print(
            f"  {mark:<8} {row['kind']:<6} {row['start']} → {row['end']} signer {row['signer']} "
            f"kept until {row['retain_until']} · {state} · sha256 {row['sha256'][:16]}…"
        )
