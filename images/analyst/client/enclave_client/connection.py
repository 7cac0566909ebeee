"""``connect()`` and ``Connection``: the gateway's API as pandas DataFrames."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from enclave_client.errors import QueryError
from enclave_client.frame import QueryFrame
from enclave_client.progress import ProgressDisplay, progress_line
from enclave_client.service_http import error_list, service_request

__all__ = ["Connection", "Progress", "QueryError", "connect", "progress_line"]

GATEWAY_URL_ENV = "ENCLAVE_GATEWAY_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
PROJECT_ENVS = ("ENCLAVE_PROJECT", "JUPYTERHUB_SERVER_NAME")
ARROW_STREAM = "application/vnd.apache.arrow.stream"

Progress = Callable[..., None]
STATUS_POLL_S = 1.0
PROGRESS_AFTER_S = 2.0  # fast queries show nothing


def _takes_status(progress: Progress) -> bool:
    """Whether a progress callable accepts the gateway's status (``status=``) besides the time."""
    try:
        return "status" in inspect.signature(progress).parameters
    except (TypeError, ValueError):
        return False


def connect(
    url: str | None = None,
    token: str | None = None,
    project: str | None = None,
    *,
    timeout_s: float = 3600.0,
) -> Connection:
    """A connection to the gateway; by default everything comes from the server's environment."""
    url = url or os.environ.get(GATEWAY_URL_ENV)
    token = token or os.environ.get(TOKEN_ENV)
    project = project or next((os.environ[e] for e in PROJECT_ENVS if os.environ.get(e)), None)
    if not url or not token:
        raise QueryError(
            0,
            [
                {
                    "code": "client_not_configured",
                    "message": {
                        "en": f"Set {GATEWAY_URL_ENV} and {TOKEN_ENV} (the enclave's notebook servers do)",
                        "zh": f"请设置 {GATEWAY_URL_ENV} 和 {TOKEN_ENV}（领地的笔记本服务器会自动设置）",
                    },
                }
            ],
        )
    return Connection(url, token, project, timeout_s=timeout_s)


class Connection:
    """One analyst's connection to their project through the gateway."""

    def __init__(
        self, url: str, token: str, project: str | None = None, *, timeout_s: float = 3600.0
    ) -> None:
        self.url = url.rstrip("/") + "/"
        self.project = project
        self.timeout_s = timeout_s
        self.progress_after_s = PROGRESS_AFTER_S
        self._token = token

    def __repr__(self) -> str:
        return f"<enclave_client.Connection {self.url} project={self.project}>"

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout_s: float | None = None
    ) -> tuple[str, bytes]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = service_request(
            self.url + path,
            method,
            self._token,
            data=data,
            content_type="" if data is None else "application/json",
            accept=f"{ARROW_STREAM}, application/json",
            project=self.project,
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s) as response:
                return response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as error:
            raise QueryError(error.code, error_list(error.code, error.read())) from None
        except urllib.error.URLError as error:
            raise QueryError(
                0,
                [
                    {
                        "code": "gateway_unreachable",
                        "message": {
                            "en": f"Cannot reach the query gateway at {self.url}: {error.reason}",
                            "zh": f"无法连接查询网关 {self.url}：{error.reason}",
                        },
                    }
                ],
            ) from None

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        _, payload = self._request(method, path, body)
        return json.loads(payload)

    def tables(self) -> list[str]:
        """The names of the project's views."""
        return [view["name"] for view in self._json("GET", "api/views")["views"]]

    def describe(self, view: str) -> Any:
        """The view's columns as a DataFrame: name, role, generalisation, description."""
        import pandas as pd

        info = self._json("GET", f"api/views/{quote(view, safe='')}")["view"]
        return pd.DataFrame(info["columns"], columns=["name", "role", "generalize", "description"])

    def status(self, query_id: str) -> dict[str, Any] | None:
        """Where a query is on the gateway: ``{"state": "queued", "position": 3, ...}``, ``running``;
        None once it has ended or when the gateway cannot say."""
        try:
            _, payload = self._request("GET", f"api/queries/{quote(query_id, safe='')}", timeout_s=5.0)
            return json.loads(payload)
        except (QueryError, ValueError, OSError):
            return None

    def cancel(self, query_id: str) -> bool:
        """Cancel a running query; False when it had already finished."""
        return bool(self._json("DELETE", f"api/queries/{quote(query_id, safe='')}").get("cancelled"))

    def sql(
        self,
        query: str,
        *,
        synthetic: bool = False,
        query_id: str | None = None,
        progress: Progress | str | None = "auto",
    ) -> Any:
        """Run the query; a DataFrame whose ``attrs`` say how many groups were suppressed (and whose
        display says so too).

        The request runs on a helper thread so that an interrupt (Ctrl-C, the notebook's stop
        button) reaches this thread at once: the query is then cancelled on the gateway. A query
        running longer than ``progress_after_s`` shows its state and time (``"auto"``: a line that
        updates in place, removed at the end), or calls ``progress(elapsed[, status=...])``; None
        shows nothing.
        """
        if progress == "auto":
            progress = ProgressDisplay()
        if isinstance(progress, str):
            raise ValueError("progress: a callable, None or 'auto'")
        query_id = query_id or uuid.uuid4().hex
        body = {"sql": query, "synthetic": synthetic, "query_id": query_id, "format": "arrow"}
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["response"] = self._request("POST", "api/query", body)
            except BaseException as error:  # handed to the calling thread
                outcome["error"] = error

        worker = threading.Thread(target=call, name=f"enclave-query-{query_id}", daemon=True)
        started = time.monotonic()
        worker.start()
        shown = False
        with_status = progress is not None and _takes_status(progress)
        status: dict[str, Any] | None = None
        polled = -STATUS_POLL_S  # ask the gateway as soon as the indicator shows
        try:
            while worker.is_alive():
                worker.join(0.1)
                elapsed = time.monotonic() - started
                if progress is not None and elapsed >= self.progress_after_s and worker.is_alive():
                    if with_status and elapsed - polled >= STATUS_POLL_S:
                        polled = elapsed
                        status = self.status(query_id) or status
                    if with_status:
                        progress(elapsed, status=status)
                    else:
                        progress(elapsed)
                    shown = True
        except KeyboardInterrupt:
            self._cancel_quietly(query_id)
            raise
        finally:
            if shown:
                finish = getattr(progress, "finish", None)
                if callable(finish):
                    finish()
                else:
                    sys.stderr.write("\n")
        if "error" in outcome:
            raise outcome["error"]
        content_type, payload = outcome["response"]
        return _dataframe(content_type, payload, synthetic)

    def _cancel_quietly(self, query_id: str) -> None:
        with contextlib.suppress(QueryError):
            self.cancel(query_id)


def _dataframe(content_type: str, payload: bytes, synthetic: bool) -> Any:
    import pandas as pd

    if content_type.startswith(ARROW_STREAM):
        table = pa.ipc.open_stream(payload).read_all()
        meta = table.schema.metadata or {}
        frame = table.to_pandas()
        frame.attrs["suppressed_groups"] = int(meta.get(b"enclave.suppressed_groups", b"0"))
        frame.attrs["notices"] = json.loads(meta.get(b"enclave.notices", b"[]"))
        frame.attrs["query_id"] = meta.get(b"enclave.query_id", b"").decode()
    else:
        body = json.loads(payload)
        frame = pd.DataFrame(body["rows"], columns=body["columns"])
        frame.attrs["suppressed_groups"] = int(body.get("suppressed_groups", 0))
        frame.attrs["notices"] = list(body.get("notices", []))
        frame.attrs["query_id"] = body.get("query_id", "")
    frame.attrs["synthetic"] = synthetic
    shown = QueryFrame(frame)
    shown.attrs = dict(frame.attrs)
    return shown
