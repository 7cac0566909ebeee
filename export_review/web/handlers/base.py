"""The export review's base handlers: the shared ones of ``enclave.services.handlers`` (hub login, the
language, security headers, streamed uploads, the one mapping of ``EnclaveError`` to HTTP), with the
export review's labels and operations."""

from __future__ import annotations

from typing import ClassVar

from enclave.services import handlers
from enclave.services.handlers import (
    CSP,
    MAX_FORM_BYTES,
    MAX_UPLOAD_BYTES,
    ApiHandler,
    UploadHandler,
    UploadSlots,
)
from export_review.service import ExportService
from export_review.web.i18n import Translator

__all__ = [
    "CSP",
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


class PageHandler(handlers.PageHandler):
    """Pages in the reader's language, with the export review's labels."""

    ctx: ExportService
    translator: ClassVar[type[Translator]] = Translator
