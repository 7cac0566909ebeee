"""Every error of every service has one shape (STYLE §5.12, issue 15):
``{"ok": false, "errors": [{"code", "message": {"en", "zh"}}], "status"}``.

The first part walks every route of the gateway, export review, the steward console and the runs
service, taken from each service's own tornado ``Application`` (its router's rules), so a new route is
covered as soon as it exists. Each service runs in this process, on the shared state database, with
its hub's token check answered here (``FakeHub``): no JupyterHub is needed to reach the errors.

* An API route (an ``ApiHandler`` of ``enclave.services.handlers`` or the gateway's ``BaseHandler``)
  answers every failure in the shape with a stable code: no token (401), a forged token (401), a
  method it does not implement (405 ``http_405``), an unknown sub-path (404), a body that is not JSON
  where it reads one (400 ``body_invalid``) and a body over its cap (413 ``body_too_large``, before
  the body is read).
* A page answers in its error page (the code in ``<code class="error-code">``) or sends an anonymous
  browser to the hub's login; nothing ever shows a traceback.

The second part checks the gateway's own codes against a real hub (tokens the hub mints).

The analyst image's server extension (``images/analyst/lockdown``) needs jupyter_server, which the
vault's environment does not have: its errors are checked in ``tests/e2e``.
"""

from __future__ import annotations

import inspect
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest
from jupyterhub.services.auth import HubAuth, HubOAuthCallbackHandler
from tornado.web import Application, RequestHandler, StaticFileHandler

from enclave import audit, db
from enclave.config import Paths
from enclave.db.session import dispose_all
from enclave.gateway.handlers import BaseHandler as GatewayHandler
from enclave.services.handlers import ApiHandler, PageHandler
from tests.export_review.factories import PROJECT, ExportEnv, make_project
from tests.gateway.conftest import (  # noqa: F401 (fixtures)
    Hub,
    RunningGateway,
    RunningService,
    enclave,
    gateway,
    http,
    hub,
)
from tests.test_routes_default_deny import ALLOWLIST, methods, routes

# ---- the one shape ----------------------------------------------------------------------------------


def assert_error_shape(status: int, body: Any, expected_status: int) -> list[str]:
    assert status == expected_status, body
    assert isinstance(body, dict) and set(body) == {"ok", "errors", "status"}, body
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["errors"], list) and body["errors"]
    for entry in body["errors"]:
        # a guard refusal may add how to rewrite the query (hint) and its docs section (doc), bilingual too
        assert {"code", "message"} <= set(entry) <= {"code", "message", *OPTIONAL_FIELDS}, entry
        assert isinstance(entry["code"], str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", entry["code"]), entry
        for key in set(entry) - {"code"}:
            assert isinstance(entry[key], dict) and set(entry[key]) == {"en", "zh"}, entry
            assert isinstance(entry[key]["en"], str) and isinstance(entry[key]["zh"], str), entry
            assert entry[key]["en"].strip() and entry[key]["zh"].strip(), entry
    return [entry["code"] for entry in body["errors"]]


OPTIONAL_FIELDS = ("hint", "doc")


# ---- every route of every service, in this process ---------------------------------------------------

ANALYST = "analyst-token"  # bob, analyst of PROJECT: his server's token, allowed to reach the services
PERSON = "person-token"  # bob's own login: what a browser or a reviewer's script sends the export review
FORGED = "forged-token"
BEYOND_EVERY_CAP = 200 * 1024 * 1024  # a declared body larger than any route's cap (uploads: 110 MiB)
SAMPLES = {  # a value for each URL group of the services' routes
    r"([a-z][a-z0-9_]*)": "patients",
    r"([^/]+)": "nothing",
    r"(exp-[0-9a-f]{16})": "exp-0000000000000000",
    r"(run-[0-9a-f]{12})": "run-000000000000",
    r"(app-[0-9a-f]{16})": "app-0000000000000000",
    r"([a-z0-9][a-z0-9-]{1,62})": PROJECT,
    r"([0-9a-f]{64})": "0" * 64,
    r"(.+)": "out.csv",
    r"(.*)": "no-such-file.css",
}
# Routes that are neither API nor page, and what is asserted of them.
OTHER_ROUTES = {
    HubOAuthCallbackHandler: "the hub login's callback (JupyterHub's): a 4xx, no traceback",
    StaticFileHandler: "the stylesheet: an unknown file is a 404, no traceback",
}
WRONG_METHODS = ("PUT", "PATCH", "DELETE", "POST", "GET")
BODY_METHODS = ("POST", "PUT", "PATCH")
ERROR_CODE = re.compile(r'<code class="error-code">([a-z0-9_]+)</code>')


# The hub's models of the tokens: bob's server token, which also carries ``access:services`` (the
# services' login scope), and bob's own login, bound to no server.
MODELS = {
    ANALYST: {
        "kind": "user",
        "name": "bob",
        "groups": [],
        "scopes": [f"access:servers!server=bob/{PROJECT}", "access:services"],
    },
    PERSON: {"kind": "user", "name": "bob", "groups": [], "scopes": ["access:services"]},
}
# Who calls each service: the export review's pages and decisions are refused to a workspace's token
# (export_review.web.handlers.base.WorkspaceTokens), so its routes are tried with bob's own login.
CALLER = {"enclave-export": PERSON}


class FakeHub:
    """The hub's answer for a token (``HubAuth._check_hub_authorization``), given from ``MODELS``."""

    async def check(
        self, url: str, api_token: str, cache_key: str | None = None, use_cache: bool = True
    ) -> dict[str, Any] | None:
        model = MODELS.get(api_token)
        return json.loads(json.dumps(model)) if model else None

    def install(self, app: Application) -> None:
        """Answer for every ``HubAuth`` the application's handlers use (their ``hub_auth``, their
        ``authenticator``'s, their context's)."""
        found: dict[int, HubAuth] = {}

        def visit(value: Any, depth: int) -> None:
            if isinstance(value, HubAuth):
                found[id(value)] = value
            elif depth < 3:
                for name in ("ctx", "hub_auth", "authenticator"):
                    if hasattr(value, name):
                        visit(getattr(value, name), depth + 1)

        for rule in app.wildcard_router.rules:
            for value in (rule.target_kwargs or {}).values():
                visit(value, 0)
        assert found, "no HubAuth found in the application's handlers"
        for hub_auth in found.values():
            hub_auth._check_hub_authorization = self.check


@dataclass
class Service:
    name: str
    running: RunningService

    @property
    def app(self) -> Application:
        return self.running.app.http_server.request_callback

    @property
    def prefix(self) -> str:
        return str(self.running.app.base_url)

    @property
    def caller(self) -> str:
        """The token this service's routes are tried with (``CALLER``)."""
        return CALLER.get(self.name, ANALYST)

    def send(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request to the service itself (redirects are answers, not followed)."""
        connection = HTTPConnection("127.0.0.1", self.running.app.bound_port, timeout=60)
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"token {token}"
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def codes(self, expected_status: int, where: str) -> list[str]:
        """The error codes of a JSON error in the one shape (fails with ``where`` otherwise)."""
        assert b"Traceback" not in self.body, (where, self.body[:2000])
        assert self.headers.get("content-type", "").startswith("application/json"), (where, self.status)
        try:
            body = json.loads(self.body)
        except ValueError:
            raise AssertionError(f"{where}: not JSON ({self.status}): {self.body[:500]!r}") from None
        try:
            return assert_error_shape(self.status, body, expected_status)
        except AssertionError as error:
            raise AssertionError(f"{where}: {error}") from None

    def page_codes(self, where: str) -> list[str]:
        """The codes of an error page (or nothing for a redirect to the hub's login)."""
        assert b"Traceback" not in self.body and self.status < 500, (where, self.status, self.body[:2000])
        if self.status in (302, 303):
            assert "/hub/" in self.headers.get("location", ""), (where, self.headers)
            return []
        assert self.status >= 400, (where, self.status)
        found = ERROR_CODE.findall(self.body.decode())
        assert found, (where, self.status, self.body[:2000])
        return found


class RunningApp(RunningService):
    def __init__(self, cls: type, **settings: Any) -> None:
        super().__init__(cls(**settings), cls.__name__)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    """The four services on one SQLite state database, each on a free port, with ``FakeHub``."""
    from enclave.console.app import ConsoleApp
    from enclave.gateway.app import GatewayApp
    from enclave.runs.app import RunsApp
    from export_review.web.app import ExportReviewApp

    root = tmp_path_factory.mktemp("error-shape")
    url = f"sqlite:///{root / 'state.db'}"
    db.migrate(url)
    paths = Paths(root / "home")
    paths.home.mkdir()
    (root / "work").mkdir()
    audit.use_vault(url, paths)
    make_project(ExportEnv(db.connect(url), paths, root / "work"))  # bob: an analyst of PROJECT
    common = {
        "ip": "127.0.0.1",
        "port": 0,
        "hub_api_url": "http://127.0.0.1:9/hub/api",  # nothing there: every token is FakeHub's
        "api_token": "service-token",
        "enclave_home": str(paths.home),
        "database_url": url,
    }
    apps: dict[str, tuple[type, dict[str, Any]]] = {
        "gateway": (GatewayApp, {"workers": 1}),
        "enclave-export": (ExportReviewApp, {}),
        "console": (ConsoleApp, {}),
        "runs": (RunsApp, {"run_worker": False, "auth_cache_ttl_s": 0}),
    }
    started: dict[str, Service] = {}
    try:
        for name, (cls, own) in apps.items():
            settings = {**common, "base_url": f"/services/{name}/", **own}
            if cls is not GatewayApp:
                settings["service_name"] = name
            started[name] = Service(name, RunningApp(cls, **settings))
            FakeHub().install(started[name].app)
        yield started
    finally:
        for service in started.values():
            service.running.stop()
        dispose_all()


def sample(pattern: str) -> str:
    """A concrete path the route's pattern matches: each group from ``SAMPLES``, an alternation's first
    choice."""
    path = pattern.removesuffix("$")
    for group, value in SAMPLES.items():
        path = path.replace(group, value)
    path = path.replace("/?", "/").replace("\\.", ".").replace(".*", "anything")
    path = re.sub(r"\(([a-z_.]+)(\|[a-z_.]+)*\)", r"\1", path)
    assert re.fullmatch(pattern, path) and not re.search(r"[()\[\]*+?\\{}|^$]", path), (
        f"no sample for a group of route {pattern!r}: add one to SAMPLES"
    )
    return path


def kind(handler: type[RequestHandler]) -> str:
    if issubclass(handler, (ApiHandler, GatewayHandler)):
        return "api"
    if issubclass(handler, PageHandler):
        return "page"
    for other in OTHER_ROUTES:
        if issubclass(handler, other):
            return "other"
    raise AssertionError(
        f"{handler.__module__}.{handler.__name__}: neither an ApiHandler nor a PageHandler; base it on "
        "one (enclave.services.handlers), so its errors have the one shape, or list it in OTHER_ROUTES"
    )


def every_route(services: dict[str, Service]) -> Iterator[tuple[Service, str, type[RequestHandler]]]:
    for service in services.values():
        for pattern, handler in routes(service.app):
            yield service, pattern, handler


def is_catch_all(pattern: str, handler: type[RequestHandler]) -> bool:
    """A service's ``api/.*``: it answers 404 for any method."""
    return pattern.removesuffix("$").endswith(".*") and methods(handler) == ["GET"]


def reads_json_body(handler: type[RequestHandler]) -> bool:
    return any("self.json_body()" in inspect.getsource(c) for c in handler.__mro__ if _is_ours(c))


def _is_ours(cls: type) -> bool:
    return cls.__module__.split(".")[0] in ("enclave", "export_review")


def test_every_route_is_an_api_or_a_page(services: dict[str, Service]) -> None:
    kinds: dict[str, set[str]] = {}
    for service, pattern, handler in every_route(services):
        found = kind(handler)
        kinds.setdefault(service.name, set()).add(found)
        under_api = pattern.startswith(f"{service.prefix}api/")
        assert found == "api" or not under_api, f"{pattern}: under api/ but {handler.__name__} is a {found}"
    assert kinds == {
        "gateway": {"api"},
        "enclave-export": {"api", "page", "other"},
        "console": {"api", "page", "other"},
        "runs": {"api", "page", "other"},
    }


def test_no_handler_parses_a_body_itself() -> None:
    """Bodies are read by the shared helpers (``http_errors.json_object``, ``UploadHandler``), so a
    malformed one is ``body_invalid`` on every route."""
    roots = [Path(__file__).resolve().parents[2] / d for d in ("enclave", "export_review")]
    parsing = re.compile(r"json\.loads\([^)]*(request\.body|self\._body)")
    offenders = [str(f) for root in roots for f in root.rglob("*.py") if parsing.search(f.read_text())]
    assert offenders == []


def test_no_token_and_a_forged_one(services: dict[str, Service]) -> None:
    tried = 0
    for service, pattern, handler in every_route(services):
        if kind(handler) != "api" or handler.__name__ in ALLOWLIST or is_catch_all(pattern, handler):
            continue
        path = sample(pattern)
        for method in methods(handler):
            body = b"{}" if method in BODY_METHODS else None
            where = f"{service.name} {method} {path}"
            anonymous = service.send(method, path, None, body)
            assert set(anonymous.codes(401, where)) <= {"token_missing", "login_required"}, where
            forged = service.send(method, path, FORGED, body)
            assert set(forged.codes(401, where)) <= {"token_invalid", "login_required"}, where
            tried += 1
    assert tried >= 20


def test_a_method_a_route_does_not_have(services: dict[str, Service]) -> None:
    for service, pattern, handler in every_route(services):
        if kind(handler) == "other":
            continue
        path = sample(pattern)
        wrong = next(m for m in WRONG_METHODS if m not in methods(handler))
        answer = service.send(wrong, path, service.caller, b"{}" if wrong in BODY_METHODS else None)
        where = f"{service.name} {wrong} {path}"
        if kind(handler) == "page":
            assert answer.status == 405 and answer.page_codes(where) == ["http_405"], where
        elif is_catch_all(pattern, handler):
            assert answer.codes(404, where) == ["http_404"]
        else:
            assert answer.codes(405, where) == ["http_405"]


def test_an_unknown_path(services: dict[str, Service]) -> None:
    for service in services.values():
        where = f"{service.name} unknown api path"
        answer = service.send("GET", f"{service.prefix}api/no-such-route", service.caller)
        assert answer.codes(404, where) == ["http_404"]
        answer = service.send("POST", f"{service.prefix}api/no-such-route", None, b"{}")
        assert answer.codes(404, where) == ["http_404"]
        if service.name != "gateway":  # the gateway has no pages: every path is its API's
            page = service.send("GET", f"{service.prefix}no-such-page", service.caller)
            assert page.status == 404 and page.page_codes(f"{service.name} page") == ["http_404"]
    for service, pattern, handler in every_route(services):
        path = sample(pattern).rstrip("/") + "/no-such-thing"
        if kind(handler) != "api" or not path.startswith(f"{service.prefix}api/"):
            continue
        answer = service.send("GET", path, service.caller)
        answer.codes(404, f"{service.name} GET {path}")  # http_404, or the route's own not-found code


def test_a_body_that_is_not_json(services: dict[str, Service]) -> None:
    readers = 0
    for service, pattern, handler in every_route(services):
        if kind(handler) != "api" or is_catch_all(pattern, handler):
            continue
        path = sample(pattern)
        for method in (m for m in methods(handler) if m in BODY_METHODS):
            where = f"{service.name} {method} {path}"
            answer = service.send(method, path, service.caller, b'{"not": json')
            if reads_json_body(handler):
                assert answer.codes(400, where) == ["body_invalid"]
                readers += 1
            else:  # the route reads no JSON body: whatever it answers, in the shape
                assert answer.status >= 400, where
                answer.codes(answer.status, where)
    assert readers >= 3  # the gateway's query, export review's votes, the runs service's submission


def test_a_body_over_the_cap_is_refused_before_it_is_read(services: dict[str, Service]) -> None:
    """A declared length over the route's cap: 413 ``body_too_large`` at once (the body is never sent
    here), from every API route that takes a body; a page answers no more than a 4xx."""
    tried = 0
    for service, pattern, handler in every_route(services):
        if kind(handler) == "other":
            continue
        path = sample(pattern)
        for method in (m for m in methods(handler) if m in BODY_METHODS):
            where = f"{service.name} {method} {path}"
            headers = {"Content-Length": str(BEYOND_EVERY_CAP)}
            # Headers only: a body byte the server never reads could turn its early answer into a reset.
            answer = service.send(method, path, service.caller, None, headers)
            if kind(handler) == "api" and not is_catch_all(pattern, handler):
                assert answer.codes(413, where) == ["body_too_large"]
                tried += 1
            else:
                assert answer.status in (400, 404, 413) and b"Traceback" not in answer.body, where
    assert tried >= 9


def test_pages_send_an_anonymous_browser_to_log_in_or_show_an_error_page(
    services: dict[str, Service],
) -> None:
    for service, pattern, handler in every_route(services):
        if kind(handler) == "api":
            continue
        path = sample(pattern)
        for method in methods(handler):
            where = f"{service.name} {method} {path}"
            body = b"" if method in BODY_METHODS else None
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
            answer = service.send(method, path, None, body, headers)
            if kind(handler) == "other":
                assert 400 <= answer.status < 500 and b"Traceback" not in answer.body, where
            else:
                assert set(answer.page_codes(where)) <= {"login_required", "http_401", "http_403"}, where


# ---- the gateway's own codes, with tokens a real hub mints ----------------------------------------


def raw(method: str, url: str, headers: dict[str, str], data: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def token(hub: Hub) -> str:  # noqa: F811
    return hub.server_token("bob", PROJECT)[0]


def test_no_token(gateway: RunningGateway) -> None:  # noqa: F811
    for method, path in (("GET", "api/views"), ("POST", "api/query"), ("DELETE", "api/queries/abc")):
        status, body = raw(method, gateway.url + path, {}, b"{}" if method == "POST" else None)
        assert assert_error_shape(status, body, 401) == ["token_missing"]


def test_forged_token(gateway: RunningGateway) -> None:  # noqa: F811
    status, body = http("GET", gateway.url + "api/views", "not-a-real-token")
    assert assert_error_shape(status, body, 401) == ["token_invalid"]


def test_broad_token(hub: Hub, gateway: RunningGateway) -> None:  # noqa: F811
    status, body = http("GET", gateway.url + "api/views", hub.user_token("bob"))
    assert assert_error_shape(status, body, 403) == ["token_not_server_bound"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not json", "body_invalid"),
        (b"[1, 2]", "body_invalid"),
        (b"{}", "sql_missing"),
        (b'{"sql": "   "}', "sql_missing"),
        (b'{"sql": "SELECT 1", "synthetic": "yes"}', "synthetic_invalid"),
        (b'{"sql": "SELECT 1", "format": "csv"}', "format_invalid"),
        (b'{"sql": "SELECT 1", "query_id": "../../x"}', "query_id_invalid"),
        (b'{"sql": "SELECT 1", "query_id": 7}', "query_id_invalid"),
    ],
)
def test_bad_query_requests(gateway: RunningGateway, token: str, data: bytes, code: str) -> None:  # noqa: F811
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    status, body = raw("POST", gateway.url + "api/query", headers, data)
    assert assert_error_shape(status, body, 400) == [code]


def test_guard_refusal_lists_the_reasons(gateway: RunningGateway, token: str) -> None:  # noqa: F811
    status, body = http("POST", gateway.url + "api/query", token, {"sql": "SELECT * FROM patients"})
    codes = assert_error_shape(status, body, 422)
    assert codes and "query_rejected" not in codes  # the reasons, not the wrapper
    for entry in body["errors"]:  # each says how to rewrite the query and where its rule is explained
        assert set(entry) == {"code", "message", *OPTIONAL_FIELDS}, entry
        assert entry["doc"]["en"].startswith("docs/guard.md#"), entry


def test_the_shape_check_refuses_other_or_malformed_fields() -> None:
    good = {"code": "QRY_JOIN", "message": {"en": "a", "zh": "甲"}}
    assert_error_shape(422, {"ok": False, "errors": [good], "status": 422}, 422)
    for bad in (
        {**good, "detail": {"en": "a", "zh": "甲"}},
        {**good, "hint": "rewrite it"},
        {**good, "hint": {"en": "rewrite it"}},
        {**good, "doc": {"en": "docs/guard.md#dates", "zh": " "}},
    ):
        with pytest.raises(AssertionError):
            assert_error_shape(422, {"ok": False, "errors": [bad], "status": 422}, 422)


def test_unknown_view_route_and_method(gateway: RunningGateway, token: str) -> None:  # noqa: F811
    status, body = http("GET", gateway.url + "api/views/nope", token)
    assert assert_error_shape(status, body, 404) == ["view_not_found"]
    status, body = http("GET", gateway.url + "api/nothing-here", token)
    assert assert_error_shape(status, body, 404) == ["http_404"]
    status, body = http("PUT", gateway.url + "api/views", token, {})
    assert assert_error_shape(status, body, 405) == ["http_405"]


def test_cancel_bad_id(gateway: RunningGateway, token: str) -> None:  # noqa: F811
    status, body = http("DELETE", gateway.url + "api/queries/NOT_VALID", token)
    assert assert_error_shape(status, body, 400) == ["query_id_invalid"]
