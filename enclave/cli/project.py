"""``enclave project``: create from an approved spec, inspect, prepare, and run the lifecycle."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from enclave import accounts, audit, lifecycle, projects, provisioning
from enclave.audit import AuditAction
from enclave.cli.common import (
    ActorOption,
    EnclaveContext,
    JsonOption,
    ProgressView,
    actor_or_default,
    command_errors,
    console,
    emit_json,
    err_console,
    get_context,
    parse_today,
    print_table,
)
from enclave.config import Paths
from enclave.db.models import Project
from enclave.errors import BadInput, EnclaveError
from enclave.specs import ProjectSpec, load_project_spec, load_yaml

NAME = "project"
app = typer.Typer(help="Project workspaces. / 项目工作空间。", no_args_is_help=True)

ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")]
HUB_API_URL_ENV = "ENCLAVE_HUB_API_URL"
HUB_API_TOKEN_ENV = "ENCLAVE_HUB_API_TOKEN"
SERVICE_URLS_ENV = "ENCLAVE_SERVICE_URLS"


def revocation_hooks() -> list[lifecycle.RevocationHook]:
    """Stop the project's servers through the hub when the hub's API URL and a steward token are set,
    then make the services named in $ENCLAVE_SERVICE_URLS (comma list of base URLs) forget cached tokens.

    Run as a hub-managed service (the lifecycle sweep), the hub's own $JUPYTERHUB_API_URL and the
    service's $JUPYTERHUB_API_TOKEN stand in for them."""
    env = os.environ.get
    url = env(HUB_API_URL_ENV) or env("JUPYTERHUB_API_URL")
    token = env(HUB_API_TOKEN_ENV) or env("JUPYTERHUB_API_TOKEN")
    if not (url and token):
        return []
    from hub_config.revocation import clear_service_auth_caches, stop_project_servers

    services = [s.strip() for s in os.environ.get(SERVICE_URLS_ENV, "").split(",") if s.strip()]
    hooks = [stop_project_servers(url, token)]
    return hooks + ([clear_service_auth_caches(services, token)] if services else [])


def volume_destroyers(enclave: EnclaveContext) -> list[Any]:
    """Docker home volumes, containers and network, and the published copy (``hub_config.destruction``)."""
    from hub_config.destruction import volume_destroyers as destroyers

    return destroyers(enclave.paths.home)


def _preparer(view: ProgressView) -> projects.Preparer:
    """The workspace preparer, its steps ("visits: de-identifying") shown on ``view`` as datasets done
    of the project's datasets: each is begun by its first step after the first reading of them all."""

    def prepare(
        paths: Paths, spec: ProjectSpec, datasets: projects.SourceMap, *, version: int
    ) -> dict[str, Any]:
        names, begun = list(spec.datasets), dict[str, None]()

        def report(message: str) -> None:
            name, _, step = message.partition(": ")
            if name in names and not step.startswith("reading"):
                begun[name] = None
                done = len(begun) - 1
            else:  # reading them all (before any is begun), or the steps after the last one
                done = len(names) if begun else 0
            view.update(message, done, len(names))

        return projects.workspace_preparer(paths, spec, datasets, version=version, progress=report)

    return prepare


def _parse_overrides(values: list[str]) -> dict[str, str]:
    overrides = {}
    for value in values:
        name, sep, reason = value.partition("=")
        if not sep or not name.strip() or not reason.strip():
            raise BadInput(
                "override_malformed",
                f"--override-share takes DATASET=REASON, not {value!r}",
                f"--override-share 的格式为 数据集=理由，而不是 {value!r}",
            )
        overrides[name.strip()] = reason.strip()
    return overrides


@app.command("create")
@command_errors
def create(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="Project spec (YAML) of an approved application.")],
    override_share: Annotated[
        list[str],
        typer.Option(
            "--override-share",
            help="DATASET=REASON: approve a not-shared or level-5 dataset anyway, with the reason (audited).",
        ),
    ] = [],  # noqa: B006 (typer needs a list default)
    prepare: Annotated[bool, typer.Option("--prepare/--no-prepare", help="Prepare the data now.")] = True,
    without_application: Annotated[
        str | None,
        typer.Option(
            "--without-application",
            metavar="REASON",
            help="Create a spec that names no approved application, for this reason (audited).",
        ),
    ] = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate an approved project spec, store it, and provision the workspace.

    The spec names its approved application (application: ID): the committee's decision must verify,
    a signed DUA must be recorded (enclave agreement record), and the spec may not go beyond either
    (application_widened). A spec without one needs --without-application REASON (audited), else
    application_required (exit 4). To generate the spec from the application instead, use
    enclave project provision APP --id ID.

    A spec whose period has ended is refused (project_ended); one that has not started yet is
    created, and usable from its start date."""
    enclave = get_context(ctx)
    who = actor_or_default(actor)
    with audit.refusals_recorded(
        enclave.session, AuditAction.PROJECT_CREATE_REFUSED, actor=who, obj=f"spec:{spec.name}"
    ):
        project_spec = load_project_spec(spec)
        overrides = _parse_overrides(override_share)
        with (
            ProgressView(f"prepare {project_spec.id}", as_json=as_json or not prepare) as view,
            enclave.session() as session,
        ):
            result = projects.create_project(
                session,
                enclave.paths,
                project_spec,
                actor=who,
                overrides=overrides,
                preparer=_preparer(view) if prepare else None,
                without_application=without_application,
            )
            dropped = projects.dropped_at_preparation(
                project_spec, projects.dataset_specs_for(session, project_spec.id)
            )
    result["dropped_columns"] = dropped
    _emit_created(result, as_json)


def _emit_created(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(result)
        return
    console.print(f"project [bold]{result['project']}[/] created: {result['state']} / 项目已创建")
    for name, columns in result["dropped_columns"].items():
        console.print(
            f"  {name}: {', '.join(columns)} dropped at preparation (direct identifiers / free text)"
        )


@app.command("provision")
@command_errors
def provision(
    ctx: typer.Context,
    application: Annotated[str, typer.Argument(help="The approved application's id.")],
    project_id: Annotated[str, typer.Option("--id", help="The new project's id.")],
    user: Annotated[str, typer.Option("--user", help="Who is acting: a steward (not on the team).")],
    narrow: Annotated[
        Path | None,
        typer.Option(
            "--narrow",
            metavar="NARROW.yaml",
            help="Narrow the approval: datasets, analysts, period, time_ranges, min_cell_count, access "
            "(never wider).",
        ),
    ] = None,
    prepare: Annotated[bool, typer.Option("--prepare/--no-prepare", help="Prepare the data now.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Provision a project from an approved application (R-APP-15, T14): the spec is generated
    from the approved form (the applicant is the PI, the team are the analysts, the committee
    members outside the team review its exports), optionally narrowed, and created as
    enclave project create would, with every check; a signed DUA must be recorded first."""
    enclave = get_context(ctx)
    with audit.refusals_recorded(
        enclave.session, AuditAction.PROJECT_CREATE_REFUSED, actor=user, obj=f"application:{application}"
    ):
        narrowing = load_yaml(narrow) if narrow is not None else None
        with (
            ProgressView(f"prepare {project_id}", as_json=as_json or not prepare) as view,
            enclave.session() as session,
        ):
            project = provisioning.provision_from_application(
                session,
                enclave.paths,
                application,
                project_id=project_id,
                actor=user,
                narrowing=narrowing,
                preparer=_preparer(view) if prepare else None,
            )
            spec = projects.current_spec(session, project.id)
            result = {
                "project": project.id,
                "state": project.state,
                "spec_version": project.current_spec_version,
                "application": project.application_id,
                "spec": spec.model_dump(mode="json"),
                "dropped_columns": projects.dropped_at_preparation(
                    spec, projects.dataset_specs_for(session, project.id)
                ),
            }
    _emit_created(result, as_json)


@app.command("prepare")
@command_errors
def prepare(
    ctx: typer.Context, project_id: str, actor: ActorOption = None, as_json: JsonOption = False
) -> None:
    """Prepare the project's data again, e.g. for a new dataset version."""
    enclave = get_context(ctx)
    with ProgressView(f"prepare {project_id}", as_json=as_json) as view, enclave.session() as session:
        result = projects.prepare_project(
            session, enclave.paths, project_id, actor=actor_or_default(actor), preparer=_preparer(view)
        )
    if as_json:
        emit_json(result)
    else:
        console.print(f"project {project_id} prepared at version {result['spec_version']}")


@app.command("list")
@command_errors
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List projects."""
    enclave = get_context(ctx)
    with enclave.session() as session:
        rows = [
            {
                "id": p.id,
                "title": p.title,
                "state": p.state,
                "locked": p.locked,
                "access": p.access,
                "pi": p.pi,
                "period": {"start": p.period_start, "end": p.period_end},
                "spec_version": p.current_spec_version,
                "retention_review": lifecycle.retention_review(session, p),  # R-LIFE-8
            }
            for p in projects.list_projects(session)
        ]
    if as_json:
        emit_json(rows)
        return
    print_table(
        ("id", "title", "state", "access", "PI", "period", "version", "data review"),
        [
            (
                r["id"],
                r["title"],
                r["state"] + (" (locked)" if r["locked"] else ""),
                r["access"],
                r["pi"],
                f"{r['period']['start']} → {r['period']['end']}",
                r["spec_version"],
                _review(r),
            )
            for r in rows
        ],
    )


@app.command("show")
@command_errors
def show(ctx: typer.Context, project_id: str, as_json: JsonOption = False) -> None:
    """Show a project: state, members, approved datasets and columns, spec versions."""
    enclave = get_context(ctx)
    with enclave.session() as session:
        info = projects.describe(session, project_id)
    if as_json:
        emit_json(info)
        return
    console.print(f"[bold]{info['id']}[/] — {info['title']} ({info['state']}, {info['access']})")
    console.print(
        f"period {info['period']['start']} → {info['period']['end']} · spec v{info['spec_version']}"
    )
    print_table(("role", "user"), [(member["role"], member["user"]) for member in info["members"]])
    print_table(
        ("dataset", "columns"), [(name, ", ".join(cols)) for name, cols in info["spec"]["datasets"].items()]
    )
    console.print(f"retained data review (R-LIFE-8) / 留存数据复审: {_review(info)}")


def _review(row: dict[str, Any]) -> str:
    """The 5-yearly retained-data review: reminders due, or the next date."""
    review = row["retention_review"]
    if review["reminders"]:
        last = review["reminders"][-1]
        return f"DUE since {last['due']} (reminded {last['recorded_at'][:10]}); next {review['next_due']}"
    return f"next {review['next_due']}"


def _emit_state(project_id: str, state: str, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        emit_json({"project": project_id, "state": state, **(extra or {})})
    else:
        console.print(f"project {project_id}: {state}")


def _change_state(
    ctx: typer.Context,
    change: Callable[..., Project],
    project_id: str,
    actor: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """One lifecycle step (``lifecycle.suspend``, ``resume``, ``expire``) in one transaction, then the
    project's new state printed."""
    with get_context(ctx).session() as session:
        project = change(session, project_id, actor=actor_or_default(actor), **options)
        _emit_state(project.id, project.state, as_json)


@app.command("suspend")
@command_errors
def suspend(
    ctx: typer.Context,
    project_id: str,
    reason: ReasonOption,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Emergency stop: end sessions, freeze exports, revoke access (R-LIFE-10)."""
    _change_state(ctx, lifecycle.suspend, project_id, actor, as_json, reason=reason, hooks=revocation_hooks())


@app.command("resume")
@command_errors
def resume(
    ctx: typer.Context,
    project_id: str,
    reason: ReasonOption,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lift a suspension."""
    _change_state(ctx, lifecycle.resume, project_id, actor, as_json, reason=reason)


@app.command("expire")
@command_errors
def expire(
    ctx: typer.Context,
    project_id: str,
    reason: Annotated[str, typer.Option("--reason")] = "ended by a steward",
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """End the project's use now: access revoked, exports frozen."""
    _change_state(ctx, lifecycle.expire, project_id, actor, as_json, reason=reason, hooks=revocation_hooks())


@app.command("destroy")
@command_errors
def destroy(
    ctx: typer.Context, project_id: str, actor: ActorOption = None, as_json: JsonOption = False
) -> None:
    """Destroy the project's data, volumes and keys; write a signed destruction certificate."""
    enclave = get_context(ctx)
    with ProgressView(f"destroy {project_id}", as_json=as_json) as view, enclave.session() as session:
        certificate = lifecycle.destroy(
            session,
            enclave.paths,
            project_id,
            actor=actor_or_default(actor),
            hooks=revocation_hooks(),
            volume_destroyers=volume_destroyers(enclave),
            progress=view.update,
        )
    _emit_state(project_id, "destroyed", as_json, {"certificate": certificate})


@app.command("sweep")
@command_errors
def sweep(
    ctx: typer.Context,
    today: Annotated[str | None, typer.Option("--today", help="Pretend today is YYYY-MM-DD.")] = None,
    grace_days: Annotated[
        int,
        typer.Option("--grace-days", min=1, max=30, help="Destroy on day end + N (R-LIFE-4: at most 30)."),
    ] = lifecycle.MAX_DESTRUCTION_GRACE_DAYS,
    every: Annotated[
        int,
        typer.Option("--every", min=0, help="Run again every N seconds (a service for the hub); 0: once."),
    ] = 0,
    as_json: JsonOption = False,
) -> None:
    """Expire projects past their end; destroy them at most 30 days later; record the 5-yearly
    reviews of retained data. With --every, a loop (the hub runs it as the lifecycle-sweep service)."""
    enclave = get_context(ctx)
    day = parse_today(today)
    while True:
        try:
            result = lifecycle.sweep(
                enclave.session,
                enclave.paths,
                today=day,
                grace_days=grace_days,
                hooks=revocation_hooks(),
                volume_destroyers=volume_destroyers(enclave),
            )
            # Accounts end by themselves (R-APP-17): each newly ended one is audited once.
            with enclave.session() as session:
                rows = accounts.record_expiries(session, actor="sweep", today=day)
                ended = [row["user"] for row in rows if row["newly_recorded"]]
        except Exception as error:  # as a service: say so and try again, never die in a restart loop
            if every <= 0:
                raise
            err_console.print(f"sweep failed, retried in {every} s: {type(error).__name__}: {error}")
            time.sleep(every)
            continue
        if as_json:
            emit_json({**result.to_dict(), "accounts_ended": ended})
        else:
            reviews = [f"{r['project']}@{r['due']}" for r in result.reviews]
            console.print(
                f"expired: {result.expired or '-'} · destroyed: {result.destroyed or '-'}"
                f" · reviews due: {reviews or '-'} · accounts ended: {ended or '-'}"
                f" · failed: {result.failed or '-'}"
            )
        if every <= 0:
            if result.failed:
                raise EnclaveError(
                    "sweep_incomplete",
                    f"The sweep could not finish {len(result.failed)} step(s); they are retried next time",
                    f"清理任务有 {len(result.failed)} 个步骤未完成；下次运行时重试",
                    details={"failed": result.failed},
                )
            return
        time.sleep(every)
