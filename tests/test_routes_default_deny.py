"""Default deny on every route of the gateway and the export-review service (issue #14, item 14).

The routes come from each running service's tornado ``Application`` (its router's rules), not from a
list written here, so a new route is covered as soon as it exists; a route whose URL pattern has a
group this file cannot fill fails with a message saying what sample to add. Every HTTP method a
handler implements is tried by an anonymous caller, by a token that is not the route's kind of
principal, and by a member of another project; each must be refused.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.routing import PathMatches
from tornado.web import Application, RequestHandler

from tests.export_review.factories import GOOD_CSV, PROJECT
from tests.export_review.web.conftest import Response, Stack, call, multipart, stack  # noqa: F401
from tests.gateway.conftest import (  # noqa: F401 (fixtures)
    OTHER_PROJECT,
    Hub,
    RunningGateway,
    enclave,
    gateway,
    hub,
)

# Routes anyone may call, and why.
ALLOWLIST = {
    "HealthHandler": "gateway liveness for the hub and the deployment: answers {ok: true}, no data",
}


def routes(app: Application) -> list[tuple[str, type[RequestHandler]]]:
    """(URL pattern, handler class) of every rule of the application's router."""
    found = []
    for rule in app.wildcard_router.rules:
        assert isinstance(rule.matcher, PathMatches), rule
        found.append((rule.matcher.regex.pattern, rule.target))
    assert found
    return found


def methods(handler: type[RequestHandler]) -> list[str]:
    """The HTTP methods the handler implements (a catch-all that implements none is tried with GET)."""
    base = RequestHandler
    own = [
        m for m in handler.SUPPORTED_METHODS if getattr(handler, m.lower()) is not getattr(base, m.lower())
    ]
    return own or ["GET"]


def sample_path(pattern: str, samples: dict[str, str]) -> str:
    """A concrete path the pattern matches, each group filled from ``samples``."""
    path = pattern.removesuffix("$")
    for group, value in samples.items():
        path = path.replace(group, value)
    path = path.replace("/?", "/").replace(".*", "anything")
    assert re.fullmatch(pattern, path) and not re.search(r"[()\[\]*+?\\{}|^$]", path), (
        f"no sample for a group of route {pattern!r}: add one to this test's samples"
    )
    return path


# ---- the gateway ----------------------------------------------------------------------------------


def _gateway_principals(hub: Hub) -> dict[str, dict[str, str]]:  # noqa: F811
    dan, _ = hub.server_token("dan", OTHER_PROJECT)
    carol, _ = hub.server_token("carol", PROJECT)
    return {
        "anonymous": {},
        "personal token (not a server's)": {"Authorization": f"token {hub.user_token('alice')}"},
        "another project's token": {"Authorization": f"token {dan}", "X-Enclave-Project": PROJECT},
        "a non-member's server token": {"Authorization": f"token {carol}"},
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Show a redirect as the answer instead of following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _raw(method: str, url: str, headers: dict[str, str], body: bytes | None) -> Response:
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return Response(answer.status, dict(answer.headers), answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers), error.read())


def test_every_gateway_route_refuses(hub: Hub, gateway: RunningGateway) -> None:  # noqa: F811
    app = gateway.app.http_server.request_callback
    samples = {"([a-z][a-z0-9_]*)": "patients", "([^/]+)": uuid.uuid4().hex}
    principals = _gateway_principals(hub)
    origin = gateway.url.removesuffix(gateway.app.base_url)
    body = json.dumps({"sql": "SELECT count(*) AS n FROM patients", "format": "json"}).encode()
    tried = 0
    for pattern, handler in routes(app):
        if handler.__name__ in ALLOWLIST:
            continue
        path = sample_path(pattern, samples)
        for method in methods(handler):
            for who, headers in principals.items():
                data = body if method in ("POST", "PUT", "PATCH") else None
                answer = _raw(method, origin + path, {**headers, "Content-Type": "application/json"}, data)
                assert answer.status in (401, 403), (path, method, who, answer.status, answer.body)
                assert json.loads(answer.body)["ok"] is False
                tried += 1
    assert tried >= 4 * 4


# ---- the export-review service --------------------------------------------------------------------


@pytest.fixture(scope="module")
def request_id(stack: Stack) -> Iterator[str]:  # noqa: F811
    submitted = stack.submit("bob", [("table.csv", GOOD_CSV.encode())])
    assert submitted.status == 201, submitted.body
    yield submitted.json()["request"]


def _export_principals(stack: Stack) -> dict[str, str | None]:  # noqa: F811
    from tests.gateway.conftest import http

    # bob is the project's analyst, but this token is not for the export service.
    status, answer = http(
        "POST",
        f"{stack.api_url}/users/bob/tokens",
        stack.admin_token,
        {"scopes": ["read:users:name!user=bob"], "note": "not for the export service"},
    )
    assert status == 201, answer
    return {"anonymous": None, "token for another service": answer["token"], "another project": "carol"}


def _refused(answer: Response, path_has_args: bool, request_id: str) -> bool:
    if answer.status in (400, 401, 403, 404, 405):
        return True
    if answer.status in (301, 302, 303):  # a page sends an anonymous browser to the hub's login
        return "/hub/" in answer.headers.get("location", answer.headers.get("Location", ""))
    # A signed-in user's own lists and forms: allowed, but they show nothing of the project.
    return (
        not path_has_args
        and answer.status == 200
        and request_id.encode() not in answer.body
        and (PROJECT.encode() not in answer.body)
    )


def test_every_export_review_route_refuses(stack: Stack, request_id: str) -> None:  # noqa: F811
    app = stack.service.app.http_server.request_callback
    samples = {"(exp-[0-9a-f]{16})": request_id, "([^/]+)": "table.csv"}
    principals = _export_principals(stack)
    upload, upload_type = multipart(
        {"project": PROJECT, "justification": "x"}, [("t.csv", GOOD_CSV.encode())]
    )
    vote = json.dumps({"choice": "approve", "override": "x"}).encode()
    opener = urllib.request.build_opener(_NoRedirect)
    tried = 0
    for pattern, handler in routes(app):
        if handler.__name__ in ALLOWLIST:
            continue
        path = sample_path(pattern, samples)
        has_args = "(" in pattern
        for method in methods(handler):
            for who, user in principals.items():
                token = stack.tokens.get(user or "", user) if user else None
                headers = {"Authorization": f"token {token}"} if token else {}
                data = None
                if method == "POST":
                    multipart_route = handler.__name__ in ("RequestsApi", "SubmitPage")
                    data = upload if multipart_route else vote
                    headers["Content-Type"] = upload_type if multipart_route else "application/json"
                request = urllib.request.Request(
                    f"{stack.public_url}{path}", data=data, method=method, headers=headers
                )
                try:
                    with opener.open(request, timeout=30) as got:
                        answer = Response(got.status, dict(got.headers), got.read())
                except urllib.error.HTTPError as error:
                    answer = Response(error.code, dict(error.headers), error.read())
                assert _refused(answer, has_args, request_id), (path, method, who, answer.status, answer.body)
                tried += 1
    assert tried >= 10 * 3
    # Nothing changed on the way: the request is still waiting for its reviewers, with no votes.
    shown = stack.api("GET", f"requests/{request_id}", "bob").json()["request"]
    assert shown["state"] == "in_review" and shown["votes"] == []
