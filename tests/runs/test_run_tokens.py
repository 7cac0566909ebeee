"""A batch run's gateway identity and the record of its queries (issue 12), on SQLite and PostgreSQL.

The gateway runs in-process (``tests.gateway.conftest.RunningGateway``) with its hub API pointed at a
port nobody listens on: a run token is answered from the state database alone, never by the hub.
Runs are inserted as rows and given a token with ``enclave.runs.tokens.issue``, as the worker does.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from enclave_client import Connection, QueryError
from sqlalchemy import select

from enclave import audit, query_service
from enclave.audit import AuditAction
from enclave.db.models import AuditEvent, Run, RunQuery
from enclave.errors import Forbidden
from enclave.gateway.admission import SERVER_BUSY, ServerUnavailable
from enclave.runs import tokens
from enclave.runs.states import RunState
from enclave.services.auth import Caller, TokenAuthenticator, Unauthenticated
from tests.conftest import state_database
from tests.gateway.conftest import (
    N_PATIENTS,
    OTHER_PROJECT,
    PROJECT,
    Enclave,
    RunningGateway,
    free_port,
    prepared_enclave,
)

pytestmark = pytest.mark.slow

PREFIX = "/services/enclave-gateway/"
AGGREGATE = "SELECT sex, count(*) AS n FROM patients GROUP BY sex ORDER BY sex"
ROW_LEVEL = "SELECT * FROM patients"
NO_HUB = f"http://127.0.0.1:{free_port()}/hub/api"  # nothing listens: run tokens must not need the hub


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Enclave]:
    """A home with two prepared projects; bob is an analyst of both."""
    root = tmp_path_factory.mktemp("run-tokens")
    members = [(PROJECT, "alice", ["alice", "bob"]), (OTHER_PROJECT, "dan", ["dan", "bob"])]
    for url in state_database(request, root / "home" / "state.db"):
        yield prepared_enclave(root, url, members)


@pytest.fixture(scope="module")
def gateway(state: Enclave) -> Iterator[RunningGateway]:
    running = RunningGateway(
        ip="127.0.0.1",
        port=0,
        base_url=PREFIX,
        hub_api_url=NO_HUB,
        api_token="no-hub",
        enclave_home=str(state.home),
        database_url=state.database_url,
        auth_cache_ttl_s=5,  # the longest hub cache: run tokens must still be checked every time
        query_timeout_s=20.0,
    )
    yield running
    running.stop()


def make_run(
    state: Enclave,
    *,
    user: str = "bob",
    project: str = PROJECT,
    run_state: RunState = RunState.RUNNING,
    cancel_requested: bool = False,
) -> tuple[str, str]:
    """A run row in ``run_state`` with a token issued for it: (run id, token)."""
    run_id = "run-" + secrets.token_hex(6)
    now = audit.now_iso()
    with state.session() as session:
        run = Run(
            id=run_id,
            project_id=project,
            user=user,
            kind="run",
            notebook_name="table1.ipynb",
            notebook_sha256="0" * 64,
            parameters_json="{}",
            image="enclave/analyst:latest",
            data_version=1,
            state=run_state.value,
            cancel_requested=cancel_requested,
            timeout_s=600,
            created_at=now,
            started_at=None if run_state is RunState.QUEUED else now,
        )
        token = tokens.issue(run)
        session.add(run)
    return run_id, token


def update_run(enclave: Enclave, run_id: str, **fields: Any) -> None:
    with enclave.session() as session:
        run = session.get(Run, run_id)
        assert run is not None
        for name, value in fields.items():
            setattr(run, name, value)


def call(
    url: str, token: str, *, body: Any = None, project: str | None = None, method: str | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method or ("GET" if data is None else "POST"))
    request.add_header("Authorization", f"token {token}")
    if project is not None:
        request.add_header("X-Enclave-Project", project)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def code_of(body: Any) -> str:
    return body["errors"][0]["code"]


def identify(state: Enclave, token: str, claimed: str | None = None) -> Caller:
    authenticator = TokenAuthenticator(NO_HUB, "no-hub", 5, open_session=state.session)
    return asyncio.run(authenticator.caller(f"token {token}", claimed))


def run_queries(state: Enclave, run_id: str) -> list[RunQuery]:
    with state.session() as session:
        rows = list(session.scalars(select(RunQuery).where(RunQuery.run_id == run_id).order_by(RunQuery.id)))
        session.expunge_all()
    return rows


def audit_event(state: Enclave, seq: int | None) -> tuple[str, str, dict[str, Any]]:
    assert seq is not None
    with state.session() as session:
        event = session.get(AuditEvent, seq)
        assert event is not None
        return event.action, event.actor, json.loads(event.details_json)


def test_a_run_token_speaks_for_the_runs_analyst_and_project(state: Enclave, gateway: RunningGateway) -> None:
    run_id, token = make_run(state)
    assert token.startswith(tokens.RUN_TOKEN_PREFIX)
    caller = identify(state, token)
    assert caller == Caller("bob", PROJECT, run_id)
    assert caller != Caller("bob", PROJECT)  # a run is not the analyst's server
    assert identify(state, token, claimed=PROJECT) == caller

    status, body = call(gateway.url + "api/views", token)
    assert status == 200 and body["project"] == PROJECT, body
    frame = Connection(gateway.url, token, PROJECT).sql(AGGREGATE)  # as the notebook's client does
    assert sorted(frame["sex"]) == ["F", "M"] and frame["n"].sum() == N_PATIENTS


@pytest.mark.parametrize(
    ("run_state", "cancel_requested"),
    [
        (RunState.QUEUED, False),
        (RunState.SUCCEEDED, False),
        (RunState.FAILED, False),
        (RunState.TIMED_OUT, False),
        (RunState.CANCELLED, False),
        (RunState.RUNNING, True),
    ],
)
def test_a_run_token_is_refused_unless_its_run_is_running(
    state: Enclave, gateway: RunningGateway, run_state: RunState, cancel_requested: bool
) -> None:
    run_id, token = make_run(state, run_state=run_state, cancel_requested=cancel_requested)
    with pytest.raises(Unauthenticated) as caught:
        identify(state, token)
    assert caught.value.code == "token_invalid"
    status, body = call(gateway.url + "api/query", token, body={"sql": AGGREGATE, "format": "json"})
    assert status == 401 and code_of(body) == "token_invalid", body
    status, body = call(gateway.url + "api/views", token)
    assert status == 401 and code_of(body) == "token_invalid", body
    assert run_queries(state, run_id) == []


def test_a_token_works_only_from_start_to_cancel_or_end(state: Enclave, gateway: RunningGateway) -> None:
    run_id, token = make_run(state, run_state=RunState.QUEUED)
    assert call(gateway.url + "api/views", token)[0] == 401  # before it started
    update_run(state, run_id, state=RunState.RUNNING.value, started_at=audit.now_iso())
    assert call(gateway.url + "api/views", token)[0] == 200
    update_run(state, run_id, cancel_requested=True)
    status, body = call(gateway.url + "api/views", token)  # at once, although the hub cache is 5 s
    assert status == 401 and code_of(body) == "token_invalid", body

    second_id, second = make_run(state)
    assert call(gateway.url + "api/views", second)[0] == 200
    update_run(state, second_id, state=RunState.SUCCEEDED.value, ended_at=audit.now_iso())
    assert call(gateway.url + "api/views", second)[0] == 401

    third_id, third = make_run(state)
    assert call(gateway.url + "api/views", third)[0] == 200
    update_run(state, third_id, token_hash=None)  # the worker revoked it; the state is not yet moved
    assert call(gateway.url + "api/views", third)[0] == 401


def test_forged_run_tokens_are_refused(state: Enclave, gateway: RunningGateway) -> None:
    run_id, token = make_run(state)
    last = "A" if token[-1] != "A" else "B"
    forged = [
        tokens.RUN_TOKEN_PREFIX + secrets.token_urlsafe(32),
        token[:-1] + last,  # one character off
        token + "A",
        tokens.RUN_TOKEN_PREFIX,
        tokens.RUN_TOKEN_PREFIX + tokens.token_hash(token),  # the stored hash is not the token
        tokens.RUN_TOKEN_PREFIX + "%",
        tokens.RUN_TOKEN_PREFIX + "x" * 5000,
    ]
    for candidate in forged:
        status, body = call(gateway.url + "api/query", candidate, body={"sql": AGGREGATE})
        assert status == 401 and code_of(body) == "token_invalid", (candidate[:40], body)
    assert call(gateway.url + "api/views", token)[0] == 200  # the real one still works
    assert run_queries(state, run_id) == []


def test_a_run_token_cannot_claim_another_project(state: Enclave, gateway: RunningGateway) -> None:
    _, token = make_run(state)  # bob's run in PROJECT; bob is an analyst of OTHER_PROJECT too
    with pytest.raises(Forbidden) as caught:
        identify(state, token, claimed=OTHER_PROJECT)
    assert caught.value.code == "project_mismatch"
    status, body = call(gateway.url + "api/views", token, project=OTHER_PROJECT)
    assert status == 403 and code_of(body) == "project_mismatch", body
    with pytest.raises(QueryError) as refused:
        Connection(gateway.url, token, OTHER_PROJECT).sql(AGGREGATE)
    assert refused.value.code == "project_mismatch"


def test_a_runs_queries_are_recorded_allowed_and_refused(state: Enclave, gateway: RunningGateway) -> None:
    run_id, token = make_run(state)
    other_id, other = make_run(state, user="alice")
    allowed, rejected = f"allowed-{uuid.uuid4().hex[:8]}", f"rejected-{uuid.uuid4().hex[:8]}"

    status, body = call(
        gateway.url + "api/query", token, body={"sql": AGGREGATE, "query_id": allowed, "format": "json"}
    )
    assert status == 200 and body["query_id"] == allowed, body
    status, body = call(
        gateway.url + "api/query", token, body={"sql": ROW_LEVEL, "query_id": rejected, "format": "json"}
    )
    assert status == 422, body
    assert call(gateway.url + "api/query", other, body={"sql": AGGREGATE, "format": "json"})[0] == 200

    rows = run_queries(state, run_id)
    assert [(r.query_id, r.sql, r.outcome) for r in rows] == [
        (allowed, AGGREGATE, "allowed"),
        (rejected, ROW_LEVEL, "rejected"),
    ]
    for row, action in zip(rows, (AuditAction.QUERY_RUN, AuditAction.QUERY_REFUSE), strict=True):
        recorded, actor, details = audit_event(state, row.audit_id)
        assert (recorded, actor) == (action.value, "bob")
        assert details["run"] == run_id and details["query_id"] == row.query_id and details["sql"] == row.sql
        assert row.at
    [theirs] = run_queries(state, other_id)  # each run has only its own queries
    assert theirs.outcome == "allowed" and audit_event(state, theirs.audit_id)[1] == "alice"


def test_a_query_of_a_run_no_longer_running_is_refused_and_recorded(state: Enclave) -> None:
    """The token was checked when the request came; the run is checked again where the query runs."""
    run_id, _ = make_run(state, cancel_requested=True)
    with pytest.raises(Forbidden) as caught:
        query_service.run_query(state.session, state.paths, PROJECT, "bob", AGGREGATE, run_id=run_id)
    assert caught.value.code == "run_not_running"
    [row] = run_queries(state, run_id)
    assert row.outcome == "rejected" and row.sql == AGGREGATE
    action, _, details = audit_event(state, row.audit_id)
    assert action == AuditAction.QUERY_REFUSE.value and details["run"] == run_id

    alices_id, _ = make_run(state, user="alice")  # a run is only its own analyst's, in its own project
    for user, project in (("bob", PROJECT), ("alice", OTHER_PROJECT)):
        with pytest.raises(Forbidden) as caught:
            query_service.run_query(state.session, state.paths, project, user, AGGREGATE, run_id=alices_id)
        assert caught.value.code in ("run_not_running", "not_a_project_analyst")
    assert run_queries(state, alices_id) == []


def test_a_query_without_a_run_records_nothing_for_runs(state: Enclave) -> None:
    """``enclave query`` (and a workspace's queries) stay as they were: no run, no RunQuery row."""
    with state.session() as session:
        before = len(list(session.scalars(select(RunQuery))))
    result = query_service.run_query(state.session, state.paths, PROJECT, "bob", AGGREGATE)
    assert sorted(row[0] for row in result.rows) == ["F", "M"]
    with state.session() as session:
        assert len(list(session.scalars(select(RunQuery)))) == before
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
        assert last.action == AuditAction.QUERY_RUN.value and "run" not in json.loads(last.details_json)


def test_a_runs_query_the_server_turned_away_is_recorded_as_failed(state: Enclave) -> None:
    run_id, _ = make_run(state)
    busy = ServerUnavailable(SERVER_BUSY, retry_after_s=1, waited_s=0.0)
    query_service.audit_server_failure(
        state.session,
        PROJECT,
        "bob",
        AGGREGATE,
        busy,
        source="gateway@127.0.0.1",
        synthetic=False,
        run_id=run_id,
        query_id="busy-1",
    )
    [row] = run_queries(state, run_id)
    assert (row.query_id, row.outcome) == ("busy-1", "failed")
    _, _, details = audit_event(state, row.audit_id)
    assert details["run"] == run_id and details["code"] == SERVER_BUSY


@pytest.mark.parametrize(
    ("outcome", "code", "expected"),
    [
        ("success", None, "allowed"),
        ("refused", "query_rejected", "rejected"),
        ("refused", "not_a_project_analyst", "rejected"),
        ("refused", "result_too_large", "rejected"),
        ("refused", "query_timeout", "failed"),
        ("refused", "query_resources", "failed"),
        ("server_failure", "server_busy", "failed"),
    ],
)
def test_run_query_outcomes(outcome: str, code: str | None, expected: str) -> None:
    assert query_service.run_query_outcome(outcome, code) == expected
