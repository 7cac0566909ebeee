"""One HTTP call from the workspace to an enclave service (the gateway, the runs service, the export
review) with the server's token, and the service's answer read: its error answer into the services'
error shape, its JSON object. What ``Connection``, ``RunsClient`` and ``ExportsClient`` share (the
last two are ``ServiceClient``s). Each caller names its own exception (``failed``, from the status
and the errors) and its own bilingual "unreachable" and "bad answer" errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from enclave_client.errors import QueryError, error_entry

PROJECT_HEADER = "X-Enclave-Project"

Failed = Callable[[int, list[dict[str, Any]]], QueryError]
Unreachable = Callable[[object], QueryError]


class ServiceClient:
    """A service's API for one analyst's server: the service's URL, the server's token (it names the
    user) and the project."""

    def __init__(self, url: str, token: str, project: str | None, *, timeout_s: float) -> None:
        self.url = url.rstrip("/") + "/"
        self.project = project
        self.timeout_s = timeout_s
        self._token = token

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__qualname__} {self.url} project={self.project}>"


def service_request(
    url: str,
    method: str,
    token: str,
    *,
    data: bytes | None = None,
    content_type: str = "",
    accept: str = "application/json",
    project: str | None = None,
) -> urllib.request.Request:
    """A request authenticated by ``token``; ``project``, when given, goes in ``X-Enclave-Project``."""
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {token}")
    request.add_header("Accept", accept)
    if content_type:
        request.add_header("Content-Type", content_type)
    if project:
        request.add_header(PROJECT_HEADER, project)
    return request


def error_list(status: int, payload: bytes) -> list[dict[str, Any]]:
    """The ``errors`` of a service's error answer; one ``http_<status>`` entry when the answer is not
    in the services' error shape (not JSON, no errors, or errors that are not objects)."""
    try:
        errors = json.loads(payload)["errors"]
        if not isinstance(errors, list) or not errors or not all(isinstance(e, dict) for e in errors):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        errors = [error_entry(f"http_{status}", f"HTTP error {status}", f"HTTP 错误 {status}")]
    return errors


def open_service(
    request: urllib.request.Request, timeout_s: float, failed: Failed, unreachable: Unreachable
) -> Any:
    """The open response (a context manager); an HTTP error raises ``failed(status, errors)``, a
    connection failure ``unreachable(reason)``."""
    try:
        return urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as error:
        raise failed(error.code, error_list(error.code, error.read())) from None
    except (urllib.error.URLError, OSError) as error:
        raise unreachable(getattr(error, "reason", error)) from None


def read_service(
    request: urllib.request.Request, timeout_s: float, failed: Failed, unreachable: Unreachable
) -> bytes:
    """The whole answer, as ``open_service``; a connection lost while reading is ``unreachable`` too."""
    try:
        with open_service(request, timeout_s, failed, unreachable) as response:
            return response.read()
    except OSError as error:
        raise unreachable(getattr(error, "reason", error)) from None


def json_object(payload: bytes) -> dict[str, Any] | None:
    """The answer as a JSON object; None when it is not JSON or not an object."""
    try:
        answer = json.loads(payload)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None
