"""A RECORDING STAND-IN for the runs service's HTTP API, for the client-side tests only.

It is not a fake of the service's behaviour: it answers what each test scripts and records every
request (method, path, headers, JSON body), so a test can check what the client *sends* (the path
checks, the parameter encoding, the cancel on interrupt) and how it *maps* an answer (errors).
Whatever the real service decides (validation, visibility, states) is tested against the real
service in tests/runs/test_client_runs.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Answer = tuple[int, Any]  # (status, JSON body, or bytes for a file, or str for text)
Script = Callable[[Recorded], Answer]


def describe(run_id: str = "run-0123456789ab", state: str = "queued", **extra: Any) -> dict[str, Any]:
    """A run in the shape of ``enclave.runs.service.describe`` (the fields the client reads)."""
    data: dict[str, Any] = {
        "id": run_id,
        "project": "cardio",
        "user": "alice",
        "kind": "run",
        "template": None,
        "notebook": {"name": "table1.ipynb", "sha256": "0" * 64},
        "parameters": {},
        "state": state,
        "progress": {},
        "error": None,
        "outputs": [],
    }
    data.update(extra)
    return data


@dataclass
class RecordingService:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    script: Script = lambda request: (201 if request.method == "POST" else 200, describe())

    def of(self, method: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method]


@contextmanager
def recording_service(script: Script | None = None) -> Iterator[RecordingService]:
    """A server on 127.0.0.1 that records every request and answers ``script(request)``."""
    server: ThreadingHTTPServer
    service = RecordingService(url="")
    if script is not None:
        service.script = script

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            recorded = Recorded(self.command, self.path, dict(self.headers.items()), body)
            service.requests.append(recorded)
            status, answer = service.script(recorded)
            if isinstance(answer, bytes):
                payload, kind = answer, "application/octet-stream"
            elif isinstance(answer, str):
                payload, kind = answer.encode(), "text/plain; charset=utf-8"
            else:
                payload, kind = json.dumps(answer).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    service.url = f"http://127.0.0.1:{server.server_address[1]}/services/runs/"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="recording-runs", daemon=True
    )
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
