"""The export review's base handlers: the shared ones of ``enclave.services.handlers`` (hub login, the
language, security headers, streamed uploads, the one mapping of ``EnclaveError`` to HTTP), with the
export review's labels and operations. Pages have the console's policy: styles only from the service's
own stylesheet (``static/review.css``), no inline style, no script.

A workspace server's own token (``access:servers!server=<user>/<project>``, given to it so that
JupyterLab's "Request export" can submit) reaches only the routes that say so (``workspace_may``), and
there only its own project: the analyst's other projects, the pages (previews) and every decision
(votes, release, rerun, download) are refused to it, default deny."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlencode

from enclave.errors import Forbidden
from enclave.services import handlers
from enclave.services.auth import SERVER_SCOPE
from enclave.services.handlers import MAX_FORM_BYTES, MAX_UPLOAD_BYTES, UploadSlots
from export_review.service import ExportService
from export_review.web.handlers.static import stylesheet_url
from export_review.web.i18n import Translator

__all__ = [
    "MAX_FORM_BYTES",
    "MAX_UPLOAD_BYTES",
    "ApiHandler",
    "PageHandler",
    "ServiceHandler",
    "UploadHandler",
    "UploadSlots",
]


def bound_servers(model: dict[str, Any] | None) -> set[str]:
    """The servers a hub token is bound to: a workspace server's own token names its one project; a
    person's login or personal token names none."""
    scopes = (model or {}).get("scopes") or []
    return {match.group("server") for scope in scopes if (match := SERVER_SCOPE.match(str(scope)))}


def workspace_refused() -> Forbidden:
    return Forbidden(
        "export_workspace_refused",
        "A workspace may only submit its own files and follow its own project's requests; review, "
        "release and download from the export review pages",
        "工作区只能提交本项目的文件并查看本项目的申请；审核、发布和下载请在导出审核页面进行",
    )


class WorkspaceTokens:
    """Where a workspace server's token may go (see the module's docstring)."""

    workspace_may: ClassVar[bool] = False
    _refused_workspace = False
    _writing_error = False

    def get_current_user(self) -> dict[str, Any] | None:
        if self._refused_workspace:  # the error page asks again: nobody is signed in
            return None
        model = super().get_current_user()  # type: ignore[misc]
        bound = bound_servers(model)
        if bound and (not self.workspace_may or len(bound) != 1):
            self._refused_workspace = True
            if not self._writing_error:  # an error page (a 405, say) shows its own error, to nobody
                raise workspace_refused()
            return None
        return model

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self._writing_error = True
        super().write_error(status_code, **kwargs)  # type: ignore[misc]

    def workspace_project(self) -> str | None:
        """The project of the calling workspace server, or None when a person calls."""
        bound = bound_servers(self.current_user)  # type: ignore[attr-defined]
        return next(iter(bound)) if bound else None


class ServiceHandler(handlers.ServiceHandler):
    ctx: ExportService


class ApiHandler(WorkspaceTokens, handlers.ApiHandler):
    ctx: ExportService


class UploadHandler(WorkspaceTokens, handlers.UploadHandler):
    ctx: ExportService


class PageHandler(WorkspaceTokens, handlers.StylesheetPage):
    """Pages in the reader's language, with the export review's labels; ``nav`` names the navigation
    link of the page (marked ``aria-current``)."""

    ctx: ExportService
    translator: ClassVar[type[Translator]] = Translator
    nav: ClassVar[str] = ""

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        other = "en" if self.lang == "zh" else "zh"
        kept = [(k, v) for k, values in self.request.query_arguments.items() if k != "lang" for v in values]
        query = [(k, v.decode("utf-8", "replace")) for k, v in kept] + [("lang", other)]
        chosen = self.get_query_argument("lang", None)
        base_url = self.hub_auth.base_url
        namespace.update(
            static_url=lambda name: stylesheet_url(base_url, name),  # a file of static/ (handlers.static)
            current=self.nav,
            switch_lang=f"{self.request.path}?{urlencode(query)}",
            lang_param=self.lang if chosen in ("en", "zh") else "",  # kept by GET forms
        )
        return namespace
