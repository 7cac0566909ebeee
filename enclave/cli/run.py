"""``enclave run``: batch runs of notebooks with papermill (issue 12): submit (optionally waiting for the
end), list, show, logs, cancel, outputs, the steward's templates, the worker and the runs service.

Thin: every rule is ``enclave.runs.service``'s; the worker is put together once in
``enclave.runs.compose`` (for ``worker``, ``submit --wait`` and the service). Exit codes as every
command (ARCHITECTURE §9); ``submit --wait`` exits 1 when the run ended but did not succeed.
"""

from __future__ import annotations

import datetime as dt
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from typer.core import TyperCommand

from enclave.cli import common
from enclave.cli.common import (
    EnclaveContext,
    JsonOption,
    command_errors,
    console,
    emit_json,
    err_console,
    get_context,
    print_result,
    print_table,
)
from enclave.errors import BadInput

NAME = "run"
app = typer.Typer(
    help="Batch runs: notebooks executed with papermill in a locked-down container. / 笔记本批处理作业。",
    no_args_is_help=True,
)
template_app = typer.Typer(
    help="Notebooks a steward approved for a project; analysts run them with parameters. / 作业模板。",
    no_args_is_help=True,
)
app.add_typer(template_app, name="template")

UserOption = Annotated[str, typer.Option("--user", help="Who is acting.")]
RunArgument = Annotated[str, typer.Argument(help="The run id (run-...).")]
POLL_S = 1.0
FAILED_EXIT = 1  # the run ended, but not as succeeded (as `audit verify` exits 1 on a broken chain)


class PairOptions(TyperCommand):
    """``-p NAME VALUE`` as papermill takes it: an option with two values, given any number of times
    (typer has no annotation for a list of pairs)."""

    PAIRS = ("parameter", "raw_parameter")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.name in self.PAIRS:
                param.nargs = 2
                param.metavar = "NAME VALUE"


# ---- parameters, as papermill reads them -------------------------------------------------------


def resolve_value(text: str) -> Any:
    """papermill's ``-p`` typing: true/false, null/None, an int, a float, else the text itself."""
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    if text in ("None", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _plain(value: Any) -> Any:
    """YAML's dates as ISO text (papermill would pass them as text too); everything else as it is."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _yaml_mapping(text: str, where: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise BadInput(
            "run_parameters_invalid",
            f"{where}: not valid YAML: {error}",
            f"{where}：不是有效的 YAML：{error}",
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise BadInput(
            "run_parameters_invalid",
            f"{where}: the parameters must be a mapping of names to values",
            f"{where}：参数必须是名称到值的映射",
        )
    return {str(name): _plain(value) for name, value in loaded.items()}


def collect_parameters(
    pairs: list[tuple[str, str]] | None,
    raw_pairs: list[tuple[str, str]] | None,
    parameters_yaml: str | None,
    parameters_file: Path | None,
) -> dict[str, Any]:
    """The parameters in papermill's order: the file, then ``-y``, then ``-p``, then ``-r``."""
    parameters: dict[str, Any] = {}
    if parameters_file is not None:
        parameters.update(_yaml_mapping(_read_text(parameters_file), str(parameters_file)))
    if parameters_yaml is not None:
        parameters.update(_yaml_mapping(parameters_yaml, "-y"))
    for name, value in pairs or []:
        parameters[name] = resolve_value(value)
    for name, value in raw_pairs or []:
        parameters[name] = value
    return parameters


def _unreadable(path: Path, why: str) -> BadInput:
    return BadInput(
        "run_file_unreadable",
        f"Cannot read {path}: {why}",
        f"无法读取 {path}：{why}",
        details={"file": str(path)},
    )


def _read_bytes(path: Path, cap: int) -> bytes:
    """At most ``cap`` bytes of a regular file (a FIFO or a device would block or never end)."""
    if not path.is_file():
        raise _unreadable(path, "not a file")
    try:
        with path.open("rb") as handle:
            return handle.read(cap)
    except OSError as error:
        raise _unreadable(path, error.strerror or str(error)) from None


def _read_text(path: Path) -> str:
    data = _read_bytes(path, 1024 * 1024)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _unreadable(path, "not UTF-8 text") from None


def _read_notebook(path: Path) -> bytes:
    from enclave.runs.notebooks import MAX_NOTEBOOK_BYTES

    return _read_bytes(path, MAX_NOTEBOOK_BYTES + 1)  # one byte more: the service says it is too large


def _check_state(state: str | None) -> str | None:
    from enclave.runs.states import RunState

    if state is not None and state not in {s.value for s in RunState}:
        raise BadInput(
            "run_state_unknown",
            f"Unknown run state {state!r}; one of: {', '.join(s.value for s in RunState)}",
            f"未知的作业状态 {state!r}；可选：{', '.join(s.value for s in RunState)}",
        )
    return state


def _describe(enclave: EnclaveContext, run_id: str, user: str) -> dict[str, Any]:
    from enclave.runs import service

    with enclave.session() as session:
        return service.describe(session, service.get_visible(session, run_id, user))


def _summary(info: dict[str, Any]) -> str:
    progress = info.get("progress") or {}
    line = (
        f"{info['id']} ({info['project']}, {info['user']}): {info['state']}"
        f"  {progress.get('cells_done', 0)}/{progress.get('cells_total', 0)} cells"
    )
    if _cancelling(info):
        line += "  (cancel requested)"
    return line


def _cancelling(info: dict[str, Any]) -> bool:
    return bool(info.get("cancel_requested")) and info["state"] == "running"


# ---- submit and wait -----------------------------------------------------------------------------


@app.command("submit", cls=PairOptions)
@command_errors
def submit(
    ctx: typer.Context,
    project: Annotated[str, typer.Option("--project", help="The project the run works in.")],
    user: Annotated[str, typer.Option("--user", help="The analyst whose identity the run uses.")],
    notebook: Annotated[
        Path | None, typer.Argument(help="The notebook (.ipynb); leave it out with --template.")
    ] = None,
    parameter: Annotated[
        list[tuple] | None,  # type: ignore[type-arg]
        typer.Option(
            "-p", "--parameter", help="A parameter, typed as papermill does (int, float, true, null, text)."
        ),
    ] = None,
    raw_parameter: Annotated[
        list[tuple] | None,  # type: ignore[type-arg]
        typer.Option("-r", "--parameter-raw", help="A parameter kept as text."),
    ] = None,
    parameters_yaml: Annotated[
        str | None, typer.Option("-y", "--parameters-yaml", help="Parameters as a YAML mapping.")
    ] = None,
    parameters_file: Annotated[
        Path | None, typer.Option("-f", "--parameters-file", help="Parameters from a YAML file.")
    ] = None,
    template: Annotated[
        str | None, typer.Option("--template", help="Run the project's approved template of this name.")
    ] = None,
    timeout: Annotated[
        int | None, typer.Option("--timeout", help="Time limit in seconds (default: one hour).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Execute the run here and wait for its end, showing progress.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Queue a notebook (or an approved template) to run with parameters in a fresh workspace container."""
    from enclave.runs import service

    if notebook is not None and template is not None:
        raise BadInput(
            "run_template_with_notebook",
            "A template run takes parameters only, not a notebook",
            "模板作业只接受参数，不接受笔记本",
        )
    if notebook is None and template is None:
        raise BadInput(
            "run_notebook_missing",
            "Give a notebook file or --template NAME",
            "请提供笔记本文件或 --template 名称",
        )
    parameters = collect_parameters(parameter, raw_parameter, parameters_yaml, parameters_file)
    data = _read_notebook(notebook) if notebook is not None else b""
    enclave = get_context(ctx)
    with enclave.session() as session:
        run = service.submit(
            session,
            enclave.paths,
            project=project,
            user=user,
            notebook=data,
            notebook_name=notebook.name if notebook is not None else "",
            parameters=parameters,
            template=template,
            actor=user,
            timeout_s=timeout,
            image=_settings().image,
        )
        info = service.describe(session, run)
    if not wait:
        print_result(info, as_json, f"run {info['id']}: {info['state']}")
        return
    info = wait_for_run(enclave, info["id"], user)
    print_result(info, as_json, _ending_text(info))
    if info["state"] != "succeeded":
        raise typer.Exit(FAILED_EXIT)


def _settings(**overrides: Any) -> Any:
    from enclave.runs import compose

    return compose.settings_from_env(**overrides)


def _ending_text(info: dict[str, Any]) -> str:
    text = _summary(info)
    if info.get("error"):
        error = info["error"]
        text += f"\n  [{error.get('code')}] {error.get('message')}\n  {error.get('message_zh')}"
    for output in info.get("outputs") or []:
        text += f"\n  {output['name']}  {output['size']} bytes  {output['sha256'][:12]}"
    return text


class ProgressView(common.ProgressView):
    """A run's progress while waiting (cells done of total): a bar on a terminal, one plain line per
    change otherwise (logs, CI)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id, unit="cells", every_change=True, console=err_console)

    def _plain(self, step: str, done: int, total: int) -> str:
        return f"{self.label}: {step} {done}/{total} cells"


def wait_for_run(enclave: EnclaveContext, run_id: str, user: str) -> dict[str, Any]:
    """Execute the run in this process when a slot is free (unless another worker took it first) and
    show its progress until it ends; its final description.

    Ctrl-C once asks a run executed here to cancel (and keeps waiting for its end); a second Ctrl-C,
    or one while another worker executes it, stops waiting and leaves the run as it is.
    """
    from enclave import db
    from enclave.runs import compose, service
    from enclave.runs.states import is_terminal

    settings = _settings()
    open_session = compose.session_opener(db.connect(enclave.database_url))
    view = ProgressView(run_id)
    executing: threading.Thread | None = None
    worker = None
    cancelling = False
    try:
        while True:
            try:
                info = _describe(enclave, run_id, user)
                progress = info["progress"] or {}
                view.update(info["state"], progress.get("cells_done", 0), progress.get("cells_total", 0))
                if is_terminal(info["state"]):
                    break
                if executing is not None and not executing.is_alive():
                    err_console.print(f"{run_id}: the worker stopped before the run ended", markup=False)
                    break
                if info["state"] == "queued" and executing is None:
                    worker = worker or compose.make_worker(open_session, enclave.paths, settings)
                    if compose.claim_run(open_session, run_id, host_cap=settings.host_cap):
                        executing = threading.Thread(
                            target=worker.execute, args=(run_id,), name=f"run-{run_id}", daemon=True
                        )
                        executing.start()
                time.sleep(POLL_S)
            except KeyboardInterrupt:
                if executing is None or cancelling:
                    raise
                cancelling = True
                err_console.print(f"{run_id}: cancelling (Ctrl-C again to stop waiting)", markup=False)
                with enclave.session() as session:
                    service.cancel(session, run_id, actor=user)
    finally:
        view.close()
    if executing is not None:
        executing.join()  # the worker removes the container and calls the finish hooks after the move
    return _describe(enclave, run_id, user)


# ---- reading --------------------------------------------------------------------------------------


@app.command("list")
@command_errors
def list_(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="List what this user may see.")],
    project: Annotated[str | None, typer.Option("--project")] = None,
    state: Annotated[str | None, typer.Option("--state")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the runs a user may see, newest first."""
    from enclave.runs import service

    enclave = get_context(ctx)
    with enclave.session() as session:
        runs = [
            service.describe(session, run)
            for run in service.list_runs(session, viewer=user, project=project, state=_check_state(state))
        ]
    if as_json:
        emit_json(runs)
        return
    print_table(
        ("id", "project", "user", "state", "cells", "notebook", "created"),
        [
            (
                info["id"],
                info["project"],
                info["user"],
                info["state"] + (" (cancel requested)" if _cancelling(info) else ""),
                "{cells_done}/{cells_total}".format(**{"cells_done": 0, "cells_total": 0, **progress}),
                info["notebook"]["name"],
                info["created_at"],
            )
            for info in runs
            for progress in [info.get("progress") or {}]
        ],
    )


@app.command("show")
@command_errors
def show(ctx: typer.Context, run: RunArgument, user: UserOption, as_json: JsonOption = False) -> None:
    """Show a run: state, progress, parameters, outputs, queries and the error that ended it."""
    info = _describe(get_context(ctx), run, user)
    if as_json:
        emit_json(info)
        return
    console.print(_ending_text(info), markup=False, highlight=False)
    console.print(f"  notebook {info['notebook']['name']}  {info['notebook']['sha256']}", markup=False)
    for name, value in sorted(info["parameters"].items()):
        console.print(f"  -p {name} {value!r}", markup=False, highlight=False)
    for query in info["queries"]:
        console.print(f"  query {query['query_id']} {query['outcome']}: {query['sql']}", markup=False)


@app.command("logs")
@command_errors
def logs(
    ctx: typer.Context,
    run: RunArgument,
    user: UserOption,
    follow: Annotated[bool, typer.Option("--follow", "-F", help="Keep printing until the run ends.")] = False,
) -> None:
    """Print a run's log (the live log while it runs, the stored one after)."""
    from enclave.runs import service
    from enclave.runs.states import is_terminal

    enclave = get_context(ctx)
    printed = 0
    while True:
        with enclave.session() as session:
            found = service.get_visible(session, run, user)
            text, ended = service.log_text(enclave.paths, found), is_terminal(found.state)
        if len(text) < printed:  # the stored log replaced the live one: print only what is new
            printed = min(printed, len(text))
        sys.stdout.write(text[printed:])
        sys.stdout.flush()
        printed = len(text)
        if not follow or ended:
            return
        time.sleep(POLL_S)


@app.command("cancel")
@command_errors
def cancel(ctx: typer.Context, run: RunArgument, user: UserOption, as_json: JsonOption = False) -> None:
    """Cancel a run: a queued one at once, a running one as soon as the worker stops its container."""
    from enclave.runs import service

    enclave = get_context(ctx)
    with enclave.session() as session:
        info = service.describe(session, service.cancel(session, run, actor=user))
    text = f"run {info['id']}: {info['state']}"
    if info["state"] == "running":
        text += " (cancel requested / 已请求取消)"
    print_result(info, as_json, text)


def _target(out: Path, name: str) -> Path:
    """Where an output goes: under ``out``, never outside it."""
    parts = name.split("/")
    if name.startswith("/") or any(part in ("", ".", "..") for part in parts) or "\\" in name:
        raise BadInput(
            "run_output_name_invalid", f"Unsafe output name {name!r}", f"不安全的输出文件名 {name!r}"
        )
    return out.joinpath(*parts)


@app.command("outputs")
@command_errors
def outputs(
    ctx: typer.Context,
    run: RunArgument,
    user: UserOption,
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write the outputs into (existing files are kept).")
    ],
    only: Annotated[list[str] | None, typer.Option("--output", help="Only this output (repeatable).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write a run's stored outputs (checked against their recorded sha256) into a folder."""
    import shutil

    from enclave import audit
    from enclave.audit import AuditAction
    from enclave.errors import NotFound
    from enclave.runs import service

    enclave = get_context(ctx)
    with enclave.session() as session:
        found = service.get_visible(session, run, user)
        names = [o.name for o in found.outputs]
        for name in only or []:
            if name not in names:
                raise NotFound(
                    "run_output_not_found",
                    f"Run {run} has no output {name!r}",
                    f"作业 {run} 没有输出 {name!r}",
                )
        chosen = [name for name in names if not only or name in only]
        sources = {name: service.output_path(enclave.paths, found, name) for name in chosen}
        hashes = {o.name: o.sha256 for o in found.outputs}
        project_of_run = found.project_id
    written = []
    for name, source in sources.items():
        target = _target(out, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with source.open("rb") as reader, target.open("xb") as writer:
                shutil.copyfileobj(reader, writer)
        except FileExistsError:
            raise BadInput(
                "run_output_exists",
                f"{target} exists: choose an empty folder",
                f"{target} 已存在：请选择一个空文件夹",
                details={"file": str(target)},
            ) from None
        written.append({"name": name, "path": str(target), "size": target.stat().st_size})
    with enclave.session() as session:  # outputs leaving the vault store are audited, like downloads
        audit.record(
            session,
            AuditAction.RUN_OUTPUTS_COPY,
            actor=user,
            obj=f"run:{run}",
            project=project_of_run,
            details={"run": run, "files": [{**f, "sha256": hashes[f["name"]]} for f in written]},
        )
    result = {"run": run, "files": written}
    print_result(result, as_json, f"wrote {len(written)} output(s) of {run} to {out}")


# ---- templates ------------------------------------------------------------------------------------


@template_app.command("add")
@command_errors
def template_add(
    ctx: typer.Context,
    notebook: Annotated[
        Path, typer.Argument(help="The notebook; its `parameters` cell declares the parameters.")
    ],
    project: Annotated[str, typer.Option("--project")],
    name: Annotated[str, typer.Option("--name", help="The template's name ([a-z][a-z0-9_-]*).")],
    title: Annotated[str, typer.Option("--title")],
    user: Annotated[str, typer.Option("--user", help="The steward approving it.")],
    as_json: JsonOption = False,
) -> None:
    """Approve a notebook as one of a project's templates (a steward)."""
    from enclave.runs import service

    data = _read_notebook(notebook)
    enclave = get_context(ctx)
    with enclave.session() as session:
        added = service.describe_template(
            service.add_template(
                session,
                enclave.paths,
                project=project,
                name=name,
                title=title,
                notebook=data,
                notebook_name=notebook.name,
                actor=user,
            )
        )
    declared = ", ".join(sorted(added["parameters"])) or "none"
    print_result(added, as_json, f"template {project}/{name} approved; parameters: {declared}")


@template_app.command("list")
@command_errors
def template_list(
    ctx: typer.Context, project: Annotated[str, typer.Option("--project")], as_json: JsonOption = False
) -> None:
    """List a project's approved templates and their parameters."""
    from enclave.runs import service

    enclave = get_context(ctx)
    with enclave.session() as session:
        found = [service.describe_template(t) for t in service.list_templates(session, project)]
    if as_json:
        emit_json(found)
        return
    for t in found:
        console.print(
            f"{t['name']}  {t['title']}  ({', '.join(sorted(t['parameters'])) or 'no parameters'})",
            markup=False,
        )


@template_app.command("retire")
@command_errors
def template_retire(
    ctx: typer.Context,
    project: Annotated[str, typer.Option("--project")],
    name: Annotated[str, typer.Option("--name")],
    user: Annotated[str, typer.Option("--user", help="The steward retiring it.")],
    as_json: JsonOption = False,
) -> None:
    """Retire a template: no new run may use it (its runs keep their record)."""
    from enclave.runs import service

    enclave = get_context(ctx)
    with enclave.session() as session:
        retired = service.retire_template(session, project=project, name=name, actor=user)
        result = {**service.describe_template(retired), "retired_at": retired.retired_at}
    print_result(result, as_json, f"template {project}/{name} retired")


# ---- the worker and the service --------------------------------------------------------------------


@app.command("worker")
@command_errors
def worker(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Execute what can start now, wait for it to end, then exit.")
    ] = False,
    host_cap: Annotated[
        int | None, typer.Option("--host-cap", min=1, help="Runs at once on this host (default 2).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Execute the queue: Docker containers and the host firewall, so as root (or the hub's user)."""
    from enclave import db
    from enclave.runs import compose

    enclave = get_context(ctx)
    settings = compose.settings_from_env(host_cap=host_cap)
    runner = compose.make_worker(
        compose.session_opener(db.connect(enclave.database_url)), enclave.paths, settings
    )
    if not once:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        err_console.print(f"runs worker: host cap {settings.host_cap}; Ctrl-C to stop", markup=False)
        runner.serve(stop)
        return
    recovered = runner.recover()
    executed: list[str] = []
    while True:
        while (claimed := runner.run_once(wait=False)) is not None:
            executed.append(claimed)
        threads = runner.threads()
        if not threads:
            break
        threads[0].join(POLL_S)
    result = {"executed": executed, "recovered": recovered}
    print_result(
        result,
        as_json,
        f"executed {len(executed)} run(s)" + (f"; recovered {recovered}" if recovered else ""),
    )


@app.command("serve")
@command_errors
def serve(
    ctx: typer.Context,
    ip: Annotated[str, typer.Option("--ip", help="Address to listen on (keep it internal).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8104,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Serve the API and pages only; `enclave run worker` executes.")
    ] = False,
    host_cap: Annotated[
        int | None, typer.Option("--host-cap", min=1, help="Runs at once on this host.")
    ] = None,
) -> None:
    """Run the runs service (API for workspaces, pages for browsers) and its worker as a JupyterHub service.

    The hub's service settings come from the environment JupyterHub sets for a service.
    """
    from enclave.runs.app import RunsApp

    enclave = get_context(ctx)
    settings: dict[str, Any] = {"run_worker": not no_worker}
    if host_cap is not None:
        settings["host_cap"] = host_cap
    RunsApp(
        ip=ip, port=port, enclave_home=str(enclave.home), database_url=enclave.database_url, **settings
    ).start()
