"""The runs service against a real hub (issue 12): the API with a workspace's server token (submit,
list, show, log, outputs, cancel, templates), the refusal of forged, personal and run tokens, of other
users' runs and of other projects' tokens, every route's default deny, and the pages (hub login,
English and Chinese, xsrf on the cancel form); on SQLite and PostgreSQL. Then the service without a
hub: its settings, its registration in the hub config, and its worker thread's start and stop."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session
from tornado.web import StaticFileHandler

from enclave import db
from enclave.config import Paths
from enclave.db.models import RunOutput
from enclave.roles import Role, grant
from enclave.runs import service
from enclave.runs.states import RunActor, RunState, move
from tests.conftest import state_database
from tests.console.conftest import Browser, xsrf_of
from tests.export_review.factories import ExportEnv, make_project
from tests.export_review.web.conftest import Response
from tests.gateway.conftest import RunningService, http
from tests.harness.services import hub_with_service
from tests.hub_config.test_bind_config import load, managed_service
from tests.runs.factories import TABLE_NOTEBOOK, fake_prepared, notebook, notebook_bytes
from tests.test_routes_default_deny import methods, routes, sample_path

HUB_CONFIG = Path(__file__).with_name("hub_config.py")
SERVICE = "runs"
SERVICE_PREFIX = f"/services/{SERVICE}/"
PROJECT = "cardio-2026"
OTHER = "onco-2026"
USERS = ("alice", "bob", "mallory", "carol", "stella")
TEMPLATE = notebook_bytes("print(region)", parameters="region = 'west'")


class RunningRuns(RunningService):
    def __init__(self, **settings: Any) -> None:
        from enclave.runs.app import RunsApp

        super().__init__(RunsApp(**settings), "runs")


@dataclass
class RunsStack:
    """The hub, the runs service behind its proxy, the enclave, and tokens: each user's server token
    per project (what a workspace holds) and a browser-style token for the pages."""

    public_url: str
    api_url: str
    admin_token: str
    env: ExportEnv
    service: Any
    page_tokens: dict[str, str] = field(default_factory=dict)
    server_tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def service_url(self) -> str:
        return f"{self.public_url}{SERVICE_PREFIX}"

    def server_token(self, user: str, project: str = PROJECT) -> str:
        key = (user, project)
        if key not in self.server_tokens:
            status, answer = http("POST", f"{self.api_url}/users/{user}", self.admin_token)
            assert status in (201, 409), answer
            scopes = {"scopes": [f"access:servers!server={user}/{project}"], "note": "workspace"}
            status, answer = http("POST", f"{self.api_url}/users/{user}/tokens", self.admin_token, scopes)
            assert status == 201, answer
            self.server_tokens[key] = answer["token"]
        return self.server_tokens[key]

    def api(
        self,
        method: str,
        path: str,
        token: str | None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        request_headers = {**(headers or {})}
        if data is not None:
            request_headers.setdefault("Content-Type", "application/json")
        return _send(method, f"{self.service_url}api/{path}", token, data, request_headers)

    def as_(self, user: str, method: str, path: str, body: Any = None, project: str = PROJECT) -> Response:
        return self.api(method, path, self.server_token(user, project), body)

    def page(self, path: str, user: str | None) -> Response:
        return _send("GET", f"{self.service_url}{path}", self.page_tokens.get(user or ""), None, {})

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.env.session() as session:
            yield session


def _send(method: str, url: str, token: str | None, data: bytes | None, headers: dict[str, str]) -> Response:
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=60) as answer:
            return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunsStack]:
    root = tmp_path_factory.mktemp("runs-service")
    for url in state_database(request, root / "state.db"):
        yield from _stack(root, url)


def _stack(root: Path, url: str) -> Iterator[RunsStack]:
    from enclave import audit

    db.migrate(url)
    paths = Paths(root / "home")
    paths.home.mkdir()
    (root / "work").mkdir()
    audit.use_vault(url, paths)
    env = ExportEnv(db.connect(url), paths, root / "work")
    make_project(env, extra_members=[("mallory", "analyst")])
    make_project(env, project_id=OTHER)  # bob is an analyst here too
    for project in (PROJECT, OTHER):
        fake_prepared(paths, project)
    with env.session() as session:
        grant(session, "stella", Role.STEWARD, actor="test")

    settings = {
        "run_worker": False,  # queued runs stay queued: Docker execution is the worker's tests'
        "auth_cache_ttl_s": 0,
        "max_timeout_s": 7200,
    }
    with (
        hub_with_service(root, HUB_CONFIG, SERVICE) as hub,
        hub.serving(RunningRuns, paths.home, url, "api/runs", **settings) as running,
    ):
        stack = RunsStack(hub.public_url, hub.api_url, hub.admin_token, env, running)
        stack.page_tokens.update(hub.user_tokens(USERS, "runs tests"))
        yield stack


def codes(response: Response) -> list[str]:
    body = response.json()
    assert body["ok"] is False and body["status"] == response.status, body
    for error in body["errors"]:
        assert error["message"]["en"] and error["message"]["zh"], error
    return [e["code"] for e in body["errors"]]


def page_codes(response: Response) -> list[str]:
    text = response.body.decode()
    found = re.findall(r'<code class="error-code">([a-z0-9_]+)</code>', text)
    assert found, text[:2000]
    assert len(re.findall(r'<span (?:class="muted" )?lang="zh-CN">', text)) == len(found), text[:2000]
    return found


def submit(stack: RunsStack, user: str = "bob", **fields: Any) -> dict[str, Any]:
    body = {
        "notebook_name": "table.ipynb",
        "notebook": notebook("x = 1"),
        "parameters": {"scale": 2},
        **fields,
    }
    answer = stack.as_(user, "POST", "runs", body)
    assert answer.status == 201, answer.body
    return answer.json()


def add_regional_template(stack: RunsStack) -> None:
    """The steward's template ``regional`` (parameter ``region``) in the project, once per stack."""
    with stack.session() as session:
        if not service.list_templates(session, PROJECT):
            service.add_template(
                session,
                stack.env.paths,
                project=PROJECT,
                name="regional",
                title="Regional counts",
                notebook=TEMPLATE,
                notebook_name="regional.ipynb",
                actor="stella",
            )


def state_of(stack: RunsStack, run_id: str) -> str:
    with stack.session() as session:
        return service.get_run(session, run_id).state


def finish(stack: RunsStack, run_id: str, outputs: dict[str, bytes], executed: bytes | None = None) -> None:
    with stack.session() as session:
        run = service.get_run(session, run_id)
        move(session, run, RunState.RUNNING, RunActor.WORKER, by="worker")
        for name, data in outputs.items():
            sha = service.store_bytes(stack.env.paths, data, name.rsplit("/", 1)[-1])
            session.add(RunOutput(run_id=run_id, name=name, sha256=sha, size=len(data)))
        if executed is not None:
            run.executed_sha256 = service.store_bytes(stack.env.paths, executed, "executed.ipynb")
        run.log_sha256 = service.store_bytes(stack.env.paths, b"Ending Cell 1\n", "log.txt")
        move(session, run, RunState.SUCCEEDED, RunActor.WORKER, by="worker")


# ---- the API with the workspace's token --------------------------------------------------------------


def test_submit_list_show_log_and_cancel_with_the_server_token(stack: RunsStack) -> None:
    run = submit(stack, timeout_s=120)
    assert run["ok"] is True and run["state"] == "queued" and run["user"] == "bob"
    assert run["project"] == PROJECT and run["parameters"] == {"scale": 2} and run["timeout_s"] == 120
    listed = stack.as_("bob", "GET", "runs").json()["runs"]
    assert run["id"] in [r["id"] for r in listed] and all(r["user"] == "bob" for r in listed)
    assert stack.as_("bob", "GET", "runs?state=queued").status == 200
    assert codes(stack.as_("bob", "GET", "runs?state=bogus")) == ["run_state_unknown"]
    shown = stack.as_("bob", "GET", f"runs/{run['id']}")
    assert shown.status == 200 and shown.json()["id"] == run["id"]
    log = stack.as_("bob", "GET", f"runs/{run['id']}/log")
    assert log.status == 200 and log.headers["content-type"].startswith("text/plain") and log.body == b""
    cancelled = stack.as_("bob", "DELETE", f"runs/{run['id']}")
    assert cancelled.status == 200 and cancelled.json()["state"] == "cancelled"
    assert state_of(stack, run["id"]) == "cancelled"
    again = stack.as_("bob", "DELETE", f"runs/{run['id']}")
    assert again.status == 403 and codes(again) == ["run_state_invalid"]


def test_a_notebook_sent_as_text_is_stored_byte_for_byte(stack: RunsStack) -> None:
    text = TABLE_NOTEBOOK.decode()
    run = submit(stack, notebook=text)
    assert run["notebook"]["sha256"] == hashlib.sha256(TABLE_NOTEBOOK).hexdigest()
    assert run["progress"] == {"cells_done": 0, "cells_total": 2}


def test_the_deployments_time_limit_caps_a_submission(stack: RunsStack) -> None:
    body = {"notebook_name": "t.ipynb", "notebook": notebook("x = 1"), "timeout_s": 7201}
    refused = stack.as_("bob", "POST", "runs", body)
    assert refused.status == 400 and codes(refused) == ["run_timeout_invalid"]
    assert submit(stack)["timeout_s"] == service.DEFAULT_TIMEOUT_S


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "body_invalid"),
        ({"notebook_name": "t.ipynb"}, 400, "run_notebook_missing"),
        ({"notebook_name": "../t.ipynb", "notebook": notebook("x = 1")}, 400, "run_notebook_name_invalid"),
        ({"notebook_name": "t.ipynb", "notebook": [1]}, 400, "run_notebook_invalid"),
        ({"notebook_name": "t.ipynb", "notebook": {"nbformat": 3}}, 400, "run_notebook_invalid"),
        ({"notebook_name": "t.ipynb", "notebook": notebook("x = 1"), "parameters": {"os": {"a": 1}}}, 400,
         "run_parameter_invalid"),
        ({"notebook_name": "t.ipynb", "notebook": notebook("x = 1"), "timeout_s": "1"}, 400,
         "run_timeout_invalid"),
    ],
)  # fmt: skip
def test_bad_submissions_are_refused_with_their_code(
    stack: RunsStack, body: Any, status: int, code: str
) -> None:
    refused = stack.as_("bob", "POST", "runs", body)
    assert refused.status == status and codes(refused) == [code]


def test_a_body_over_the_cap_is_refused_before_it_is_read(stack: RunsStack) -> None:
    import socket

    from tests.raw_http import read_response

    host, port = "127.0.0.1", stack.service.app.bound_port
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(
            (
                f"POST {SERVICE_PREFIX}api/runs HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: token {stack.server_token('bob')}\r\n"
                "Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n"
            ).encode()
        )
        status, body = read_response(sock)
    assert status == 413 and json.loads(body)["errors"][0]["code"] == "body_too_large"


def test_forged_personal_and_run_tokens_are_refused(stack: RunsStack) -> None:
    run_id = submit(stack)["id"]
    for path in ("runs", f"runs/{run_id}"):
        assert codes(stack.api("GET", path, None)) == ["token_missing"]
        forged = stack.api("GET", path, "f" * 64)
        assert forged.status == 401 and codes(forged) == ["token_invalid"]
        personal = stack.api("GET", path, stack.page_tokens["bob"])  # bob's, but bound to no server
        assert personal.status == 403 and codes(personal) == ["token_not_server_bound"]
        run_token = stack.api("GET", path, "encrun_" + secrets.token_urlsafe(32))
        assert run_token.status == 403 and codes(run_token) == ["run_token_refused"]
        mismatch = stack.api("GET", path, stack.server_token("bob"), headers={"X-Enclave-Project": OTHER})
        assert mismatch.status == 403 and codes(mismatch) == ["project_mismatch"]
    body = {"notebook_name": "t.ipynb", "notebook": notebook("x = 1")}
    assert stack.api("POST", "runs", "f" * 64, body).status == 401
    assert stack.api("DELETE", f"runs/{run_id}", "f" * 64).status == 401
    assert state_of(stack, run_id) == "queued"


def test_a_running_runs_own_token_cannot_submit_or_read_runs(stack: RunsStack) -> None:
    from enclave.runs import tokens

    run_id = submit(stack)["id"]
    with stack.session() as session:
        run = service.get_run(session, run_id)
        move(session, run, RunState.RUNNING, RunActor.WORKER, by="worker")
        token = tokens.issue(run)
    for method, path in (("GET", "runs"), ("GET", f"runs/{run_id}"), ("DELETE", f"runs/{run_id}")):
        refused = stack.api(method, path, token)
        assert refused.status == 403 and codes(refused) == ["run_token_refused"], (method, path)
    assert state_of(stack, run_id) == "running"


def test_another_users_run_and_another_projects_token_see_nothing(stack: RunsStack) -> None:
    finished = submit(stack)["id"]
    finish(stack, finished, {"table.csv": b"group,n\na,10\n"}, executed=TABLE_NOTEBOOK)
    queued = submit(stack)["id"]
    paths = [
        ("GET", f"runs/{finished}"),
        ("GET", f"runs/{finished}/log"),
        ("GET", f"runs/{finished}/outputs/table.csv"),
        ("GET", f"runs/{finished}/executed"),
        ("DELETE", f"runs/{queued}"),
    ]
    for method, path in paths:
        for user, project in (("mallory", PROJECT), ("bob", OTHER)):
            refused = stack.as_(user, method, path, project=project)
            assert refused.status == 404 and codes(refused) == ["run_not_found"], (user, project, path)
    assert finished not in [r["id"] for r in stack.as_("mallory", "GET", "runs").json()["runs"]]
    assert stack.as_("bob", "GET", "runs", project=OTHER).json()["runs"] == []
    # The PI sees the run but may not cancel it; it stays queued.
    assert stack.as_("alice", "GET", f"runs/{queued}").status == 200
    refused = stack.as_("alice", "DELETE", f"runs/{queued}")
    assert refused.status == 403 and codes(refused) == ["run_not_own"]
    assert state_of(stack, queued) == "queued"


@pytest.mark.parametrize("user", ["carol", "rev1"])
def test_a_non_member_is_refused(stack: RunsStack, user: str) -> None:
    for method, path in (("GET", "runs"), ("POST", "runs"), ("GET", "templates")):
        body = {"notebook_name": "t.ipynb", "notebook": notebook("x = 1")} if method == "POST" else None
        refused = stack.as_(user, method, path, body)
        assert refused.status == 403 and codes(refused) == ["not_a_project_analyst"], (method, path)


def test_outputs_and_the_executed_notebook_download(stack: RunsStack) -> None:
    run_id = submit(stack)["id"]
    finish(
        stack, run_id, {"table.csv": b"group,n\na,10\n", "figs/plot 1.txt": b"plot"}, executed=TABLE_NOTEBOOK
    )
    got = stack.as_("bob", "GET", f"runs/{run_id}/outputs/table.csv")
    assert got.status == 200 and got.body == b"group,n\na,10\n"
    assert got.headers["content-disposition"] == 'attachment; filename="table.csv"'
    assert "sandbox" in got.headers["content-security-policy"]
    nested = stack.as_("bob", "GET", f"runs/{run_id}/outputs/{urllib.parse.quote('figs/plot 1.txt')}")
    assert nested.status == 200 and nested.body == b"plot"
    missing = stack.as_("bob", "GET", f"runs/{run_id}/outputs/nope.csv")
    assert missing.status == 404 and codes(missing) == ["run_output_not_found"]
    escape = stack.as_("bob", "GET", f"runs/{run_id}/outputs/..%2F..%2Fstate.db")
    assert escape.status == 404
    executed = stack.as_("bob", "GET", f"runs/{run_id}/executed")
    assert executed.status == 200 and executed.body == TABLE_NOTEBOOK
    shown = stack.as_("bob", "GET", f"runs/{run_id}").json()
    assert [o["name"] for o in shown["outputs"]] == ["figs/plot 1.txt", "table.csv"]
    assert stack.as_("bob", "GET", f"runs/{run_id}/log").body == b"Ending Cell 1\n"
    not_yet = stack.as_("bob", "GET", f"runs/{submit(stack)['id']}/executed")
    assert not_yet.status == 404 and codes(not_yet) == ["run_executed_not_found"]


def test_templates_take_only_their_declared_parameters(stack: RunsStack) -> None:
    add_regional_template(stack)
    listed = stack.as_("bob", "GET", "templates").json()["templates"]
    assert [(t["name"], t["parameters"]) for t in listed] == [("regional", {"region": "west"})]
    assert stack.as_("bob", "GET", "templates", project=OTHER).json()["templates"] == []
    run = stack.as_("bob", "POST", "runs", {"template": "regional", "parameters": {"region": "east"}})
    assert run.status == 201 and run.json()["template"] == "regional"
    undeclared = stack.as_("bob", "POST", "runs", {"template": "regional", "parameters": {"limit": 5}})
    assert undeclared.status == 400 and codes(undeclared) == ["run_parameter_not_declared"]
    with_notebook = stack.as_("bob", "POST", "runs", {"template": "regional", "notebook": notebook("x = 1")})
    assert with_notebook.status == 400 and codes(with_notebook) == ["run_template_with_notebook"]
    unknown = stack.as_("bob", "POST", "runs", {"template": "nope"})
    assert unknown.status == 404 and codes(unknown) == ["run_template_not_found"]


def test_only_a_revoker_may_clear_the_token_cache(stack: RunsStack) -> None:
    refused = stack.as_("bob", "POST", "auth-cache/clear", {})
    assert refused.status == 403 and codes(refused) == ["auth_cache_clear_forbidden"]
    cleared = stack.api("POST", "auth-cache/clear", stack.admin_token, {})
    assert cleared.status == 200 and cleared.json()["ok"] is True


def test_every_route_refuses_strangers(stack: RunsStack) -> None:
    run_id = submit(stack)["id"]
    app = stack.service.app.http_server.request_callback
    samples = {"(run-[0-9a-f]{12})": run_id, "(.+)": "table.csv"}
    principals = {
        "anonymous": None,
        "forged": "f" * 64,
        "another analyst's server token": stack.server_token("mallory"),
        "a stranger's page token": stack.page_tokens["carol"],
    }
    tried = 0
    for pattern, handler in routes(app):
        if issubclass(handler, StaticFileHandler):  # the stylesheet: nothing of anyone's
            continue
        path = sample_path(pattern, samples)
        for method in methods(handler):
            for who, token in principals.items():
                data = b"{}" if method == "POST" else None
                headers = {"Content-Type": "application/json"} if data else {}
                answer = _send(method, f"{stack.public_url}{path}", token, data, headers)
                refused = answer.status in (400, 401, 403, 404, 405) or (
                    answer.status == 302 and "/hub/" in answer.headers.get("location", "")
                )
                # A caller's own lists (runs, templates) are allowed; they show nothing of the run.
                own_list = answer.status == 200 and "(" not in pattern and run_id.encode() not in answer.body
                assert refused or own_list, (path, method, who, answer.status, answer.body[:300])
                tried += 1
    assert tried >= 9 * 4
    assert state_of(stack, run_id) == "queued"


# ---- the pages --------------------------------------------------------------------------------------------


def test_the_pages_in_english_and_chinese(stack: RunsStack) -> None:
    run_id = submit(stack)["id"]
    listing = stack.page("", "bob")
    assert listing.status == 200 and run_id in listing.body.decode() and "Batch runs" in listing.body.decode()
    zh = stack.page("?lang=zh", "bob").body.decode()
    assert '<html lang="zh-CN">' in zh and "批处理作业" in zh and "排队中" in zh
    detail = stack.page(f"runs/{run_id}", "bob").body.decode()
    assert 'id="state" class="state" data-state="queued"' in detail
    assert 'data-parameter="scale"' in detail and 'id="cancel-form"' in detail and 'name="_xsrf"' in detail
    assert '<meta http-equiv="refresh"' in detail and "<script" not in detail
    detail_zh = stack.page(f"runs/{run_id}?lang=zh", "bob").body.decode()
    assert "参数" in detail_zh and "取消作业" in detail_zh and "日志" in detail_zh
    csp = stack.page(f"runs/{run_id}", "bob").headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp
    # The PI sees the run, without the cancel button; a stranger gets the 404 page in both languages.
    pi = stack.page(f"runs/{run_id}", "alice").body.decode()
    assert run_id in pi and 'id="cancel-form"' not in pi
    stranger = stack.page(f"runs/{run_id}", "carol")
    assert stranger.status == 404 and page_codes(stranger) == ["run_not_found"]
    assert run_id not in stack.page("", "carol").body.decode()
    assert stack.page("", None).status == 302  # the hub login


def test_a_finished_runs_page_shows_its_outputs_queries_and_log(stack: RunsStack) -> None:
    from enclave.db.models import RunQuery

    run_id = submit(stack)["id"]
    finish(stack, run_id, {"table.csv": b"group,n\na,10\n"})
    with stack.session() as session:
        session.add(
            RunQuery(run_id=run_id, query_id="q1", sql="SELECT sex, count(*) FROM patients GROUP BY sex",
                     outcome="allowed", at="2026-11-26T10:00:00+00:00")
        )  # fmt: skip
    page = stack.page(f"runs/{run_id}", "bob").body.decode()
    assert (
        'data-state="succeeded"' in page and 'data-output="table.csv"' in page and 'data-query="q1"' in page
    )
    assert "SELECT sex, count(*) FROM patients GROUP BY sex" in page and "Ending Cell 1" in page
    assert "refresh" not in page and 'id="cancel-form"' not in page
    assert "/outputs/" not in page  # the pages offer no download: outputs stay in the enclave


def test_the_live_log_shows_while_the_run_runs(stack: RunsStack) -> None:
    run_id = submit(stack)["id"]
    with stack.session() as session:
        move(session, service.get_run(session, run_id), RunState.RUNNING, RunActor.WORKER, by="worker")
    live = service.run_dir(stack.env.paths, run_id) / service.LOG_FILE
    live.parent.mkdir(parents=True)
    live.write_text("Executing Cell 1 <script>alert(1)</script>\n")
    assert stack.as_("bob", "GET", f"runs/{run_id}/log").body.startswith(b"Executing Cell 1")
    page = stack.page(f"runs/{run_id}", "bob").body.decode()
    assert "Executing Cell 1 &lt;script&gt;" in page and "<script>" not in page


def test_the_cancel_form_needs_the_xsrf_token(stack: RunsStack) -> None:
    run_id = submit(stack)["id"]
    browser = Browser(stack, "bob")  # type: ignore[arg-type]
    page = browser.get(f"runs/{run_id}")
    assert page.status == 200
    forged = browser.post(f"runs/{run_id}/cancel", [])
    assert forged.status == 403 and state_of(stack, run_id) == "queued"
    wrong = browser.post(f"runs/{run_id}/cancel", [("_xsrf", "2|00000000|" + "0" * 32 + "|1")])
    assert wrong.status == 403 and state_of(stack, run_id) == "queued"
    done = browser.post(f"runs/{run_id}/cancel", [("_xsrf", xsrf_of(page.body))])
    assert done.status == 303 and done.headers["location"].endswith(f"runs/{run_id}")
    assert state_of(stack, run_id) == "cancelled"
    # Another analyst's browser cannot cancel it: the run is not found for them.
    other = submit(stack)["id"]
    mallory = Browser(stack, "mallory")  # type: ignore[arg-type]
    token = xsrf_of(mallory.get("").body) if 'name="_xsrf"' in mallory.get("").body.decode() else None
    refused = mallory.post(f"runs/{other}/cancel", [("_xsrf", token)] if token else [])
    assert refused.status in (403, 404) and state_of(stack, other) == "queued"


# ---- without a hub ----------------------------------------------------------------------------------


def test_the_service_never_listens_on_a_wildcard_and_defaults_to_8104() -> None:
    from enclave.runs.app import RunsApp

    with pytest.raises(ValueError, match="every interface"):
        RunsApp(ip="0.0.0.0")
    assert RunsApp().port == 8104 and RunsApp().ip == "127.0.0.1"


def test_the_hub_registers_the_runs_service_and_forwards_it_to_workspaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load(tmp_path, monkeypatch, ENCLAVE_RUNS_PORT="9104", ENCLAVE_HOME=str(tmp_path / "home"))
    runs = managed_service(c, "runs", "9104", tmp_path / "home", "run")
    assert runs["environment"]["ENCLAVE_HUB_API_PORT"] == "8081"
    assert (
        c.EnclaveSpawner.service_ports["runs"] == 9104
    )  # ENCLAVE_RUNS_URL in workspaces, firewall allows it
    by_name = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert "runs" in by_name["enclave-service"]["services"]
    assert "access:services!service=runs" in by_name["user"]["scopes"]  # analysts open the pages
    console = next(s for s in c.JupyterHub.services if s["name"] == "console")
    assert "http://127.0.0.1:9104/services/runs/" in console["environment"]["ENCLAVE_SERVICE_URLS"]
    left_out = load(tmp_path, monkeypatch, ENCLAVE_HUB_SERVICES="gateway,export-review")
    assert "runs" not in {s["name"] for s in left_out.JupyterHub.services}


def test_the_workspace_gets_the_runs_url() -> None:
    from hub_config.workspace_policy import service_env

    env = service_env({"runs": "http://10.0.0.1:8104"})
    assert env["ENCLAVE_RUNS_URL"] == "http://10.0.0.1:8104/services/runs/"


def test_the_worker_thread_starts_and_stops_with_the_service(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    (tmp_path / "home").mkdir()
    running = RunningRuns(
        port=0,
        enclave_home=str(tmp_path / "home"),
        database_url=url,
        hub_api_url="http://127.0.0.1:9/hub/api",
        api_token="x",
        worker_poll_s=0.05,
    )
    app = running.app
    thread = app._worker_thread
    try:
        assert thread is not None and thread.is_alive() and app.worker is not None
        assert app.worker.executor.settings.allowed_ports() == sorted({8081, 8101, 8102, 8104})
    finally:
        running.stop()
    assert not thread.is_alive() and app._worker_thread is None


def test_the_cli_starts_the_service() -> None:
    from typer.testing import CliRunner

    from enclave.cli import app

    result = CliRunner().invoke(app, ["run", "serve", "--help"])
    assert result.exit_code == 0 and "--no-worker" in result.output and "--port" in result.output


def test_a_failing_worker_loop_is_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from enclave.runs import app as runs_app

    monkeypatch.setattr(runs_app, "WORKER_RESTART_S", 0.01)
    stop = threading.Event()

    class Flaky:
        calls = 0

        def serve(self, event: threading.Event) -> None:
            self.calls += 1
            if self.calls < 3:
                raise RuntimeError("the database is not up yet")
            event.set()

    worker = Flaky()
    runs_app.RunsApp()._run_worker(worker, stop)
    assert worker.calls == 3 and stop.is_set()


def test_every_label_of_the_pages_is_in_both_languages() -> None:
    from enclave.runs.web.i18n import LABELS

    templates = Path(__file__).resolve().parents[2] / "enclave" / "runs" / "web" / "templates"
    used = set()
    for template in templates.glob("*.html"):
        used |= set(re.findall(r'(?<![\w.])t\("([a-z_]+)"\)', template.read_text()))
    assert used and used <= set(LABELS), used - set(LABELS)
    for key, (en, zh) in LABELS.items():
        assert en.strip() and zh.strip(), key
    for state in RunState:
        assert f"state_{state.value}" in LABELS, state
