"""``enclave export``: submit, list, show, vote, release, download and withdraw export requests
(ARCHITECTURE §9). Thin: every rule lives in ``export_review``; the web handlers call the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from enclave import audit
from enclave.audit import AuditAction
from enclave.cli.common import JsonOption, command_errors, console, emit_json, get_context
from export_review import release as releasing
from export_review import submission, views, voting
from export_review.keyspace import prepared_key_space
from export_review.outbox import outbox_for
from export_review.policy import load_settings

NAME = "export"
app = typer.Typer(help="Export review: requests, checks, votes, release. / 导出审核。", no_args_is_help=True)

UserOption = Annotated[str, typer.Option("--user", help="Who is acting.")]


def _print(result: dict, as_json: bool, text: str) -> None:
    if as_json:
        emit_json(result)
    else:
        console.print(text, highlight=False, markup=False)


@app.command("submit")
@command_errors
def submit(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Files to export.")],
    project: Annotated[str, typer.Option("--project")],
    user: UserOption,
    justification: Annotated[str, typer.Option("--justification")],
    abroad: Annotated[bool, typer.Option("--abroad", help="The files will leave the country.")] = False,
    records: Annotated[int | None, typer.Option("--records", help="Records going abroad.")] = None,
    revises: Annotated[
        str | None, typer.Option("--revises", help="The request with changes requested this revises.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Copy files into the vault, check them on the server, and queue them for review."""
    enclave = get_context(ctx)
    settings = load_settings(enclave.paths)
    with (
        audit.refusals_recorded(
            enclave.session, AuditAction.EXPORT_SUBMIT, actor=user, obj=f"project:{project}", project=project
        ),
        enclave.session() as session,
    ):
        request = submission.submit(
            session,
            enclave.paths,
            project_id=project,
            requester=user,
            justification=justification,
            files=files,
            settings=settings,
            key_space=prepared_key_space(session, enclave.paths),
            abroad=abroad,
            records=records,
            revises=revises,
        )
        result = {"request": request.id, "state": request.state}
    _print(result, as_json, f"export request {result['request']}: {result['state']}")


@app.command("list")
@command_errors
def list_(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project")] = None,
    state: Annotated[str | None, typer.Option("--state")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Show what this user may see.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List export requests."""
    enclave = get_context(ctx)
    with enclave.session() as session:
        rows = views.list_requests(
            session, settings=load_settings(enclave.paths), project=project, state=state, viewer=user
        )
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        console.print(f"{r['id']}  {r['project']}  {r['requester']}  {r['state']}  v{r['version']}")


@app.command("show")
@command_errors
def show(
    ctx: typer.Context,
    request: str,
    user: Annotated[str | None, typer.Option("--user", help="Show what this user may see.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a request: files with their findings, votes (when visible) and the decision."""
    enclave = get_context(ctx)
    with enclave.session() as session:
        info = views.describe(
            session, enclave.paths, request, settings=load_settings(enclave.paths), viewer=user
        )
    if as_json:
        emit_json(info)
        return
    console.print(f"{info['id']} ({info['project']}, {info['requester']}): {info['state']}", markup=False)
    for f in info["files"]:
        console.print(f"  {f['name']}  {f['sha256'][:12]}  {len(f['findings'])} finding(s)", markup=False)
        for finding in f["findings"]:
            console.print(f"    [{finding['severity']}] {finding['message']}", markup=False)


@app.command("vote")
@command_errors
def vote(
    ctx: typer.Context,
    request: str,
    choice: Annotated[str, typer.Argument(help="approve | reject | changes")],
    user: UserOption,
    file: Annotated[str | None, typer.Option("--file", help="Vote on this file only.")] = None,
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    override: Annotated[
        str | None, typer.Option("--override", help="Why a file that failed a check may still go.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Cast a signed vote on one file or on every file of a request."""
    enclave = get_context(ctx)
    with (
        audit.refusals_recorded(
            enclave.session, AuditAction.EXPORT_VOTE, actor=user, obj=f"export:{request}", project=None
        ),
        enclave.session() as session,
    ):
        result = voting.vote(
            session,
            enclave.paths,
            request,
            user=user,
            choice=choice,
            settings=load_settings(enclave.paths),
            file_name=file,
            comment=comment,
            override=override,
        )
    _print(result, as_json, f"voted {choice} on {', '.join(result['voted'])}; request {result['state']}")


@app.command("release")
@command_errors
def release(ctx: typer.Context, request: str, user: UserOption, as_json: JsonOption = False) -> None:
    """Release an approved request to the outbox (a reviewer or steward, never the requester)."""
    enclave = get_context(ctx)
    settings = load_settings(enclave.paths)
    with (
        audit.refusals_recorded(
            enclave.session, AuditAction.EXPORT_RELEASE, actor=user, obj=f"export:{request}", project=None
        ),
        enclave.session() as session,
    ):
        result = releasing.release(
            session,
            enclave.paths,
            request,
            user=user,
            outbox=outbox_for(settings.outbox, enclave.paths),
            stewards=settings.stewards,
        )
    _print(result, as_json, f"released {request} to {result['location']}")


@app.command("download")
@command_errors
def download(
    ctx: typer.Context,
    request: str,
    user: UserOption,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the files and manifest into.")],
    as_json: JsonOption = False,
) -> None:
    """Download a released request (the requester or the PI); every download is audited."""
    enclave = get_context(ctx)
    settings = load_settings(enclave.paths)
    with (
        audit.refusals_recorded(
            enclave.session, AuditAction.EXPORT_DOWNLOAD, actor=user, obj=f"export:{request}", project=None
        ),
        enclave.session() as session,
    ):
        result = releasing.download(
            session,
            enclave.paths,
            request,
            user=user,
            out_dir=out,
            outbox=outbox_for(settings.outbox, enclave.paths),
        )
    _print(result, as_json, f"downloaded {len(result['files'])} file(s) and the manifest to {out}")


@app.command("withdraw")
@command_errors
def withdraw(
    ctx: typer.Context,
    request: str,
    user: UserOption,
    reason: Annotated[str, typer.Option("--reason")] = "",
    as_json: JsonOption = False,
) -> None:
    """Withdraw your own request before it is released."""
    enclave = get_context(ctx)
    with (
        audit.refusals_recorded(
            enclave.session, AuditAction.EXPORT_WITHDRAW, actor=user, obj=f"export:{request}", project=None
        ),
        enclave.session() as session,
    ):
        result = submission.withdraw(session, request, user=user, reason=reason)
        out = {"request": result.id, "state": result.state}
    _print(out, as_json, f"export request {request}: {out['state']}")


@app.command("serve")
@command_errors
def serve(
    ctx: typer.Context,
    ip: Annotated[str, typer.Option("--ip", help="Address to listen on (keep it internal).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8766,
) -> None:
    """Run the export-review web UI and REST API as a JupyterHub service (HubOAuth).

    The hub's service settings come from the environment JupyterHub sets for a service.
    """
    from export_review.web.app import ExportReviewApp

    enclave = get_context(ctx)
    service = ExportReviewApp(
        ip=ip, port=port, enclave_home=str(enclave.home), database_url=enclave.database_url
    )
    service.start()
