"""Batch runs from the notebook: run a notebook of the workspace with papermill, with parameters, in a
fresh locked-down container (the runs service, ``$ENCLAVE_RUNS_URL``).

    from enclave_client import runs
    run = runs.submit("analysis/table1.ipynb", {"year": 2024})   # a path under your home
    run = runs.submit("table1.ipynb", {"year": 2024}, wait=True) # progress line; interrupt cancels
    runs.status(run.id).state        # queued | running | succeeded | failed | timed_out | cancelled
    runs.outputs(run.id)             # [{"name": "table1.csv", "sha256": ..., "size": ...}]
    runs.download(run.id, "table1.csv", to="results/")
    print(runs.logs(run.id))
    runs.cancel(run.id)
    runs.list()                      # your runs in this project, newest first
    runs.submit(None, {"year": 2024}, template="table1")      # an approved template

Every failure raises ``RunError`` (a ``QueryError``) with a stable ``code`` and English and Chinese
messages. The service decides what a notebook and its parameters may be; this client only refuses
what it must not send (a path outside your home, a value that is not JSON).
"""

from __future__ import annotations

import builtins
import contextlib
import html
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from enclave_client.errors import RunError, error_entry
from enclave_client.run_input import (
    MAX_NOTEBOOK_BYTES,
    check_notebook_text,
    encode_parameters,
    notebook_file,
    read_notebook,
)
from enclave_client.service_http import ServiceClient, json_object, open_service, service_request

__all__ = [
    "MAX_NOTEBOOK_BYTES",
    "Run",
    "RunError",
    "RunsClient",
    "cancel",
    "connect",
    "download",
    "executed",
    "list",
    "logs",
    "outputs",
    "status",
    "submit",
    "submit_notebook",
    "templates",
]

RUNS_URL_ENV = "ENCLAVE_RUNS_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
PROJECT_ENVS = ("ENCLAVE_PROJECT", "JUPYTERHUB_SERVER_NAME")
TERMINAL = frozenset({"succeeded", "failed", "timed_out", "cancelled"})
STATE_ZH = {
    "queued": "排队中",
    "running": "运行中",
    "succeeded": "已成功",
    "failed": "失败",
    "timed_out": "超时",
    "cancelled": "已取消",
}
RUN_ID = re.compile(r"run-[0-9a-f]{6,40}")
POLL_S = 1.0
MAX_POLL_S = 5.0
CHUNK = 1024 * 1024

Progress = Callable[["Run", float], None]


def _error(code: str, en: str, zh: str, status: int = 0) -> RunError:
    return RunError(status, [error_entry(code, en, zh)])


# ---- a run ---------------------------------------------------------------------------------------


class Run:
    """One batch run as the service described it (``run.data``, also ``run["state"]``);
    ``refresh()`` asks again."""

    def __init__(self, data: dict[str, Any], client: RunsClient) -> None:
        self.data = data
        self._client = client

    def __getitem__(self, key: str) -> Any:
        """``run["state"]``: the service's description, field by field."""
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def state(self) -> str:
        return str(self.data.get("state", ""))

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @property
    def progress(self) -> dict[str, int]:
        return dict(self.data.get("progress") or {})

    @property
    def error(self) -> dict[str, Any] | None:
        return self.data.get("error")

    @property
    def outputs(self) -> builtins.list[dict[str, Any]]:
        return builtins.list(self.data.get("outputs") or [])

    def refresh(self) -> Run:
        self.data = self._client.describe(self.id)
        return self

    def wait(
        self,
        *,
        timeout_s: float | None = None,
        progress: Progress | None = None,
        poll_s: float | None = None,
    ) -> Run:
        """Poll until the run ends and return it; the interrupt (Ctrl-C, the notebook's stop button)
        cancels the run. ``timeout_s`` limits the wait only: the run then goes on."""
        poll_s = POLL_S if poll_s is None else poll_s
        show = progress if progress is not None else _stderr_progress
        started = time.monotonic()
        try:
            while not self.done:
                elapsed = time.monotonic() - started
                if timeout_s is not None and elapsed >= timeout_s:
                    raise _error(
                        "run_wait_timeout",
                        f"Run {self.id} is still {self.state} after {timeout_s:g} s (it goes on running)",
                        f"作业 {self.id} 在 {timeout_s:g} 秒后仍为{STATE_ZH.get(self.state, self.state)}"
                        "（它会继续运行）",
                    )
                show(self, elapsed)
                time.sleep(poll_s)
                poll_s = min(poll_s * 1.2, MAX_POLL_S)
                self.refresh()
        except KeyboardInterrupt:
            self._client.cancel_quietly(self.id)
            sys.stderr.write(f"\n{self.id}: cancel requested / 已请求取消\n")
            raise
        except BaseException:
            if show is _stderr_progress:
                sys.stderr.write("\n")
            raise
        show(self, time.monotonic() - started)
        if show is _stderr_progress:
            sys.stderr.write("\n")
        return self

    def check(self) -> Run:
        """The run if it succeeded; otherwise its error as a ``RunError``."""
        if self.state == "succeeded":
            return self
        error = self.error or {}
        state_zh = STATE_ZH.get(self.state, self.state)
        entry = error_entry(
            str(error.get("code") or f"run_{self.state or 'unknown'}"),
            str(error.get("message") or f"Run {self.id} is {self.state}"),
            str(error.get("message_zh") or f"作业 {self.id} 的状态为{state_zh}"),
        )
        raise RunError(0, [entry])

    def cancel(self) -> Run:
        self.data = self._client.cancel(self.id).data
        return self

    def logs(self) -> str:
        return self._client.logs(self.id)

    def download(self, name: str, to: str | os.PathLike[str] | None = None) -> Path:
        return self._client.download(self.id, name, to=to)

    def __repr__(self) -> str:
        return f"<enclave_client.runs.Run {self.id} {self.state}>"

    def _repr_html_(self) -> str:
        state = self.state
        rows = [
            ("run / 作业", self.id),
            ("state / 状态", f"{state} / {STATE_ZH.get(state, state)}"),
            ("notebook / 笔记本", (self.data.get("notebook") or {}).get("name", "")),
            ("parameters / 参数", json.dumps(self.data.get("parameters") or {}, ensure_ascii=False)),
            ("progress / 进度", _cells(self.progress)),
            ("outputs / 输出", ", ".join(str(o.get("name")) for o in self.outputs)),
        ]
        if self.error:
            rows.append(("error / 错误", f"{self.error.get('code')}: {self.error.get('message', '')}"))
        body = "".join(
            f"<tr><th>{html.escape(label)}</th><td>{html.escape(str(value))}</td></tr>"
            for label, value in rows
        )
        return f'<table class="enclave-run" data-state="{html.escape(state)}">{body}</table>'


def _cells(progress: dict[str, int]) -> str:
    if "cells_total" not in progress:
        return ""
    return f"{progress.get('cells_done', 0)}/{progress['cells_total']}"


def progress_line(run: Run, elapsed: float) -> str:
    """One line while waiting: the state and how many cells papermill has done."""
    state = run.state
    cells = _cells(run.progress)
    parts = [f"{run.id}: {state} / {STATE_ZH.get(state, state)}"]
    if cells:
        parts.append(f"cells {cells} 单元格")
    parts.append(f"{elapsed:5.0f} s")
    line = " · ".join(parts)
    return line if run.done else f"{line} (interrupt to cancel / 中断以取消)"


def _stderr_progress(run: Run, elapsed: float) -> None:
    sys.stderr.write("\r" + progress_line(run, elapsed) + " " * 8)
    sys.stderr.flush()


# ---- the service ---------------------------------------------------------------------------------


def _check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise _error("run_not_found", f"No run {run_id!r}", f"没有批处理作业 {run_id!r}", status=404)
    return run_id


def _output_path(name: str) -> str:
    """An output's name as URL path segments; refused when it could climb out of a folder."""
    parts = str(name).split("/")
    if not name or any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
        raise _error(
            "run_output_not_found", f"{name!r} is not an output name", f"{name!r} 不是输出文件名", status=404
        )
    return "/".join(quote(part, safe="") for part in parts)


class RunsClient(ServiceClient):
    """The runs service's API for one analyst's server (its token names the user and project)."""

    def __init__(self, url: str, token: str, project: str | None = None, *, timeout_s: float = 60.0) -> None:
        super().__init__(url, token, project, timeout_s=timeout_s)

    def _open(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None
        if body is not None:
            try:
                data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
            except ValueError:  # NaN or Infinity inside the notebook's JSON
                raise _error(
                    "run_notebook_invalid",
                    "The request holds a value JSON cannot carry (NaN or Infinity)",
                    "请求中含有 JSON 无法表示的值（NaN 或 Infinity）",
                ) from None
        content_type = "" if data is None else "application/json; charset=utf-8"
        request = service_request(
            self.url + path, method, self._token, data=data, content_type=content_type, project=self.project
        )
        return open_service(request, self.timeout_s, RunError, self._unreachable)

    def _unreachable(self, reason: object) -> RunError:
        return _error(
            "runs_unreachable",
            f"Cannot reach the runs service at {self.url}: {reason}",
            f"无法连接批处理作业服务 {self.url}：{reason}",
        )

    def _read(self, method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
        with self._open(method, path, body) as response:
            return response.read()

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        payload = self._read(method, path, body)
        answer = json_object(payload)
        if answer is None:
            raise _error(
                "runs_bad_answer",
                "The runs service answered something that is not JSON",
                "批处理作业服务的应答不是 JSON",
            )
        return answer

    # -- the API

    def submit_notebook(
        self,
        notebook: str | dict[str, Any] | None,
        notebook_name: str | None,
        parameters: Mapping[str, Any] | None = None,
        *,
        template: str | None = None,
        timeout_s: int | None = None,
    ) -> Run:
        """Submit a notebook (its file text, kept byte for byte by the service, or its JSON object)
        or a template by name as a batch run; the queued run."""
        body: dict[str, Any] = {"parameters": encode_parameters(parameters)}
        if template is not None:
            if notebook is not None:
                raise _error(
                    "run_template_with_notebook",
                    "Give a template or a notebook, not both",
                    "请指定模板或笔记本，不能同时指定",
                )
            body["template"] = template
        else:
            if not isinstance(notebook, str | dict) or not notebook_name:
                raise _error(
                    "run_notebook_invalid",
                    "A notebook (its JSON and name) is needed",
                    "需要笔记本（其 JSON 和名称）",
                )
            if isinstance(notebook, str):
                check_notebook_text(notebook, notebook_name)
            body["notebook_name"] = notebook_name
            body["notebook"] = notebook
        if timeout_s is not None:
            body["timeout_s"] = int(timeout_s)
        return Run(self._json("POST", "api/runs", body), self)

    def submit(
        self,
        notebook_path: str | os.PathLike[str] | None,
        parameters: Mapping[str, Any] | None = None,
        *,
        template: str | None = None,
        wait: bool = False,
        timeout_s: int | None = None,
    ) -> Run:
        """Submit the notebook at ``notebook_path`` (inside the home); see ``submit``."""
        encoded = encode_parameters(parameters)  # refused before the file is even read
        if template is not None and notebook_path is not None:
            raise _error(
                "run_template_with_notebook",
                "Give a template or a notebook, not both",
                "请指定模板或笔记本，不能同时指定",
            )
        if template is not None:
            run = self.submit_notebook(None, None, encoded, template=template, timeout_s=timeout_s)
        else:
            if notebook_path is None:
                raise _error(
                    "run_notebook_invalid", "Which notebook? Give its path", "请指定要运行的笔记本的路径"
                )
            path = notebook_file(notebook_path)
            run = self.submit_notebook(read_notebook(path), path.name, encoded, timeout_s=timeout_s)
        return run.wait() if wait else run

    def describe(self, run_id: str) -> dict[str, Any]:
        return self._json("GET", f"api/runs/{_check_run_id(run_id)}")

    def status(self, run_id: str) -> Run:
        return Run(self.describe(run_id), self)

    def outputs(self, run_id: str) -> builtins.list[dict[str, Any]]:
        return self.status(run_id).outputs

    def logs(self, run_id: str) -> str:
        return self._read("GET", f"api/runs/{_check_run_id(run_id)}/log").decode("utf-8", errors="replace")

    def cancel(self, run_id: str) -> Run:
        return Run(self._json("DELETE", f"api/runs/{_check_run_id(run_id)}"), self)

    def cancel_quietly(self, run_id: str) -> None:
        with contextlib.suppress(RunError):
            self.cancel(run_id)

    def list(self) -> builtins.list[Run]:
        return [Run(data, self) for data in self._json("GET", "api/runs").get("runs", [])]

    def templates(self) -> builtins.list[dict[str, Any]]:
        return builtins.list(self._json("GET", "api/templates").get("templates", []))

    def download(self, run_id: str, name: str, *, to: str | os.PathLike[str] | None = None) -> Path:
        """Write one output to ``to`` (a file, or a folder that gets ``name``; default: here)."""
        url_path = f"api/runs/{_check_run_id(run_id)}/outputs/{_output_path(name)}"
        return self._save(url_path, name, to)

    def executed(self, run_id: str, *, to: str | os.PathLike[str] | None = None) -> Path:
        """Write the executed notebook (with its outputs) to ``to``."""
        return self._save(f"api/runs/{_check_run_id(run_id)}/executed", f"{run_id}.executed.ipynb", to)

    def _save(self, url_path: str, name: str, to: str | os.PathLike[str] | None) -> Path:
        target = Path(to).expanduser() if to is not None else Path.cwd()
        if to is None or target.is_dir() or str(to).endswith(("/", os.sep)):
            target = target / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._open("GET", url_path) as response:
            handle, temporary = tempfile.mkstemp(prefix=".download-", dir=target.parent)
            try:
                with os.fdopen(handle, "wb") as out:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
        return target


# ---- the module's functions: everything from the server's environment ----------------------------


def connect(url: str | None = None, token: str | None = None, project: str | None = None) -> RunsClient:
    """The runs service of this workspace (``$ENCLAVE_RUNS_URL`` and the server's token)."""
    url = url or os.environ.get(RUNS_URL_ENV)
    token = token or os.environ.get(TOKEN_ENV)
    project = project or next((os.environ[e] for e in PROJECT_ENVS if os.environ.get(e)), None)
    if not url or not token:
        raise _error(
            "runs_not_configured",
            f"Set {RUNS_URL_ENV} and {TOKEN_ENV} (the enclave's notebook servers do)",
            f"请设置 {RUNS_URL_ENV} 和 {TOKEN_ENV}（领地的笔记本服务器会自动设置）",
        )
    return RunsClient(url, token, project)


def submit(
    notebook_path: str | os.PathLike[str] | None,
    parameters: Mapping[str, Any] | None = None,
    *,
    template: str | None = None,
    wait: bool = False,
    timeout_s: int | None = None,
) -> Run:
    """Run the notebook at ``notebook_path`` (a path inside your home) with ``parameters``.

    ``template`` runs an approved template instead (then ``notebook_path`` is None). ``timeout_s``
    is the run's time limit (the service's default when None). ``wait=True`` shows a progress line
    and returns once the run has ended; interrupting the wait cancels the run.
    """
    return connect().submit(notebook_path, parameters, template=template, wait=wait, timeout_s=timeout_s)


def submit_notebook(
    notebook: str | dict[str, Any],
    notebook_name: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    timeout_s: int | None = None,
) -> Run:
    """Submit a notebook already in memory: its file text or its JSON (the JupyterLab command does)."""
    return connect().submit_notebook(notebook, notebook_name, parameters, timeout_s=timeout_s)


def status(run_id: str) -> Run:
    """The run now: ``.state``, ``.progress``, ``.error``, ``.outputs``, ``.data`` (everything)."""
    return connect().status(run_id)


def outputs(run_id: str) -> builtins.list[dict[str, Any]]:
    """The run's output files: ``[{"name", "sha256", "size"}]`` (empty until it ends)."""
    return connect().outputs(run_id)


def download(run_id: str, name: str, to: str | os.PathLike[str] | None = None) -> Path:
    """Copy one output of the run into the workspace; the path written."""
    return connect().download(run_id, name, to=to)


def executed(run_id: str, to: str | os.PathLike[str] | None = None) -> Path:
    """Copy the executed notebook of the run into the workspace; the path written."""
    return connect().executed(run_id, to=to)


def logs(run_id: str) -> str:
    """The run's log (live while it runs)."""
    return connect().logs(run_id)


def cancel(run_id: str) -> Run:
    """Cancel the run (a queued one at once; a running one is stopped by the service)."""
    return connect().cancel(run_id)


def templates() -> builtins.list[dict[str, Any]]:
    """The project's approved templates."""
    return connect().templates()


def list() -> builtins.list[Run]:  # shadows the builtin in this module: builtins.list is used above
    """Your runs in this project, newest first."""
    return connect().list()
