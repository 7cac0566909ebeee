"""Batch runs as the analyst and the steward see them (issue 12): submit, list, describe, cancel,
logs, outputs, and the approved templates.

Every rule is here once, for the CLI, the runs service's API and pages, and the client alike:
who may run (the same check as a workspace and the gateway: an analyst of an active, unlocked
project inside its period), what a notebook and its parameters may be (``notebooks``), who may see a
run (its analyst, the project's PI, stewards and security auditors; the committee for the reruns of
exports it reviews), and the queue's per-analyst cap. A run is queued here; ``worker`` runs it.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from enclave import audit, projects
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db.models import ProjectMember, Run, RunTemplate
from enclave.errors import BadInput, Forbidden, NotFound, Refused
from enclave.filestore import FileStore
from enclave.prepare import layout
from enclave.query_service import check_analyst_access
from enclave.roles import ProjectRole, Role, check_role, has_role
from enclave.runs import notebooks
from enclave.runs.states import RunActor, RunState, is_terminal, move

DEFAULT_IMAGE = "enclave/analyst:latest"
DEFAULT_TIMEOUT_S = 3600
MAX_TIMEOUT_S = 6 * 3600
MAX_QUEUED_PER_ANALYST = 20  # queued runs per analyst and project: the queue is not a store
KIND_RUN = "run"
KIND_RERUN = "rerun"
TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
LOG_FILE = "log.txt"


def run_store(paths: Paths) -> FileStore:
    """Notebooks, executed notebooks, outputs and final logs of runs, by sha256, in the vault.

    The worker runs as root (it starts containers); on a single host the other services run as the
    home's owner and must read what it stored, so a root writer hands what it makes to that owner.
    """
    return FileStore(paths.vault / "runs" / "files", owner=_home_owner(paths))


def _home_owner(paths: Paths) -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    try:
        found = paths.home.stat()
    except FileNotFoundError:
        return None
    return None if found.st_uid == 0 else (found.st_uid, found.st_gid)


def run_dir(paths: Paths, run_id: str) -> Path:
    """A run's working folder while it runs (``in/``, ``out/``, ``log.txt``); removed at its end."""
    return paths.home / "runs" / check_run_id(run_id)


def check_run_id(run_id: str) -> str:
    if not re.fullmatch(r"run-[0-9a-f]{12}", run_id or ""):
        raise NotFound("run_not_found", f"No run {run_id!r}", f"没有批处理作业 {run_id!r}")
    return run_id


def store_bytes(paths: Paths, data: bytes, name: str) -> str:
    """Store ``data`` in the run store; its sha256."""
    store = run_store(paths)
    store.make_dir(store.staging)
    source = store.staging / f"in-{uuid.uuid4().hex}"
    try:
        source.write_bytes(data)
        staged = store.stage(source, name, max_bytes=max(len(data), 1))
        store.commit(staged)
    finally:
        source.unlink(missing_ok=True)
    return staged.sha256


def read_stored(paths: Paths, sha256: str) -> bytes:
    path = run_store(paths).path_for(sha256)
    if not path.is_file():
        raise NotFound("run_file_missing", f"Stored file {sha256} is missing", f"存储的文件 {sha256} 缺失")
    return path.read_bytes()


# ---- submit ------------------------------------------------------------------------------------


def _timeout(timeout_s: int | None) -> int:
    if timeout_s is None:
        return DEFAULT_TIMEOUT_S
    if not isinstance(timeout_s, int) or isinstance(timeout_s, bool) or not 1 <= timeout_s <= MAX_TIMEOUT_S:
        raise BadInput(
            "run_timeout_invalid",
            f"The time limit must be 1..{MAX_TIMEOUT_S} seconds",
            f"时间限制必须为 1 到 {MAX_TIMEOUT_S} 秒",
            details={"max": MAX_TIMEOUT_S},
        )
    return timeout_s


def _check_queue_room(session: Session, project: str, user: str) -> None:
    queued = session.scalar(
        select(func.count())
        .select_from(Run)
        .where(Run.project_id == project, Run.user == user, Run.state == RunState.QUEUED.value)
    )
    if (queued or 0) >= MAX_QUEUED_PER_ANALYST:
        raise Refused(
            "run_queue_full",
            f"You already have {MAX_QUEUED_PER_ANALYST} runs waiting in this project: wait or cancel some",
            f"您在此项目中已有 {MAX_QUEUED_PER_ANALYST} 个等待中的作业：请等待或取消部分作业",
            details={"cap": MAX_QUEUED_PER_ANALYST},
        )


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


def submit(
    session: Session,
    paths: Paths,
    *,
    project: str,
    user: str,
    notebook: bytes,
    notebook_name: str,
    parameters: dict[str, Any] | None = None,
    template: str | None = None,
    actor: str,
    timeout_s: int | None = None,
    image: str = DEFAULT_IMAGE,
) -> Run:
    """Queue ``user``'s notebook (or the project's approved ``template``) with ``parameters``.

    ``actor`` must be ``user``: a run always uses its own analyst's identity, so nobody runs a
    notebook as someone else.
    """
    if actor != user:
        raise Forbidden(
            "run_not_own",
            f"{actor} cannot submit a run as {user}: a run uses its own analyst's identity",
            f"{actor} 不能以 {user} 的身份提交作业：作业只能使用提交者本人的身份",
        )
    check_analyst_access(session, project, user)
    timeout = _timeout(timeout_s)
    if template is not None:
        if notebook:
            raise BadInput(
                "run_template_with_notebook",
                "A template run takes parameters only, not a notebook",
                "模板作业只接受参数，不接受笔记本",
            )
        chosen = get_template(session, project, template)
        checked = notebooks.check_parameters(parameters or {}, json.loads(chosen.parameters_json))
        name, sha = chosen.notebook_name, chosen.notebook_sha256
        cells_total = notebooks.code_cells(notebooks.load(read_stored(paths, sha)))
    else:
        name = notebooks.check_name(notebook_name)
        parsed = notebooks.load(notebook)
        checked = notebooks.check_parameters(parameters or {})
        sha = store_bytes(paths, notebook, name)
        cells_total = notebooks.code_cells(parsed)
    _check_queue_room(session, project, user)
    run = Run(
        id=new_run_id(),
        project_id=project,
        user=user,
        kind=KIND_RUN,
        template=template,
        notebook_name=name,
        notebook_sha256=sha,
        parameters_json=notebooks.canonical_json(checked),
        image=image,
        data_version=layout.current_version(paths, project),
        state=RunState.QUEUED.value,
        cancel_requested=False,
        timeout_s=timeout,
        created_at=audit.now_iso(),
        progress_json=json.dumps({"cells_done": 0, "cells_total": cells_total}),
    )
    session.add(run)
    session.flush()
    audit.record(
        session,
        AuditAction.RUN_SUBMIT,
        actor=actor,
        obj=f"run:{run.id}",
        project=project,
        details={
            "run": run.id,
            "notebook": name,
            "notebook_sha256": sha,
            "parameters": checked,
            "template": template,
            "data_version": run.data_version,
            "timeout_s": timeout,
        },
    )
    return run


def rerun(
    session: Session,
    paths: Paths,
    *,
    run_id: str,
    actor: str,
    export_request_id: str | None = None,
) -> Run:
    """Queue a repetition of a finished run with the same notebook, parameters, data version, image
    and analyst identity: the export review's reproducibility check (the comparison is the review's).
    """
    original = get_run(session, run_id)
    if original.kind != KIND_RUN or original.state != RunState.SUCCEEDED.value:
        raise Forbidden(
            "run_not_rerunnable",
            f"Run {run_id} is a {original.kind} in state {original.state}: only a succeeded run is repeated",
            f"作业 {run_id} 为 {original.kind}，状态 {original.state}：只有成功的作业可以重新运行",
        )
    repeat = Run(
        id=new_run_id(),
        project_id=original.project_id,
        user=original.user,
        kind=KIND_RERUN,
        rerun_of=original.id,
        export_request_id=export_request_id,
        template=original.template,
        notebook_name=original.notebook_name,
        notebook_sha256=original.notebook_sha256,
        parameters_json=original.parameters_json,
        image=original.image,
        data_version=original.data_version,
        state=RunState.QUEUED.value,
        cancel_requested=False,
        timeout_s=original.timeout_s,
        created_at=audit.now_iso(),
        progress_json=json.dumps({"cells_done": 0, "cells_total": progress(original).get("cells_total", 0)}),
    )
    session.add(repeat)
    session.flush()
    audit.record(
        session,
        AuditAction.RUN_RERUN,
        actor=actor,
        obj=f"run:{repeat.id}",
        project=repeat.project_id,
        details={"run": repeat.id, "rerun_of": original.id, "export_request": export_request_id},
    )
    return repeat


# ---- reading -----------------------------------------------------------------------------------


def get_run(session: Session, run_id: str) -> Run:
    run = session.get(Run, check_run_id(run_id))
    if run is None:
        raise NotFound("run_not_found", f"No run {run_id!r}", f"没有批处理作业 {run_id!r}")
    return run


def can_see(session: Session, run: Run, viewer: str) -> bool:
    """The run's analyst, the project's PI, stewards and security auditors; the project's committee
    for the reruns of export requests."""
    if viewer == run.user:
        return True
    project_roles = projects.roles_of(session, run.project_id, viewer)
    if ProjectRole.PI.value in project_roles:
        return True
    if run.kind == KIND_RERUN and ProjectRole.COMMITTEE.value in project_roles:
        return True
    return has_role(session, viewer, Role.STEWARD) or has_role(session, viewer, Role.SECURITY_AUDITOR)


def get_visible(session: Session, run_id: str, viewer: str) -> Run:
    """The run if ``viewer`` may see it; ``run_not_found`` otherwise (never says it exists)."""
    run = get_run(session, run_id)
    if not can_see(session, run, viewer):
        raise NotFound("run_not_found", f"No run {run_id!r}", f"没有批处理作业 {run_id!r}")
    return run


def list_runs(
    session: Session, *, viewer: str, project: str | None = None, state: str | None = None
) -> list[Run]:
    """The runs ``viewer`` may see (``can_see``'s rule, as one query), newest first."""
    query = select(Run).order_by(Run.created_at.desc())
    if project is not None:
        query = query.where(Run.project_id == project)
    if state is not None:
        query = query.where(Run.state == RunState(state).value)
    if not (has_role(session, viewer, Role.STEWARD) or has_role(session, viewer, Role.SECURITY_AUDITOR)):
        memberships = session.execute(
            select(ProjectMember.project_id, ProjectMember.role).where(ProjectMember.username == viewer)
        ).all()
        led = {p for p, role in memberships if role == ProjectRole.PI.value}
        reviewed = {p for p, role in memberships if role == ProjectRole.COMMITTEE.value}
        query = query.where(
            or_(
                Run.user == viewer,
                Run.project_id.in_(led),
                and_(Run.kind == KIND_RERUN, Run.project_id.in_(reviewed)),
            )
        )
    return list(session.scalars(query))


def progress(run: Run) -> dict[str, int]:
    return json.loads(run.progress_json) if run.progress_json else {}


def describe(session: Session, run: Run) -> dict[str, Any]:
    """The run as JSON (the CLI's ``--json``, the API, the pages)."""
    return {
        "id": run.id,
        "project": run.project_id,
        "user": run.user,
        "kind": run.kind,
        "template": run.template,
        "rerun_of": run.rerun_of,
        "export_request": run.export_request_id,
        "notebook": {"name": run.notebook_name, "sha256": run.notebook_sha256},
        "parameters": json.loads(run.parameters_json),
        "image": run.image,
        "image_digest": run.image_digest,
        "data_version": run.data_version,
        "state": run.state,
        "cancel_requested": run.cancel_requested,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "timeout_s": run.timeout_s,
        "progress": progress(run),
        "error": json.loads(run.error_json) if run.error_json else None,
        "outputs": [{"name": o.name, "sha256": o.sha256, "size": o.size} for o in run.outputs],
        "executed": {"sha256": run.executed_sha256} if run.executed_sha256 else None,
        "queries": [
            {"query_id": q.query_id, "sql": q.sql, "outcome": q.outcome, "at": q.at} for q in run.queries
        ],
        "reproduction": json.loads(run.reproduction_json) if run.reproduction_json else None,
    }


def log_text(paths: Paths, run: Run) -> str:
    """The live log while the run runs; the stored one once it ended ("" before it started)."""
    if run.log_sha256:
        return read_stored(paths, run.log_sha256).decode("utf-8", errors="replace")
    live = run_dir(paths, run.id) / LOG_FILE
    try:
        return live.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def output_path(paths: Paths, run: Run, name: str) -> Path:
    """The stored file of one of the run's outputs (checked against its recorded hash)."""
    for output in run.outputs:
        if output.name == name:
            path = run_store(paths).path_for(output.sha256)
            if not run_store(paths).verify(output.sha256):
                raise Refused(
                    "run_output_tampered",
                    f"The stored output {name} of run {run.id} no longer matches its recorded sha256",
                    f"作业 {run.id} 的已存储输出 {name} 与记录的 sha256 不再一致",
                    details={"run": run.id, "file": name},
                )
            return path
    raise NotFound(
        "run_output_not_found",
        f"Run {run.id} has no output {name!r}",
        f"作业 {run.id} 没有输出 {name!r}",
    )


# ---- cancel ------------------------------------------------------------------------------------


def cancel(session: Session, run_id: str, *, actor: str) -> Run:
    """Cancel a queued run at once; ask the worker to stop a running one. The run's own analyst or
    a steward may; a finished run cannot be cancelled."""
    run = get_visible(session, run_id, actor)
    steward = has_role(session, actor, Role.STEWARD)
    if run.kind == KIND_RERUN and not steward:
        # A rerun is the export review's check of the analyst's results, not the analyst's to stop.
        raise Forbidden(
            "run_rerun_not_cancellable",
            f"Run {run.id} is the reproducibility rerun of an export: only a steward may cancel it",
            f"作业 {run.id} 是导出的可复现性重跑：只有数据管理员可以取消",
        )
    if actor != run.user and not steward:
        raise Forbidden(
            "run_not_own",
            f"Only {run.user} or a steward may cancel run {run.id}",
            f"只有 {run.user} 或数据管理员可以取消作业 {run.id}",
        )
    if is_terminal(run.state):
        raise Forbidden(
            "run_state_invalid",
            f"Run {run.id} is {run.state}: it cannot be cancelled",
            f"作业 {run.id} 的状态为 {run.state}：不能取消",
            details={"run": run.id, "from": run.state, "to": RunState.CANCELLED.value},
        )
    if run.state == RunState.QUEUED.value:
        move(session, run, RunState.CANCELLED, RunActor.ANALYST, by=actor)
        return run
    if not run.cancel_requested:
        run.cancel_requested = True
        audit.record(
            session,
            AuditAction.RUN_CANCEL,
            actor=actor,
            obj=f"run:{run.id}",
            project=run.project_id,
            outcome="requested",
            details={"run": run.id, "user": run.user, "state": run.state},
        )
        session.flush()
    return run


# ---- templates ---------------------------------------------------------------------------------


def get_template(session: Session, project: str, name: str) -> RunTemplate:
    template = session.get(RunTemplate, (project, name))
    if template is None or template.retired_at is not None:
        raise NotFound(
            "run_template_not_found",
            f"Project {project} has no approved template {name!r}",
            f"项目 {project} 没有已批准的模板 {name!r}",
        )
    return template


def add_template(
    session: Session,
    paths: Paths,
    *,
    project: str,
    name: str,
    title: str,
    notebook: bytes,
    notebook_name: str,
    actor: str,
) -> RunTemplate:
    """A steward approves a notebook as one of the project's templates; its parameters are the
    ``parameters`` cell's names, and analysts may change only those."""
    check_role(session, actor, Role.STEWARD, "approve a run template", "批准作业模板")
    projects.get(session, project)
    if not TEMPLATE_NAME.match(name or ""):
        raise BadInput(
            "run_template_name_invalid",
            f"{name!r} is not a template name ([a-z][a-z0-9_-]*, at most 64)",
            f"{name!r} 不是有效的模板名（[a-z][a-z0-9_-]*，最多 64 个字符）",
        )
    if not title or len(title) > 200:
        raise BadInput(
            "run_template_title_invalid", "A title of 1..200 characters", "标题须为 1 到 200 个字符"
        )
    if session.get(RunTemplate, (project, name)) is not None:
        raise Refused(
            "run_template_exists",
            f"Project {project} already has a template {name!r}; "
            "templates are never replaced: use a new name",
            f"项目 {project} 已有模板 {name!r}；模板不可替换：请使用新名称",
        )
    checked_name = notebooks.check_name(notebook_name)
    declared = notebooks.declared_parameters(notebooks.load(notebook))
    template = RunTemplate(
        project_id=project,
        name=name,
        title=title,
        notebook_name=checked_name,
        notebook_sha256=store_bytes(paths, notebook, checked_name),
        parameters_json=notebooks.canonical_json(declared),
        approved_by=actor,
        approved_at=audit.now_iso(),
    )
    session.add(template)
    session.flush()
    audit.record(
        session,
        AuditAction.RUN_TEMPLATE_ADD,
        actor=actor,
        obj=f"run_template:{project}/{name}",
        project=project,
        details={"template": name, "notebook_sha256": template.notebook_sha256, "parameters": declared},
    )
    return template


def retire_template(session: Session, *, project: str, name: str, actor: str) -> RunTemplate:
    check_role(session, actor, Role.STEWARD, "retire a run template", "停用作业模板")
    template = get_template(session, project, name)
    template.retired_at = audit.now_iso()
    audit.record(
        session,
        AuditAction.RUN_TEMPLATE_RETIRE,
        actor=actor,
        obj=f"run_template:{project}/{name}",
        project=project,
        details={"template": name},
    )
    session.flush()
    return template


def list_templates(session: Session, project: str) -> list[RunTemplate]:
    return list(
        session.scalars(
            select(RunTemplate)
            .where(RunTemplate.project_id == project, RunTemplate.retired_at.is_(None))
            .order_by(RunTemplate.name)
        )
    )


def describe_template(template: RunTemplate) -> dict[str, Any]:
    return {
        "project": template.project_id,
        "name": template.name,
        "title": template.title,
        "notebook": {"name": template.notebook_name, "sha256": template.notebook_sha256},
        "parameters": json.loads(template.parameters_json),
        "approved_by": template.approved_by,
        "approved_at": template.approved_at,
    }
