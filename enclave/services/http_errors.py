"""The services' one JSON error shape (STYLE §5.12):
``{"ok": false, "errors": [{"code", "message": {"en", "zh"}}], "status"}``.

A guard refusal's reasons become the ``errors`` list; any other error is its own single entry.
A failure the server caused (``Unavailable``, e.g. the gateway's ``server_busy``, ``server_shutdown``)
is a 503 with a ``Retry-After`` header, so clients can tell it from a refusal of the query.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from enclave.errors import BadInput, EnclaveError, Forbidden, NotFound, Refused, Unavailable
from enclave.services.auth import Unauthenticated


def body_too_large(limit: int) -> BadInput:
    """The refusal of a request body over ``limit`` bytes (413), the same from every service."""
    return BadInput(
        "body_too_large",
        f"The request body is larger than {limit} bytes",
        f"请求体超过 {limit} 字节",
        details={"max_bytes": limit},
    )


STATUS_BY_CODE = {
    "query_cancelled": 409,
    "result_too_large": 413,
    "body_too_large": 413,
    "export_uploads_busy": 429,
    "uploads_busy": 429,  # the steward console's uploads (enclave.services.handlers.UploadSlots)
}


def status_for(error: EnclaveError) -> int:
    if isinstance(error, Unavailable):
        return 503  # the server's failure, not the analyst's: try again after ``Retry-After``
    if error.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[error.code]
    if isinstance(error, Unauthenticated):
        return 401
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Refused):
        return 422
    if isinstance(error, BadInput):
        return 400
    return 400


def _entry(code: str, en: str, zh: str) -> dict[str, Any]:
    return {"code": code, "message": {"en": en, "zh": zh}}


def error_body(error: EnclaveError, status: int) -> dict[str, Any]:
    entries = [_entry(r.code, r.message, r.message_zh) for r in error.reasons]
    if not entries:
        entries = [_entry(error.code, error.message, error.message_zh)]
    return {"ok": False, "errors": entries, "status": status}


def http_error_body(status: int) -> dict[str, Any]:
    """For errors that are not ours: unknown route, wrong method, server fault (no traceback)."""
    if status >= 500:
        return {
            "ok": False,
            "errors": [
                _entry("internal_error", "The gateway failed; the error was logged", "网关出错；错误已记录")
            ],
            "status": status,
        }
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {
        "ok": False,
        "errors": [_entry(f"http_{status}", phrase, f"HTTP 错误 {status}")],
        "status": status,
    }
