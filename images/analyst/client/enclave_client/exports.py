"""Export requests from the workspace: submit a file's bytes to the export review
(``$ENCLAVE_EXPORT_REVIEW_URL``) as this server's user and project, list your requests there, and
read the project's facts (title, access mode, days left). JupyterLab's "Request export" command
calls this through the server extension (``enclave_lockdown.exports``).

    from enclave_client import exports
    client = exports.connect()                                    # from the server's environment
    client.submit("table1.csv", data, "Table 1 of the paper")    # {"request": "exp-…", "state": …}
    client.mine()                                                 # your requests in this project
    client.project_facts()                                        # {"title", "access", "days_left", …}

Every failure raises ``ExportError`` (a ``QueryError``) with the service's stable code and English
and Chinese messages, in the services' error shape.
"""

from __future__ import annotations

import os
import uuid
from typing import Any
from urllib.parse import quote, urlencode

from enclave_client.errors import QueryError, error_entry
from enclave_client.service_http import ServiceClient, json_object, read_service, service_request

__all__ = ["MAX_EXPORT_BYTES", "ExportError", "ExportsClient", "connect"]

EXPORT_URL_ENV = "ENCLAVE_EXPORT_REVIEW_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
PROJECT_ENVS = ("ENCLAVE_PROJECT", "JUPYTERHUB_SERVER_NAME")
# The export review's default cap on a request's files (``max_request_bytes``); the service's own
# (deployment) caps, per file and per request, give the precise refusal below it.
MAX_EXPORT_BYTES = 100 * 1024 * 1024
LIST_FIELDS = ("id", "state", "version", "previous", "files", "created_at", "updated_at")


class ExportError(QueryError):
    """An export request could not be submitted or read; ``code`` is stable, ``status`` the HTTP one."""

    @property
    def refused(self) -> bool:
        return self.status in (403, 413, 422)

    def _title(self) -> str:
        return "Export refused / 导出被拒绝" if self.refused else "Export failed / 导出失败"


def _error(code: str, en: str, zh: str, status: int = 0) -> ExportError:
    return ExportError(status, [error_entry(code, en, zh)])


def multipart(fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body (text fields, then ``(field, filename, bytes)`` parts)."""
    boundary = f"enclave-{uuid.uuid4().hex}"
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode("utf-8") + b"\r\n"
    for name, filename, data in files:
        quoted = filename.replace("\\", "\\\\").replace('"', "%22").replace("\r", "").replace("\n", "")
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{quoted}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


class ExportsClient(ServiceClient):
    """The export review's API for one analyst's server (its token names the user)."""

    project: str

    def __init__(self, url: str, token: str, project: str, *, timeout_s: float = 120.0) -> None:
        super().__init__(url, token, project, timeout_s=timeout_s)

    def _unreachable(self, reason: object) -> ExportError:
        return _error(
            "export_unreachable",
            f"Cannot reach the export review at {self.url}: {reason}",
            f"无法连接导出审核服务 {self.url}：{reason}",
            status=502,
        )

    def _json(
        self, method: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> dict[str, Any]:
        request = service_request(self.url + path, method, self._token, data=body, content_type=content_type)
        payload = read_service(request, self.timeout_s, ExportError, self._unreachable)
        answer = json_object(payload)
        if answer is None:
            raise _error(
                "export_bad_answer",
                "The export review answered something that is not JSON",
                "导出审核服务的应答不是 JSON",
                status=502,
            )
        return answer

    def submit(
        self, name: str, data: bytes, justification: str, *, revises: str | None = None, abroad: bool = False
    ) -> dict[str, Any]:
        """Submit one file (its name and bytes) for review; ``{"request", "state", …}``."""
        if len(data) > MAX_EXPORT_BYTES:
            raise _error(
                "export_file_too_large",
                f"{name} is larger than {MAX_EXPORT_BYTES // (1024 * 1024)} MB",
                f"{name} 超过 {MAX_EXPORT_BYTES // (1024 * 1024)} MB",
                status=413,
            )
        fields = [("project", self.project), ("justification", justification)]
        if revises:
            fields.append(("revises", revises))
        if abroad:
            fields.append(("abroad", "yes"))
        body, content_type = multipart(fields, [("files", name, data)])
        answer = self._json("POST", "api/requests", body, content_type)
        return {k: v for k, v in answer.items() if k != "ok"}

    def mine(self) -> list[dict[str, Any]]:
        """The caller's own requests in this project, newest first (a few fields each)."""
        query = urlencode({"project": self.project, "mine": "yes"})
        rows = self._json("GET", f"api/requests?{query}").get("requests") or []
        return [{k: row.get(k) for k in LIST_FIELDS} for row in rows if isinstance(row, dict)]

    def project_facts(self) -> dict[str, Any]:
        """The project's title, access mode, state, period_end and days_left."""
        answer = self._json("GET", f"api/projects/{quote(self.project, safe='')}")
        return {k: v for k, v in answer.items() if k != "ok"}


def connect(url: str | None = None, token: str | None = None, project: str | None = None) -> ExportsClient:
    """The export review of this workspace: ``$ENCLAVE_EXPORT_REVIEW_URL``, the server's token, project."""
    url = url or os.environ.get(EXPORT_URL_ENV)
    token = token or os.environ.get(TOKEN_ENV)
    project = project or next((os.environ[e] for e in PROJECT_ENVS if os.environ.get(e)), None)
    if not url or not token or not project:
        raise _error(
            "export_not_configured",
            f"Set {EXPORT_URL_ENV}, {TOKEN_ENV} and ENCLAVE_PROJECT (the enclave's notebook servers do)",
            f"请设置 {EXPORT_URL_ENV}、{TOKEN_ENV} 和 ENCLAVE_PROJECT（领地的笔记本服务器会自动设置）",
            status=503,
        )
    return ExportsClient(url, token, project)
