"""Refuse every way a browser could download a file out of the analyst workspace.

JupyterLab's download commands are disabled and locked in ``page_config.json``; this server
extension is the server-side half, so hand-written URLs fail too (R-WS download lock-down):

* ``/files/...`` (raw files, also behind "Open in New Browser Tab"), ``/view/...`` and
  ``/nbconvert/...`` (notebook exports) answer 403 with a stable code;
* the contents API never returns a raw (base64) file body: binary files cannot be fetched as data.

Text files and notebooks still open in the editor: what is on the screen is a residual channel
that the README documents, not one this extension pretends to close.

It also serves ``/enclave/runs`` (``enclave_lockdown.runs``): the server side of JupyterLab's
"Run as batch job" command, whose labextension (``labextension/``, installed as
``share/jupyter/labextensions/enclave-runs``) ships in this distribution; and ``/enclave/exports``
and ``/enclave/workspace`` (``enclave_lockdown.exports``): the server side of the "Request export"
command, the export requests panel and the project strip (``share/jupyter/labextensions/enclave-exports``).
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.routing import PathMatches, Rule

REFUSED_PREFIXES = ("files", "view", "nbconvert")
ERROR_CODE = "download_disabled"
MESSAGE_EN = "Downloads are disabled in the enclave: request an export review instead"
MESSAGE_ZH = "安全数据环境中禁止下载文件：请提交导出审核申请"


def refusal_body() -> str:
    """The JSON error shape of the enclave's services (STYLE §5.12)."""
    return json.dumps(
        {
            "ok": False,
            "errors": [{"code": ERROR_CODE, "message": {"en": MESSAGE_EN, "zh": MESSAGE_ZH}}],
            "status": 403,
        },
        ensure_ascii=False,
    )


class RefuseDownloadHandler(JupyterHandler):
    """Answers every method with 403 and the refusal body; logs the attempt."""

    def initialize(self, **_: Any) -> None:  # accepts files_handler_params
        pass

    def _refuse(self, *_: Any, **__: Any) -> None:
        self.log.warning("enclave: refused download %s %s", self.request.method, self.request.path)
        self.set_status(403)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(refusal_body())

    get = post = put = head = delete = patch = _refuse

    def check_xsrf_cookie(self) -> None:  # a refusal needs no XSRF token
        return None


class NoRawBodiesContentsManager(AsyncLargeFileManager):
    """The default contents manager, except that it never hands out a base64 (raw) file body."""

    async def get(
        self, path: str, content: bool = True, type: str | None = None, format: str | None = None, **kw
    ):
        if content and format == "base64":
            raise web.HTTPError(403, f"{ERROR_CODE}: {MESSAGE_EN} / {MESSAGE_ZH}")
        model = await super().get(path, content=content, type=type, format=format, **kw)
        if content and model.get("format") == "base64":
            raise web.HTTPError(403, f"{ERROR_CODE}: {MESSAGE_EN} / {MESSAGE_ZH}")
        return model


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "enclave_lockdown"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Put the refusing routes in front of every other route of the server."""
    web_app = serverapp.web_app
    base = serverapp.base_url.rstrip("/")
    for prefix in REFUSED_PREFIXES:
        rule = Rule(PathMatches(f"{base}/{prefix}(/.*)?$"), RefuseDownloadHandler)
        web_app.default_router.rules.insert(0, rule)
    serverapp.log.info("enclave: download paths refused: %s", ", ".join(REFUSED_PREFIXES))
    # After the refusals, so that nothing here can keep them from being installed.
    try:
        from enclave_lockdown.runs import ROUTE, RunsHandler

        web_app.add_handlers(".*$", [(url_path_join(serverapp.base_url, ROUTE), RunsHandler)])
    except Exception:  # the batch-run command is a convenience; the refusals are the point
        serverapp.log.exception("enclave: the batch-run routes could not be installed")
    try:
        from enclave_lockdown.exports import EXPORTS_ROUTE, WORKSPACE_ROUTE, ExportsHandler, WorkspaceHandler

        web_app.add_handlers(
            ".*$",
            [
                (url_path_join(serverapp.base_url, EXPORTS_ROUTE), ExportsHandler),
                (url_path_join(serverapp.base_url, WORKSPACE_ROUTE), WorkspaceHandler),
            ],
        )
    except Exception:  # as the batch runs: a convenience, never in the way of the refusals
        serverapp.log.exception("enclave: the export routes could not be installed")
