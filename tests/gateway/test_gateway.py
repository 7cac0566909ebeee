"""The real gateway with a real hub: access, queries, refusals, concurrency, cancel, lock (T10)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from enclave_client import Connection, QueryError
from sqlalchemy import select
from traitlets.config import Config

from enclave import user_locks
from enclave.audit import AuditAction
from enclave.db.models import AuditEvent
from tests.gateway.conftest import (
    EXPIRED_PROJECT,
    OTHER_PROJECT,
    PROJECT,
    Enclave,
    Hub,
    RunningGateway,
    http,
    start_gateway,
)

AGGREGATE = "SELECT sex, count(*) AS n FROM patients GROUP BY sex ORDER BY sex"
ROW_LEVEL = "SELECT * FROM patients"
# Eleven joins on the person key: seconds of work, so there is time to cancel it. The guard refuses
# such a fan-out (attack class 7), so the tests that need a slow query lift that rule for themselves
# (``slow_query_allowed``); what they test is cancelling, not the guard.
SLOW = (
    "SELECT a.sex, count(*) AS n FROM patients a "
    + " ".join(f"JOIN visits v{i} ON v{i}.pid = a.pid" for i in range(11))
    + " GROUP BY a.sex"
)


def connection(hub: Hub, gateway: RunningGateway, user: str, project: str = PROJECT) -> Connection:
    token, _ = hub.server_token(user, project)
    return Connection(gateway.url, token, project)


def audit_events(enclave: Enclave, action: AuditAction, actor: str | None = None) -> list[dict[str, Any]]:
    with enclave.session() as session:
        query = select(AuditEvent).where(AuditEvent.action == action.value).order_by(AuditEvent.seq)
        if actor:
            query = query.where(AuditEvent.actor == actor)
        return [
            {"actor": e.actor, "source": e.source, "project": e.project, **json.loads(e.details_json)}
            for e in session.scalars(query)
        ]


def test_valid_analyst_query_as_arrow_and_json(hub: Hub, gateway: RunningGateway, enclave: Enclave) -> None:
    db = connection(hub, gateway, "bob")
    frame = db.sql(AGGREGATE)
    assert list(frame.columns) == ["sex", "n"]
    assert sorted(frame["sex"]) == ["F", "M"]
    assert frame["n"].sum() == 400
    assert frame.attrs["suppressed_groups"] == 0 and frame.attrs["synthetic"] is False
    token, _ = hub.server_token("bob", PROJECT)
    status, body = http("POST", gateway.url + "api/query", token, {"sql": AGGREGATE, "format": "json"})
    assert status == 200 and body["ok"] is True
    assert body["columns"] == ["sex", "n"] and sorted(r[0] for r in body["rows"]) == ["F", "M"]
    [event] = [e for e in audit_events(enclave, AuditAction.QUERY_RUN, "bob") if e.get("sql") == AGGREGATE][
        -1:
    ]
    assert event["source"] == "gateway@127.0.0.1" and event["rows"] == 2 and "duration_ms" in event


def test_synthetic_query_runs_on_the_twin(hub: Hub, gateway: RunningGateway, enclave: Enclave) -> None:
    frame = connection(hub, gateway, "bob").sql(AGGREGATE, synthetic=True)
    assert list(frame.columns) == ["sex", "n"] and frame.attrs["synthetic"] is True
    assert audit_events(enclave, AuditAction.QUERY_RUN, "bob")[-1]["synthetic"] is True


def test_small_groups_are_suppressed_and_counted(hub: Hub, gateway: RunningGateway) -> None:
    frame = connection(hub, gateway, "bob").sql("SELECT income, count(*) AS n FROM patients GROUP BY income")
    assert frame.empty or (frame["n"] >= 5).all()
    assert frame.attrs["suppressed_groups"] > 0


def test_tables_and_describe(hub: Hub, gateway: RunningGateway) -> None:
    db = connection(hub, gateway, "bob")
    assert db.tables() == ["patients", "visits"]
    columns = db.describe("patients").set_index("name")["role"].to_dict()
    assert columns["pid"] == "person_key" and columns["income"] == "measure"
    assert "name" not in columns  # a direct identifier is never shown
    with pytest.raises(QueryError) as caught:
        db.describe("secrets")
    assert caught.value.code == "view_not_found" and caught.value.status == 404


def test_refused_query_carries_the_guard_reasons(hub: Hub, gateway: RunningGateway, enclave: Enclave) -> None:
    with pytest.raises(QueryError) as caught:
        connection(hub, gateway, "bob").sql(ROW_LEVEL)
    error = caught.value
    assert error.refused and error.status == 422 and error.codes
    assert all(e["message"]["en"] and e["message"]["zh"] for e in error.errors)
    assert "[" in str(error) and error.message_zh in str(error)
    assert audit_events(enclave, AuditAction.QUERY_REFUSE, "bob")[-1]["sql"] == ROW_LEVEL


def test_user_of_another_project_is_forbidden(hub: Hub, gateway: RunningGateway) -> None:
    # dan is an analyst of diab-2026 only; a server named cardio-2026 gives him nothing
    with pytest.raises(QueryError) as caught:
        connection(hub, gateway, "dan", PROJECT).sql(AGGREGATE)
    assert caught.value.code == "not_a_project_analyst" and caught.value.status == 403
    # and his own project works
    assert connection(hub, gateway, "dan", OTHER_PROJECT).tables() == ["patients", "visits"]


def test_expired_project_is_forbidden(hub: Hub, gateway: RunningGateway) -> None:
    db = connection(hub, gateway, "eve", EXPIRED_PROJECT)
    for call in (lambda: db.sql(AGGREGATE), db.tables):
        with pytest.raises(QueryError) as caught:
            call()
        assert caught.value.code == "project_not_active"


def test_forged_and_revoked_tokens(hub: Hub, gateway: RunningGateway) -> None:
    with pytest.raises(QueryError) as caught:
        Connection(gateway.url, "0" * 32, PROJECT).sql(AGGREGATE)
    assert caught.value.code == "token_invalid" and caught.value.status == 401
    token, token_id = hub.server_token("bob", PROJECT)
    db = Connection(gateway.url, token, PROJECT)
    assert db.tables()
    hub.revoke("bob", token_id)
    time.sleep(1.2)  # the gateway caches the hub's answer for auth_cache_ttl_s = 1
    with pytest.raises(QueryError) as caught:
        db.tables()
    assert caught.value.code == "token_invalid"


def test_a_project_claim_cannot_widen_the_token(hub: Hub, gateway: RunningGateway) -> None:
    token, _ = hub.server_token("bob", PROJECT)
    with pytest.raises(QueryError) as caught:
        Connection(gateway.url, token, OTHER_PROJECT).sql(AGGREGATE)
    assert caught.value.code == "project_mismatch"


def test_twenty_concurrent_clients(hub: Hub, gateway: RunningGateway) -> None:
    clients = [connection(hub, gateway, "alice") for _ in range(20)]
    queries = [AGGREGATE, "SELECT dx, count(*) AS n FROM patients GROUP BY dx ORDER BY dx"]

    def work(i: int) -> list[int]:
        return [int(clients[i].sql(queries[(i + j) % 2], progress=None)["n"].sum()) for j in range(3)]

    with ThreadPoolExecutor(20) as pool:
        totals = list(pool.map(work, range(20)))
    assert totals == [[400, 400, 400]] * 20


def test_cancel_a_running_query(
    hub: Hub, gateway: RunningGateway, enclave: Enclave, slow_query_allowed: None
) -> None:
    db = connection(hub, gateway, "alice")
    query_id = uuid.uuid4().hex
    outcome: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        try:
            db.sql(SLOW, query_id=query_id, progress=None)
        except QueryError as error:
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - started

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not db.cancel(query_id):
        assert time.monotonic() < deadline, "the query never showed up as running"
        time.sleep(0.05)
    worker.join(15)
    assert outcome["error"].code == "query_cancelled" and outcome["error"].status == 409
    assert outcome["seconds"] < 15
    assert audit_events(enclave, AuditAction.QUERY_REFUSE, "alice")[-1]["code"] == "query_cancelled"
    assert db.cancel(query_id) is False  # finished: nothing to cancel


def test_another_user_cannot_cancel_my_query(
    hub: Hub, gateway: RunningGateway, slow_query_allowed: None
) -> None:
    mine = connection(hub, gateway, "alice")
    theirs = connection(hub, gateway, "bob")
    query_id = uuid.uuid4().hex

    def run() -> None:
        with pytest.raises(QueryError):
            mine.sql(SLOW, query_id=query_id, progress=None)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.5)
    with pytest.raises(QueryError) as caught:
        theirs.cancel(query_id)
    assert caught.value.code == "query_not_found"
    assert mine.cancel(query_id) is True
    worker.join(15)


def test_monitoring_alerts_then_locks_and_stops_the_server(hub: Hub, enclave: Enclave) -> None:
    thresholds = Config({"QueryMonitor": {"queries_per_window": 2, "alerts_to_lock": 3}})
    strict = start_gateway(hub, enclave, auth_cache_ttl_s=0, config=thresholds)
    try:
        hub.start_server("mallory", PROJECT)
        db = connection(hub, strict, "mallory")
        answered = 0
        with pytest.raises(QueryError) as caught:
            for _ in range(20):
                db.sql(AGGREGATE, progress=None)
                answered += 1
        assert caught.value.code == "user_access_locked" and caught.value.status == 403
        assert answered == 9  # alerts after queries 3, 6 and 9; the 3rd alert locks
        alerts = audit_events(enclave, AuditAction.QUERY_ALERT)
        mine = [a for a in alerts if a["user"] == "mallory"]
        assert len(mine) == 3 and all(a["address"] == "gateway@127.0.0.1" and a["sql"] for a in mine)
        deadline = time.monotonic() + 20
        while hub.server_ready("mallory", PROJECT) or not audit_events(enclave, AuditAction.SERVER_STOP):
            assert time.monotonic() < deadline, "the locked user's server was not stopped"
            time.sleep(0.2)
        stops = audit_events(enclave, AuditAction.SERVER_STOP)
        assert stops[-1]["user"] == "mallory" and stops[-1]["hub_status"] in (202, 204)
        # the lock holds for every client of this project, the CLI included, until a steward lifts it
        from enclave.query_service import check_analyst_access

        with enclave.session() as session, pytest.raises(Exception) as cli_error:
            check_analyst_access(session, PROJECT, "mallory")
        assert getattr(cli_error.value, "code", None) == "user_access_locked"
        with enclave.session() as session:
            user_locks.unlock_user(session, PROJECT, "mallory", actor="steward", reason="reviewed")
        assert int(db.sql(AGGREGATE, progress=None)["n"].sum()) == 400
    finally:
        strict.stop()
