"""``/enclave/runs``: JupyterLab's "Run as batch job" command, on the server side (issue 12).

``POST /enclave/runs`` with ``{"path": "<notebook path in the contents root>", "parameters": {}}``
reads the notebook through the server's contents manager (so the root, hidden files and the
notebook type are checked as for any file the UI opens; a path that climbs out of the root, or a
symlink that points out of it, is refused) and submits its file text to the runs service with the
analyst client (``enclave_client.runs``), as this server's user and project. ``GET /enclave/runs``
lists the user's runs. Both are Jupyter API handlers: authenticated, and a cookie-authenticated
POST needs the ``_xsrf`` token.

The client is imported when a request comes, never when the extension loads: a broken client
must not stop the download refusals of this extension from being installed.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async
from tornado import web

from enclave_lockdown.workspace_paths import Refusal, check_below, relative_parts

ROUTE = "enclave/runs"
MAX_NOTEBOOK_BYTES = 5 * 1024 * 1024
LOCAL_STATUS = {"runs_unreachable": 502, "runs_not_configured": 503, "runs_bad_answer": 502}


def error_body(status: int, code: str, en: str, zh: str) -> str:
    """The services' JSON error shape (as the download refusals use)."""
    errors = [{"code": code, "message": {"en": en, "zh": zh}}]
    return json.dumps({"ok": False, "errors": errors, "status": status}, ensure_ascii=False)


class RunsRequestError(Refusal):
    """A batch run request refused before it reaches the runs service."""


def check_path(path: Any) -> str:
    """A contents path as the UI sends it: relative, ``/``-separated, no ``..``, a ``.ipynb``."""
    if not isinstance(path, str) or not path.strip("/"):
        raise RunsRequestError(400, "run_path_invalid", "Which notebook? Give its path", "请指定笔记本的路径")
    parts = relative_parts(path, RunsRequestError, "run_path_outside_home")
    if not parts[-1].endswith(".ipynb"):
        raise RunsRequestError(
            400,
            "run_notebook_not_a_notebook",
            f"{path} is not a notebook (.ipynb)",
            f"{path} 不是笔记本（.ipynb）",
        )
    return "/".join(parts)


def check_real_path(contents_manager: Any, path: str) -> None:
    """Refuse a notebook whose real file (symlinks resolved) is outside the contents root."""
    get_os_path = getattr(contents_manager, "_get_os_path", None)
    root = getattr(contents_manager, "root_dir", None)
    if get_os_path is None or not root:
        return  # not a file-backed manager: its own checks are all there is
    real = os.path.realpath(get_os_path(path))
    real_root = os.path.realpath(root)
    if real != real_root:
        check_below(real, real_root, path, RunsRequestError, "run_path_outside_home")


class RunsHandler(APIHandler):
    """Submit a notebook of the workspace as a batch run; list the user's runs."""

    auth_resource = "kernels"  # a batch run executes code, as a kernel does

    def _fail(self, status: int, code: str, en: str, zh: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(error_body(status, code, en, zh))

    def _client_failed(self, error: Any) -> None:
        """A ``RunError`` of the client, passed on with the service's status (or a fitting one)."""
        status = error.status if error.status >= 400 else LOCAL_STATUS.get(error.code, 400)
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"ok": False, "errors": error.errors, "status": status}, ensure_ascii=False))

    async def _read_notebook(self, path: str) -> tuple[str, str]:
        manager = self.contents_manager
        try:
            info = await ensure_async(manager.get(path, content=False))
        except web.HTTPError as error:
            if error.status_code == 404:
                raise RunsRequestError(
                    404, "run_notebook_not_found", f"No notebook at {path}", f"找不到笔记本 {path}"
                ) from None
            raise
        if info.get("type") != "notebook":
            raise RunsRequestError(
                400, "run_notebook_not_a_notebook", f"{path} is not a notebook", f"{path} 不是笔记本"
            )
        if (info.get("size") or 0) > MAX_NOTEBOOK_BYTES:
            raise RunsRequestError(
                413,
                "run_notebook_too_large",
                f"{path} is larger than 5 MB: clear its outputs first",
                f"{path} 超过 5 MB：请先清除其输出",
            )
        check_real_path(manager, path)
        try:  # the file's text as it is: the run records the sha256 of the file in the workspace
            model = await ensure_async(manager.get(path, content=True, type="file", format="text"))
        except web.HTTPError as error:
            if error.status_code >= 500:
                raise
            raise RunsRequestError(
                400,
                "run_notebook_invalid",
                f"{path} is not a UTF-8 notebook",
                f"{path} 不是 UTF-8 编码的笔记本",
            ) from None
        return str(model["content"]), str(model["name"])

    @web.authenticated
    @authorized(action="execute")
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._fail(
                400, "run_request_invalid", "The request is not a JSON object", "请求不是 JSON 对象"
            )
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            return self._fail(
                400, "run_parameters_invalid", "Parameters must be a JSON object", "参数必须是 JSON 对象"
            )
        try:
            path = check_path(body.get("path"))
            notebook, name = await self._read_notebook(path)
        except RunsRequestError as error:
            return self._fail(error.status, error.code, error.en, error.zh)

        from enclave_client import runs  # see the module's docstring

        try:
            run = await asyncio.get_running_loop().run_in_executor(
                None, lambda: runs.submit_notebook(notebook, name, parameters)
            )
        except runs.RunError as error:
            return self._client_failed(error)
        self.log.info("enclave: submitted %s as batch run %s", path, run.id)
        self.set_status(201)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(run.data, ensure_ascii=False))

    @web.authenticated
    @authorized(action="read")
    async def get(self) -> None:
        from enclave_client import runs  # see the module's docstring

        try:
            found = await asyncio.get_running_loop().run_in_executor(None, runs.list)
        except runs.RunError as error:
            return self._client_failed(error)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"runs": [run.data for run in found]}, ensure_ascii=False))
