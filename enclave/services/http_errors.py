"""The services' one JSON error shape (STYLE §5.12):
``{"ok": false, "errors": [{"code", "message": {"en", "zh"}}], "status"}``.

A guard refusal's reasons become the ``errors`` list; any other error is its own single entry.
A failure the server caused (``Unavailable``, e.g. the gateway's ``server_busy``, ``server_shutdown``)
is a 503 with a ``Retry-After`` header, so clients can tell it from a refusal of the query.

A request body is refused the same way by every service: a declared length over the route's cap is
413 ``body_too_large`` before a byte is read (``check_content_length``), a length that is no number
or a body that is not a JSON object is 400 ``body_invalid`` (``json_object``).

>>> json_object(b'{"a": 1}')
{'a': 1}
>>> try:
...     json_object(b"[1]")
... except BadInput as error:
...     print(error.code, status_for(error))
body_invalid 400
"""

from __future__ import annotations

import json
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


def body_invalid(
    en: str = "The request body must be a JSON object", zh: str = "请求体必须是 JSON 对象"
) -> BadInput:
    """The refusal of a malformed request body (400), the same from every service."""
    return BadInput("body_invalid", en, zh)


def check_content_length(value: str | None, limit: int) -> None:
    """Refuse a body declared over ``limit`` bytes (413 ``body_too_large``) or a declared length that
    is not a number (400 ``body_invalid``); no header is an empty (or chunked) body."""
    length = "0" if value is None else value.strip()
    if not length.isdigit():
        raise body_invalid("Content-Length must be a number", "Content-Length 必须是数字")
    if int(length) > limit:
        raise body_too_large(limit)


def json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object (an empty body is ``{}``), or 400 ``body_invalid``."""
    try:
        value = json.loads(body or b"{}")
    except (UnicodeDecodeError, ValueError):
        value = None
    if not isinstance(value, dict):
        raise body_invalid()
    return value


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
                _entry("internal_error", "The service failed; the error was logged", "服务出错；错误已记录")
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
