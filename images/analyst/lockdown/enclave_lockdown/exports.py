"""``/enclave/exports`` and ``/enclave/workspace``: JupyterLab's "Request export" command, its panel
and its header strip, on the server side (issue 16).

``POST /enclave/exports`` with ``{"path", "justification", "revises"?, "abroad"?}`` checks the path
with the contents manager (it must exist and be a file) and ``export_files`` (inside the root, also
after symlinks, nothing hidden, under the export review's cap), reads the file's bytes from the
workspace itself (never an upload from the browser), and submits them to the export review with the
analyst client (``enclave_client.exports``) as this server's user and project.
``GET /enclave/exports`` lists the user's own requests in the project; ``GET /enclave/workspace``
gives the project's title, access mode, state, end and days left. All are Jupyter API handlers:
authenticated, and a cookie-authenticated POST needs the ``_xsrf`` token. Errors are in the
services' JSON shape; the export review's own refusals are passed on as they are.

The client is imported when a request comes, never when the extension loads (as ``runs``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async
from tornado import web

from enclave_lockdown.export_files import ExportFileError, check_body, check_path, read_file
from enclave_lockdown.runs import error_body

EXPORTS_ROUTE = "enclave/exports"
WORKSPACE_ROUTE = "enclave/workspace"


class _ExportBase(APIHandler):
    auth_resource = "contents"  # an export reads a file of the workspace

    def _answer(self, status: int, value: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(value, ensure_ascii=False))

    def _fail(self, error: ExportFileError) -> None:
        self.set_status(error.status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(error_body(error.status, error.code, error.en, error.zh))

    async def _client(self, call: Callable[[Any], Any]) -> tuple[int, Any]:
        """``call(client)`` off the event loop; a client error as ``(status, error shape)``."""
        from enclave_client import exports  # see the module's docstring

        def run() -> Any:
            return call(exports.connect())

        try:
            return 200, await asyncio.get_running_loop().run_in_executor(None, run)
        except exports.ExportError as error:
            status = error.status if error.status >= 400 else 502
            return status, {"ok": False, "errors": error.errors, "status": status}


class ExportsHandler(_ExportBase):
    """Submit a file of the workspace for export review; list the user's requests."""

    async def _checked_file(self, path: str) -> tuple[str, bytes]:
        from enclave_client.exports import MAX_EXPORT_BYTES

        manager = self.contents_manager
        try:  # the contents manager's own view: it exists, it is not hidden, it is a file
            info = await ensure_async(manager.get(path, content=False))
        except web.HTTPError as error:
            if error.status_code >= 500:
                raise
            raise ExportFileError(
                404, "export_file_not_found", f"No file at {path}", f"找不到文件 {path}"
            ) from None
        if info.get("type") == "directory":
            raise ExportFileError(
                400,
                "export_not_a_file",
                f"{path} is not a file (folders are not exported)",
                f"{path} 不是文件（不能导出文件夹）",
            )
        root = getattr(manager, "root_dir", None)
        if not root:
            raise ExportFileError(
                503, "export_not_configured", "The workspace has no file root", "工作区没有文件根目录"
            )
        return read_file(root, path, MAX_EXPORT_BYTES)

    @web.authenticated
    @authorized(action="read")
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        try:
            raw_path, justification, revises, abroad = check_body(body)
            path = check_path(raw_path)
            name, data = await self._checked_file(path)
        except ExportFileError as error:
            return self._fail(error)
        status, answer = await self._client(
            lambda client: client.submit(name, data, justification, revises=revises, abroad=abroad)
        )
        if status == 200:
            self.log.info("enclave: %s submitted for export review as %s", path, answer.get("request"))
            status = 201
        self._answer(status, answer)

    @web.authenticated
    @authorized(action="read")
    async def get(self) -> None:
        status, answer = await self._client(lambda client: {"requests": client.mine()})
        self._answer(status, answer)


class WorkspaceHandler(_ExportBase):
    """The project's facts for the header strip: title, access mode, state, end, days left."""

    @web.authenticated
    @authorized(action="read")
    async def get(self) -> None:
        status, answer = await self._client(lambda client: client.project_facts())
        self._answer(status, answer)
