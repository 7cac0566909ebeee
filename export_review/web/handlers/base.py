"""The export review's base handlers: the shared ones of ``enclave.services.handlers`` (hub login, the
language, security headers, streamed uploads, the one mapping of ``EnclaveError`` to HTTP), with the
export review's labels and operations. Pages have the console's policy: styles only from the service's
own stylesheet (``static/review.css``), no inline style, no script."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlencode

from enclave.services import handlers
from enclave.services.handlers import (
    MAX_FORM_BYTES,
    MAX_UPLOAD_BYTES,
    ApiHandler,
    UploadHandler,
    UploadSlots,
)
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


class ServiceHandler(handlers.ServiceHandler):
    ctx: ExportService


class PageHandler(handlers.StylesheetPage):
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
