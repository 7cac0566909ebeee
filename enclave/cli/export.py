"""``enclave export``: submit, list, show, vote, release, download and withdraw export requests, and
reviewers' own signing keys (ARCHITECTURE §9). Thin: every rule lives in ``export_review``; the web
handlers call the same."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from enclave import db
from enclave.cli.common import (
    JsonOption,
    ProgressView,
    command_errors,
    console,
    emit_json,
    get_context,
    print_result,
    print_table,
)

if TYPE_CHECKING:
    from export_review.service import ExportService

NAME = "export"
app = typer.Typer(help="Export review: requests, checks, votes, release. / 导出审核。", no_args_is_help=True)

UserOption = Annotated[str, typer.Option("--user", help="Who is acting.")]
key_app = typer.Typer(help="Reviewers' own signing keys. / 审核人自持的签名密钥。", no_args_is_help=True)
app.add_typer(key_app, name="key")


def _service(ctx: typer.Context) -> ExportService:
    from export_review.service import ExportService  # imported here so the rest of the CLI starts fast

    enclave = get_context(ctx)
    return ExportService(db.connect(enclave.database_url), enclave.paths)


@app.command("submit")
@command_errors
def submit(
    ctx: typer.Context,
    project: Annotated[str, typer.Option("--project")],
    user: UserOption,
    justification: Annotated[str, typer.Option("--justification")],
    abroad: Annotated[bool, typer.Option("--abroad", help="The files will leave the country.")] = False,
    records: Annotated[int | None, typer.Option("--records", help="Records going abroad.")] = None,
    revises: Annotated[
        str | None, typer.Option("--revises", help="The request with changes requested this revises.")
    ] = None,
    run: Annotated[
        str | None,
        typer.Option("--run", help="Export this run's outputs (your own succeeded run): no upload."),
    ] = None,
    output: Annotated[
        list[str] | None,
        typer.Option("--output", help="With --run: export only this output (repeatable; default: all)."),
    ] = None,
    files: Annotated[list[Path] | None, typer.Argument(help="Files to export.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Copy files (or a run's outputs) into the vault, check them on the server, and queue them for
    review. A file given with --run is compared with the run's output of the same name."""
    result = _service(ctx).submit(
        user=user,
        project=project,
        justification=justification,
        files=files or [],
        abroad=abroad,
        records=records,
        revises=revises,
        run=run,
        outputs=output or None,
    )
    extra = f" (from {run}; reproduction {result['reproduction']})" if run else ""
    print_result(result, as_json, f"export request {result['request']}: {result['state']}{extra}")


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
    rows = _service(ctx).list(viewer=user, state=state, project=project)
    if as_json:
        emit_json(rows)
        return
    print_table(
        ("id", "project", "requester", "state", "version"),
        [(r["id"], r["project"], r["requester"], r["state"], f"v{r['version']}") for r in rows],
    )


@app.command("show")
@command_errors
def show(
    ctx: typer.Context,
    request: str,
    user: Annotated[str | None, typer.Option("--user", help="Show what this user may see.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a request: files with their findings, votes (when visible) and the decision."""
    info = _service(ctx).describe(request, viewer=user)
    if as_json:
        emit_json(info)
        return
    console.print(f"{info['id']} ({info['project']}, {info['requester']}): {info['state']}", markup=False)
    files = [(f["name"], f["sha256"][:12], f"{len(f['findings'])} finding(s)") for f in info["files"]]
    print_table(("file", "sha256", "findings"), files)
    findings = [(f["name"], x["severity"], x["message"]) for f in info["files"] for x in f["findings"]]
    if findings:
        print_table(("file", "severity", "finding"), findings)
    if info.get("provenance"):
        origin = info["provenance"]
        console.print(
            f"  from run {origin['run']} (notebook {origin['notebook']['sha256'][:12]}, "
            f"data v{origin['data_version']}, {len(origin['queries'])} queries)",
            markup=False,
        )
    shown = info.get("reproduction")
    if shown:
        summary = (shown["result"] or {}).get("summary", "")
        console.print(f"  reproduction: {shown['state']}  {summary}", markup=False)


@app.command("rerun")
@command_errors
def rerun(ctx: typer.Context, request: str, user: UserOption, as_json: JsonOption = False) -> None:
    """Ask for another reproducibility rerun of a request made from a run (a reviewer, a steward or the
    requester; one at a time)."""
    result = _service(ctx).rerun(request, user=user)
    print_result(result, as_json, f"rerun {result['rerun']} of {request} queued: reproduction pending")


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
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Your own private key file (once its public key is registered)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Cast a signed vote on one file or on every file of a request.

    With ``--key`` the vote is signed here with your own key; the server only verifies it.
    """
    from enclave import signing

    private_key = signing.load_key_file(key) if key is not None else None
    result = _service(ctx).vote(
        request,
        user=user,
        choice=choice,
        file_name=file,
        comment=comment,
        override=override,
        private_key=private_key,
    )
    print_result(
        result, as_json, f"voted {choice} on {', '.join(result['voted'])}; request {result['state']}"
    )


@app.command("release")
@command_errors
def release(ctx: typer.Context, request: str, user: UserOption, as_json: JsonOption = False) -> None:
    """Release an approved request to the outbox (a reviewer or steward, never the requester)."""
    with ProgressView(f"release {request}", unit="files", as_json=as_json) as view:
        result = _service(ctx).release(request, user=user, progress=view.update)
    print_result(result, as_json, f"released {request} to {result['location']}")


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
    result = _service(ctx).download(request, user=user, out_dir=out)
    print_result(result, as_json, f"downloaded {len(result['files'])} file(s) and the manifest to {out}")


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
    out = _service(ctx).withdraw(request, user=user, reason=reason)
    print_result(out, as_json, f"export request {request}: {out['state']}")


@key_app.command("generate")
@command_errors
def key_generate(
    out: Annotated[Path, typer.Option("--out", help="Private key file to create (mode 0600).")],
    as_json: JsonOption = False,
) -> None:
    """Create your own Ed25519 key: the private key goes to FILE, the public key to FILE.pub."""
    from enclave import signing

    public_file = out.with_name(out.name + ".pub")
    if public_file.exists():
        signing.generate_key_file(public_file)  # raises key_file_exists: nothing is overwritten
    key = signing.generate_key_file(out)
    public_file.write_bytes(signing.public_key_pem(key))
    public = signing.public_key_hex(key)
    result = {
        "private_key_file": str(out),
        "public_key_file": str(public_file),
        "public_key": public,
        "fingerprint": signing.fingerprint(public),
    }
    print_result(result, as_json, f"public key {public}\nfingerprint {result['fingerprint']}\nwritten: {out}")


@key_app.command("register")
@command_errors
def key_register(
    ctx: typer.Context,
    reviewer: Annotated[str, typer.Option("--reviewer", help="The reviewer the key belongs to.")],
    public_key: Annotated[Path, typer.Option("--public-key", help="PEM file or 64 hex digits.")],
    user: UserOption,
    as_json: JsonOption = False,
) -> None:
    """Register a reviewer's own public key; from now on only votes it signs count (replaces any earlier)."""
    from enclave import signing
    from enclave.errors import BadInput

    try:
        data = public_key.read_bytes()
    except OSError as error:
        raise BadInput(
            "key_file_unreadable",
            f"Cannot read {public_key}: {error.strerror}",
            f"无法读取 {public_key}：{error.strerror}",
        ) from None
    result = _service(ctx).register_key(
        reviewer=reviewer, public_key=signing.parse_public_key(data), user=user
    )
    print_result(result, as_json, f"registered key {result['fingerprint']} for {reviewer}")


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
