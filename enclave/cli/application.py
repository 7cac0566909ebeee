"""``enclave application``: file, attach, submit, review, vote on and withdraw data-use applications
(R-APP-1..12). Thin: every rule lives in ``enclave.applications``; the web console calls the same.
The CLI runs as the host operator and takes ``--user NAME`` as the person acting."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from enclave.cli.common import (
    JsonOption,
    command_errors,
    console,
    emit_json,
    get_context,
    print_result,
    print_table,
)
from enclave.errors import BadInput

NAME = "application"
app = typer.Typer(
    help="Data-use applications: file, pre-review, vote. / 数据使用申请：提交、初审、表决。",
    no_args_is_help=True,
)

UserOption = Annotated[str, typer.Option("--user", help="Who is acting.")]
AppArgument = Annotated[str, typer.Argument(help="The application id (app-...).")]


def _pair(option: str, value: str) -> tuple[str, str]:
    key, sep, rest = value.partition("=")
    if not sep or not key or not rest:
        raise BadInput(
            "option_invalid",
            f"{option} takes NAME=VALUE, not {value!r}",
            f"{option} 的格式为 NAME=VALUE，而不是 {value!r}",
            details={"option": option, "value": value},
        )
    return key, rest


def _read(path: Path) -> bytes:
    from enclave.applications import service

    try:
        service.check_attachment_size(path.name, path.stat().st_size)
        return path.read_bytes()
    except OSError as error:
        raise BadInput(
            "attachment_unreadable",
            f"Cannot read {path}: {error.strerror}",
            f"无法读取 {path}：{error.strerror}",
        ) from None


def _state(application: Any) -> dict[str, Any]:
    from enclave.applications import service

    return {**service.summary(application), "digest": application.digest}


@app.command("file")
@command_errors
def file(
    ctx: typer.Context,
    form: Annotated[Path, typer.Argument(help="The application form (YAML).")],
    user: UserOption,
    attach: Annotated[
        list[str] | None,
        typer.Option("--attach", help="KIND=FILE, repeatable (e.g. ethics_approval=ok.pdf)."),
    ] = None,
    submit: Annotated[bool, typer.Option("--submit", help="Submit it at once (all or nothing).")] = False,
    as_json: JsonOption = False,
) -> None:
    """File an application from the catalog: a draft, or submitted with ``--submit``."""
    from enclave.applications import form as forms
    from enclave.applications import service

    enclave = get_context(ctx)
    parsed = forms.load_form(form)
    files = [(kind, Path(name)) for kind, name in (_pair("--attach", a) for a in attach or [])]
    contents = [(kind, path.name, _read(path)) for kind, path in files]
    with enclave.session() as session:
        application = service.file_application(session, enclave.paths, parsed, applicant=user)
        for kind, filename, data in contents:
            service.attach(
                session, enclave.paths, application.id, kind=kind, filename=filename, data=data, user=user
            )
        if submit:
            service.submit(session, enclave.paths, application.id, user=user)
        result = _state(application)
    print_result(result, as_json, f"application {result['id']}: {result['state']}")


@app.command("update")
@command_errors
def update(
    ctx: typer.Context,
    application: AppArgument,
    form: Annotated[Path, typer.Argument(help="The revised form (YAML).")],
    user: UserOption,
    as_json: JsonOption = False,
) -> None:
    """Replace the form of a draft or returned application."""
    from enclave.applications import form as forms
    from enclave.applications import service

    enclave = get_context(ctx)
    parsed = forms.load_form(form)
    with enclave.session() as session:
        result = _state(service.update_application(session, enclave.paths, application, parsed, user=user))
    print_result(result, as_json, f"application {result['id']}: updated ({result['state']})")


@app.command("list")
@command_errors
def list_(ctx: typer.Context, user: UserOption, as_json: JsonOption = False) -> None:
    """Your applications; every application for the Office, Committee, stewards and auditors."""
    from enclave.applications import service

    enclave = get_context(ctx)
    with enclave.session() as session:
        rows = [service.summary(a) for a in service.list_applications(session, viewer=user)]
    if as_json:
        emit_json(rows)
        return
    print_table(
        ("id", "applicant", "state", "level", "revision", "title"),
        [
            (r["id"], r["applicant"], r["state"], f"L{r['level']}", f"r{r['revision']}", r["title"])
            for r in rows
        ],
    )


@app.command("show")
@command_errors
def show(ctx: typer.Context, application: AppArgument, user: UserOption, as_json: JsonOption = False) -> None:
    """Show an application: form, attachments, reviews, votes and the applicant's history."""
    from enclave.applications import service

    enclave = get_context(ctx)
    with enclave.session() as session:
        info = service.describe(session, enclave.paths, application, viewer=user)
    if as_json:
        emit_json(info)
        return
    lines = [
        f"{info['id']} ({info['applicant']}, {info['track']}, level {info['level']}): {info['state']}",
        f"  {info['title']}",
        f"  revision {info['revision']}  digest {info['digest'] or '-'}",
    ]
    lines += [f"  attachment {a['kind']}: {a['filename']} {a['sha256'][:12]}" for a in info["attachments"]]
    lines += [f"  missing: {', '.join(info['missing_attachments'])}"] if info["missing_attachments"] else []
    lines += [
        f"  review r{r['revision']} {r['reviewer']}: {r['outcome']} {r['comment']}" for r in info["reviews"]
    ]
    if info["history"] and info["history"]["overlap"]:
        lines.append(
            f"  history: datasets requested before: {', '.join(info['history']['overlapping_datasets'])}"
        )
    console.print("\n".join(lines), highlight=False, markup=False)


@app.command("attach")
@command_errors
def attach(
    ctx: typer.Context,
    application: AppArgument,
    kind: Annotated[str, typer.Argument(help="ethics_approval, consent_waiver, cooperation_agreement, ...")],
    path: Annotated[Path, typer.Argument(help="The file to attach.")],
    user: UserOption,
    as_json: JsonOption = False,
) -> None:
    """Attach a document to a draft or returned application."""
    from enclave.applications import service

    enclave = get_context(ctx)
    data = _read(path)
    with enclave.session() as session:
        row = service.attach(
            session, enclave.paths, application, kind=kind, filename=path.name, data=data, user=user
        )
        result = {
            "application": application,
            "kind": row.kind,
            "filename": row.filename,
            "sha256": row.sha256,
            "size": row.size,
        }
    print_result(result, as_json, f"attached {result['kind']} {result['filename']} ({result['sha256'][:12]})")


@app.command("submit")
@command_errors
def submit(
    ctx: typer.Context, application: AppArgument, user: UserOption, as_json: JsonOption = False
) -> None:
    """Submit (or resubmit) an application: checked, complete, digest fixed, queued for the Office."""
    from enclave.applications import service

    enclave = get_context(ctx)
    with enclave.session() as session:
        result = _state(service.submit(session, enclave.paths, application, user=user))
    print_result(
        result, as_json, f"application {result['id']}: {result['state']} (digest {result['digest']})"
    )


@app.command("review")
@command_errors
def review(
    ctx: typer.Context,
    application: AppArgument,
    outcome: Annotated[str, typer.Argument(help="forward | return")],
    user: UserOption,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="A checklist item ticked, repeatable.")
    ] = None,
    checklist_all: Annotated[
        bool, typer.Option("--checklist-all", help="Tick every checklist item.")
    ] = False,
    score: Annotated[list[str] | None, typer.Option("--score", help="DIM=N (1-5), repeatable.")] = None,
    comment: Annotated[str, typer.Option("--comment")] = "",
    as_json: JsonOption = False,
) -> None:
    """The Office's pre-review: forward to the Committee or return to the applicant."""
    from enclave.applications import office

    checklist = dict.fromkeys(office.CHECKLIST if checklist_all else check or [], True)
    scorecard: dict[str, int] = {}
    for key, value in (_pair("--score", s) for s in score or []):
        try:
            scorecard[key] = int(value)
        except ValueError:
            raise BadInput(
                "option_invalid",
                f"--score {key}: {value!r} is not a whole number",
                f"--score {key}：{value!r} 不是整数",
                details={"option": "--score", "value": value},
            ) from None
    enclave = get_context(ctx)
    with enclave.session() as session:
        result = _state(
            office.review(
                session,
                enclave.paths,
                application,
                reviewer=user,
                outcome=outcome,
                checklist=checklist,
                scorecard=scorecard,
                comment=comment,
            )
        )
    print_result(result, as_json, f"application {result['id']}: {result['state']}")


@app.command("history")
@command_errors
def history(
    ctx: typer.Context, application: AppArgument, user: UserOption, as_json: JsonOption = False
) -> None:
    """The applicant's and organisation's earlier applications and exports, overlap flagged (R-APP-5)."""
    from enclave import roles
    from enclave.applications import office, service

    enclave = get_context(ctx)
    with enclave.session() as session:
        target = service.get(session, application)
        if not service.involves(target, user):
            roles.check_role(
                session, user, roles.Role.OFFICE, "see an applicant's history", "查看申请人的历史"
            )
        info = office.history(session, application)
    if as_json:
        emit_json(info)
        return
    for a in info["applications"]:
        flag = "  OVERLAP " + ", ".join(o["dataset"] for o in a["overlap"]) if a["overlap"] else ""
        console.print(
            f"application {a['id']} {a['applicant']} {a['state']}{flag}", highlight=False, markup=False
        )
    for e in info["exports"]:
        flag = "  OVERLAP " + ", ".join(o["dataset"] for o in e["overlap"]) if e["overlap"] else ""
        console.print(f"export {e['id']} {e['requester']} {e['state']}{flag}", highlight=False, markup=False)


@app.command("withdraw")
@command_errors
def withdraw(
    ctx: typer.Context, application: AppArgument, user: UserOption, as_json: JsonOption = False
) -> None:
    """Withdraw your own application before it is decided."""
    from enclave.applications import service

    enclave = get_context(ctx)
    with enclave.session() as session:
        result = _state(service.withdraw(session, application, user=user))
    print_result(result, as_json, f"application {result['id']}: {result['state']}")


def _voting() -> Any:
    try:
        from enclave.applications import voting
    except ImportError:
        raise BadInput(
            "committee_voting_unavailable",
            "Committee voting is not installed in this enclave",
            "本平台尚未安装委员会表决功能",
        ) from None
    return voting


@app.command("vote")
@command_errors
def vote(
    ctx: typer.Context,
    application: AppArgument,
    choice: Annotated[str, typer.Argument(help="approve | reject")],
    user: UserOption,
    comment: Annotated[str, typer.Option("--comment")] = "",
    as_json: JsonOption = False,
) -> None:
    """A committee member's vote on an application in committee review (R-APP-7)."""
    voting = _voting()
    enclave = get_context(ctx)
    with enclave.session() as session:
        result = voting.vote(session, enclave.paths, application, member=user, choice=choice, comment=comment)
    print_result(result, as_json, f"voted {choice} on {application}")


@app.command("countersign")
@command_errors
def countersign(
    ctx: typer.Context,
    application: AppArgument,
    user: UserOption,
    key: Annotated[Path | None, typer.Option("--key", help="Your own private key file.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Countersign the application's digest after voting to approve it (R-APP-7)."""
    voting = _voting()
    enclave = get_context(ctx)
    with enclave.session() as session:
        result = voting.countersign(session, enclave.paths, application, member=user, key_file=key)
    print_result(result, as_json, f"countersigned {application}")
