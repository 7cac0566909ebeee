"""A real JupyterHub with the export service registered, the service itself served in a thread, an
enclave with one active project (PI alice, analyst bob, reviewers rev1..rev3), and hub users with
tokens for the service. Every port is a free port on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from enclave import db
from enclave.config import Paths
from enclave.db.session import dispose_all
from tests.export_review.factories import PROJECT, ExportEnv, make_project
from tests.gateway.conftest import RunningService
from tests.harness.services import hub_with_service, multipart_body

HUB_CONFIG = Path(__file__).with_name("hub_config.py")
SERVICE = "enclave-export"
SERVICE_PREFIX = f"/services/{SERVICE}/"
USERS = ("alice", "bob", "rev1", "rev2", "rev3", "carol")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    method: str,
    url: str,
    token: str | None = None,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
) -> Response:
    request = urllib.request.Request(url, data=body, method=method)
    if token:
        request.add_header("Authorization", f"token {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def multipart(fields: dict[str, str], files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body: text fields and ``files`` parts."""
    return multipart_body(list(fields.items()), [("files", filename, data) for filename, data in files])


@dataclass
class Stack:
    """The hub, the service behind its proxy, the enclave, and a service token per user."""

    public_url: str  # the proxy: what a browser opens
    api_url: str
    admin_token: str
    env: ExportEnv
    tokens: dict[str, str] = field(default_factory=dict)
    direct_url: str = ""  # the service itself, not behind the proxy: for raw-socket tests
    service: Any = None  # the RunningExportService (its tornado app lists the routes)

    @property
    def service_url(self) -> str:
        return f"{self.public_url}{SERVICE_PREFIX}"

    def api(self, method: str, path: str, user: str | None, **kwargs: Any) -> Response:
        token = self.tokens[user] if user else None
        return call(method, f"{self.service_url}api/{path}", token, **kwargs)

    def submit(self, user: str, files: list[tuple[str, bytes]], **fields: str) -> Response:
        body, content_type = multipart(
            {"project": PROJECT, "justification": "Table 1 of the paper", **fields}, files
        )
        return self.api("POST", "requests", user, body=body, content_type=content_type)

    def vote(self, user: str, request_id: str, **ballot: str) -> Response:
        return self.api(
            "POST",
            f"requests/{request_id}/votes",
            user,
            body=json.dumps(ballot).encode(),
            content_type="application/json",
        )

    def audit(self, request_id: str, outcome: str = "success") -> list[tuple[str, str]]:
        from enclave import audit

        with self.env.session() as s:
            events = audit.tail(s, limit=1000)
            return [
                (e.action, e.actor)
                for e in events
                if e.object == f"export:{request_id}" and e.outcome == outcome
            ]


class RunningExportService(RunningService):
    """The export service on its own event loop in a thread."""

    def __init__(self, **settings: Any) -> None:
        from export_review.web.app import ExportReviewApp

        super().__init__(ExportReviewApp(**settings), "export-web")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("export-web")
    url = f"sqlite:///{root / 'state.db'}"
    db.migrate(url)
    (root / "home").mkdir()
    (root / "work").mkdir()
    env = ExportEnv(db.connect(url), Paths(root / "home"), root / "work")
    make_project(env)
    try:
        with (
            hub_with_service(root, HUB_CONFIG, SERVICE) as hub,
            hub.serving(RunningExportService, env.paths.home, url, "api/requests") as service,
        ):
            stack = Stack(hub.public_url, hub.api_url, hub.admin_token, env)
            stack.direct_url = hub.direct_url
            stack.service = service
            stack.tokens.update(hub.user_tokens(USERS, "export tests"))
            yield stack
    finally:
        dispose_all()
