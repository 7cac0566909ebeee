"""Admission control under load (issue #17): heavy queries wait instead of failing, light ones take a
fast lane, users are served in turn, the analyst sees the queue position, and failures the server
caused are never counted toward the alerts that lock a user.

The gateway and DuckDB are real. Which query is heavy is decided by the plan's estimate; the tests
pin that estimate (``heavy_estimates``) so the lanes do not depend on the 400-patient test data.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pytest
from enclave_client import Connection, QueryError
from enclave_client.connection import progress_line
from traitlets.config import Config

from enclave import db, user_locks
from enclave.audit import AuditAction
from enclave.gateway.admission import Admission, ServerUnavailable
from enclave.gateway.monitor import QueryMonitor
from tests.gateway.conftest import PROJECT, Enclave, Hub, RunningGateway, http, start_gateway
from tests.gateway.test_gateway import AGGREGATE, ROW_LEVEL, audit_events
from tests.gateway.test_monitor import alerts, audited_query, evaluate

# Nine joins on the person key: seconds of real work at 400 patients (test_gateway.SLOW has eleven).
HEAVY = (
    "SELECT a.sex, count(*) AS n FROM patients a "
    + " ".join(f"JOIN visits v{i} ON v{i}.pid = a.pid" for i in range(9))
    + " GROUP BY a.sex"
)
HEAVY_ROWS = 150_000_000  # under the guard's fan-out bound (200 M), far over `light_rows`
LIGHT_ROWS = 400


@pytest.fixture
def heavy_estimates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let HEAVY through the fan-out rules and make every query over visits heavy, the others light."""
    monkeypatch.setattr("enclave.guard.analyze.MAX_MULTI_ROW", 99)
    monkeypatch.setattr(
        "enclave.guard.execute._estimated_rows",
        lambda con, sql, timeout: HEAVY_ROWS if "visits" in sql else LIGHT_ROWS,
    )


def admission_config(**admission: Any) -> Config:
    settings = {"light_rows": 1000, "heavy_slots": 1, "user_slots": 1, **admission}
    return Config({"Admission": settings})


@pytest.fixture
def loaded_gateway(hub: Hub, enclave: Enclave, heavy_estimates: None) -> Iterator[RunningGateway]:
    """One heavy query at a time, one per user and lane; memory for one heavy query only."""
    running = start_gateway(
        hub, enclave, config=admission_config(), memory_limit="512MB", query_timeout_s=30.0, workers=4
    )
    yield running
    running.stop()


def client(hub: Hub, gateway: RunningGateway, user: str) -> Connection:
    token, _ = hub.server_token(user, PROJECT)
    return Connection(gateway.url, token, PROJECT)


def admission_of(gateway: RunningGateway) -> Admission:
    return gateway.app.runner.admission


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Background:
    """Queries sent on threads; each outcome (a frame or a QueryError) kept under its query id."""

    def __init__(self) -> None:
        self.outcomes: dict[str, Any] = {}
        self.finished: dict[str, float] = {}
        self.threads: list[threading.Thread] = []

    def send(self, db: Connection, sql: str) -> str:
        query_id = uuid.uuid4().hex

        def run() -> None:
            try:
                self.outcomes[query_id] = db.sql(sql, query_id=query_id, progress=None)
            except QueryError as error:
                self.outcomes[query_id] = error
            self.finished[query_id] = time.monotonic()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)
        return query_id

    def join(self, timeout_s: float = 60.0) -> None:
        for thread in self.threads:
            thread.join(timeout_s)


def test_heavy_query_waits_for_memory_then_runs(
    hub: Hub, enclave: Enclave, loaded_gateway: RunningGateway
) -> None:
    """Two heavy queries whose budgets do not fit together: the second waits, queued, then succeeds."""
    alice = client(hub, loaded_gateway, "alice")
    bob = client(hub, loaded_gateway, "bob")
    admission = admission_of(loaded_gateway)
    assert admission.ticket(("p", "u"), "pool", HEAVY_ROWS).cost == admission.heavy_capacity
    background = Background()
    first = background.send(alice, HEAVY)
    wait_until(lambda: admission.snapshot()["running_heavy"] == 1, "the first heavy query to run")
    second = background.send(bob, HEAVY)
    wait_until(lambda: admission.snapshot()["waiting_heavy"] == 1, "the second heavy query to queue")
    status = bob.status(second)
    assert status is not None and status["state"] == "queued" and status["position"] == 1
    assert status["lane"] == "heavy"
    assert alice.status(first)["state"] == "running"  # type: ignore[index]
    background.join()
    assert not isinstance(background.outcomes[first], QueryError), background.outcomes[first]
    assert not isinstance(background.outcomes[second], QueryError), background.outcomes[second]
    assert background.finished[first] <= background.finished[second]
    assert admission.snapshot() == dict.fromkeys(admission.snapshot(), 0)


def test_light_query_overtakes_a_flood_of_heavy_ones(
    hub: Hub, enclave: Enclave, loaded_gateway: RunningGateway
) -> None:
    """Alice floods heavy queries; Bob's light query (fast lane) ends before Alice's queue drains, and
    Bob's heavy query is served before Alice's later ones (round robin per user)."""
    alice = client(hub, loaded_gateway, "alice")
    bob = client(hub, loaded_gateway, "bob")
    admission = admission_of(loaded_gateway)
    # Alice's first heavy query holds the heavy lane until the test lets it go.
    holder = admission.ticket((PROJECT, "alice"), (PROJECT, False), HEAVY_ROWS)
    admission.acquire(holder, lambda: False)
    background = Background()
    try:
        flood = [background.send(alice, HEAVY) for _ in range(3)]
        wait_until(lambda: admission.snapshot()["waiting_heavy"] == 3, "Alice's flood to queue")

        started = time.monotonic()
        frame = bob.sql(AGGREGATE, progress=None)
        assert int(frame["n"].sum()) == 400
        assert time.monotonic() - started < 10
        assert admission.snapshot()["waiting_heavy"] == 3  # Alice's queue has not moved

        bobs_heavy = background.send(bob, HEAVY)
        wait_until(lambda: admission.snapshot()["waiting_heavy"] == 4, "Bob's heavy query to queue")
        bob_status = bob.status(bobs_heavy)
        positions = [(alice.status(query_id) or {}).get("position") for query_id in flood]
        assert bob_status is not None and bob_status["state"] == "queued"
        assert bob_status["position"] == 1 and sorted(positions) == [2, 3, 4], (bob_status, positions)
        assert "position 1" in progress_line(3.0, bob_status) and "第 1 位" in progress_line(3.0, bob_status)
    finally:
        admission.release(holder)
    background.join()
    assert all(not isinstance(o, QueryError) for o in background.outcomes.values()), background.outcomes
    first_of_alice = min(background.finished[q] for q in flood)
    assert background.finished[bobs_heavy] < first_of_alice  # Bob's turn came before Alice's next


def test_client_progress_reports_queue_position(
    hub: Hub, enclave: Enclave, loaded_gateway: RunningGateway
) -> None:
    bob = client(hub, loaded_gateway, "bob")
    admission = admission_of(loaded_gateway)
    # Another heavy query holds the heavy lane for two seconds.
    holder = admission.ticket((PROJECT, "alice"), (PROJECT, False), HEAVY_ROWS)
    admission.acquire(holder, lambda: False)
    timer = threading.Timer(2.0, admission.release, args=(holder,))
    timer.start()
    seen: list[dict[str, Any] | None] = []

    def progress(elapsed: float, status: dict[str, Any] | None = None) -> None:
        seen.append(status)

    bob.progress_after_s = 0.2
    try:
        frame = bob.sql(HEAVY, progress=progress)
    finally:
        timer.cancel()
        admission.release(holder)
    assert int(frame["n"].sum()) > 0
    states = [s["state"] for s in seen if s]
    assert "queued" in states, states
    assert next(s for s in seen if s and s["state"] == "queued")["position"] == 1


def test_full_queue_is_a_server_failure_not_a_refusal(
    hub: Hub, enclave: Enclave, heavy_estimates: None
) -> None:
    """A query that cannot wait (queue timeout) gets 503 + Retry-After, audited as a server failure;
    a hundred of them raise no alert and lock nobody, while real refusals still do."""
    config = admission_config(queue_timeout_s=0.2, retry_after_s=7)
    config.QueryMonitor = Config({"refused_per_hour": 5, "alerts_to_lock": 1, "queries_per_window": 10**6})
    gateway = start_gateway(hub, enclave, config=config, workers=4)
    try:
        admission = admission_of(gateway)
        # A heavy query of another user holds the heavy lane (and its memory) throughout.
        holder = admission.ticket((PROJECT, "alice"), (PROJECT, False), HEAVY_ROWS)
        admission.acquire(holder, lambda: False)
        token, _ = hub.server_token("mallory", PROJECT)
        status, body = http("POST", gateway.url + "api/query", token, {"sql": HEAVY, "format": "json"})
        assert status == 503 and body["errors"][0]["code"] == "server_busy", body
        assert {"en", "zh"} <= set(body["errors"][0]["message"])

        mallory = Connection(gateway.url, token, PROJECT)
        failures = 1
        while failures < 100:
            batch = Background()
            for _ in range(10):
                batch.send(mallory, HEAVY)
            batch.join()
            codes = {o.code for o in batch.outcomes.values() if isinstance(o, QueryError)}
            assert codes == {"server_busy"}, codes
            failures += len(batch.outcomes)
        admission.release(holder)

        events = [e for e in audit_events(enclave, AuditAction.QUERY_REFUSE, "mallory") if e["sql"] == HEAVY]
        assert len(events) >= 100
        assert all(e["code"] == "server_busy" and e["server_failure"] for e in events)
        assert not _alerts_for(enclave, "mallory")
        with enclave.session() as session:
            assert not user_locks.user_is_locked(session, PROJECT, "mallory")

        # Real refusals are still counted: the sixth one passes `refused_per_hour` and locks.
        for _ in range(6):
            with pytest.raises(QueryError) as caught:
                mallory.sql(ROW_LEVEL, progress=None)
            assert caught.value.code != "server_busy"
        assert "refused_per_hour" in _alerts_for(enclave, "mallory")
        with enclave.session() as session:
            assert user_locks.user_is_locked(session, PROJECT, "mallory")
    finally:
        gateway.stop()
        with enclave.session() as session:
            if user_locks.user_is_locked(session, PROJECT, "mallory"):
                user_locks.unlock_user(session, PROJECT, "mallory", actor="steward", reason="test")


def _alerts_for(enclave: Enclave, user: str) -> list[str]:
    alerts = audit_events(enclave, AuditAction.QUERY_ALERT)
    return [a["rule"] for a in alerts if a.get("user") == user]


def test_server_unavailable_is_a_503_with_retry_after() -> None:
    from enclave.services.http_errors import error_body, status_for

    error = ServerUnavailable("server_resources", retry_after_s=12, retry=True)
    assert status_for(error) == 503
    body = error_body(error, 503)
    assert body["errors"][0]["code"] == "server_resources" and body["errors"][0]["message"]["zh"]


# -- the scheduler alone, and the monitor on audit records ------------------------------------------


def test_scheduler_lanes_budgets_and_round_robin() -> None:
    admission = Admission(memory_limit="1GB", workers=4, light_rows=1000, bytes_per_row=10, user_slots=1)
    admission.heavy_slots = 2
    pool = ("p", False)
    alice, bob, carol = ("p", "alice"), ("p", "bob"), ("p", "carol")
    # 60 M rows at 10 bytes: 600 MB, so one heavy query fills the heavy share (750 MB) alone.
    first = admission.ticket(alice, pool, 60_000_000)
    admission.acquire(first, lambda: False)
    queued = [admission.ticket(alice, pool, 60_000_000) for _ in range(3)]
    queued.append(admission.ticket(bob, pool, 60_000_000))
    threads = [threading.Thread(target=admission.acquire, args=(t, lambda: False)) for t in queued]
    for count, thread in enumerate(threads, 1):
        thread.start()
        wait_until(lambda n=count: admission.snapshot()["waiting_heavy"] >= n, "queueing")
    # Bob was never served: he comes next, then Alice's queries in order.
    assert [admission.position(t) for t in queued] == [2, 3, 4, 1]
    # A light query of a third user runs at once, beside the heavy one.
    light = admission.ticket(carol, pool, 500)
    admission.acquire(light, lambda: False)
    assert light.state == "running" and light.contended and first.contended
    admission.release(light)
    admission.release(first)
    wait_until(lambda: queued[3].state == "running", "Bob's heavy query to run")
    assert all(t.state == "queued" for t in queued[:3])
    for ticket in [queued[3], *queued]:
        admission.release(ticket)
        if ticket is not queued[3]:
            wait_until(lambda t=ticket: t.state == "done", "the next one")
    for thread in threads:
        thread.join(5)
    assert admission.snapshot() == dict.fromkeys(admission.snapshot(), 0)


def test_scheduler_waits_time_out_as_server_busy_and_cancel() -> None:
    admission = Admission(
        memory_limit="1GB", workers=2, queue_timeout_s=0.2, max_waiting=2, user_max_waiting=1
    )
    pool = ("p", False)
    holder = admission.ticket(("p", "alice"), pool, None, exclusive=True)
    admission.acquire(holder, lambda: False)
    with pytest.raises(ServerUnavailable) as caught:
        admission.acquire(admission.ticket(("p", "bob"), pool, None), lambda: False)
    assert caught.value.code == "server_busy" and caught.value.details["waited_s"] >= 0.2
    with pytest.raises(Exception) as cancelled:
        admission.acquire(admission.ticket(("p", "bob"), pool, None), lambda: True)
    assert getattr(cancelled.value, "code", None) == "query_cancelled"
    admission.close()
    with pytest.raises(ServerUnavailable) as closed:
        admission.acquire(admission.ticket(("p", "bob"), pool, 10), lambda: False)
    assert closed.value.code == "server_shutdown"
    admission.release(holder)


@pytest.fixture
def sessions(tmp_path: Any) -> Any:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    db.migrate(url)
    return db.connect(url)


def test_hundred_server_failures_raise_no_alert_but_refusals_do(sessions: Any) -> None:
    """Records exactly as ``run_query`` writes them: 100 server failures, then real refusals."""
    monitor = QueryMonitor(refused_per_hour=50, alerts_to_lock=1, timeouts_per_hour=0)
    codes = ["server_busy", "server_resources", "server_timeout", "server_shutdown"]
    for i in range(100):
        audited_query(
            sessions, "bob", refused=True, code=codes[i % 4], server_failure=True, retried=i % 2 == 0
        )
        assert evaluate(sessions, monitor).alerts == []
    assert alerts(sessions) == []
    with db.session_scope(sessions) as session:
        assert not user_locks.user_is_locked(session, PROJECT, "bob")
    for _ in range(51):
        audited_query(sessions, "bob", refused=True, code="query_rejected", reasons=["QRY_ROW_LEVEL"])
    outcome = evaluate(sessions, monitor)
    assert [a.rule for a in outcome.alerts] == ["refused_per_hour"] and outcome.locked
    assert outcome.alerts[0].observed == 51  # the server's failures are not in the count


def test_out_of_memory_while_sharing_is_retried_alone(
    hub: Hub, enclave: Enclave, loaded_gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB runs out of memory while another query shares the server: the run is audited as a
    server failure (``server_resources``, retried) and the query runs again alone, and succeeds."""
    from enclave.guard import execute

    real = execute.run_with_timeout
    runs: list[str] = []

    def short_of_memory_once(con: Any, timeout: float, work: Callable[[], Any]) -> Any:
        runs.append("run")
        if len(runs) == 1:
            raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")
        return real(con, timeout, work)

    monkeypatch.setattr(execute, "run_with_timeout", short_of_memory_once)
    admission = admission_of(loaded_gateway)
    sharing = admission.ticket((PROJECT, "alice"), (PROJECT, False), LIGHT_ROWS)
    admission.acquire(sharing, lambda: False)  # a light query runs beside it throughout
    before = len(audit_events(enclave, AuditAction.QUERY_REFUSE, "bob"))
    try:
        frame = client(hub, loaded_gateway, "bob").sql(HEAVY, progress=None)
    finally:
        admission.release(sharing)
    assert int(frame["n"].sum()) > 0 and len(runs) >= 2
    failures = audit_events(enclave, AuditAction.QUERY_REFUSE, "bob")[before:]
    assert [(e["code"], e["server_failure"], e["retried"]) for e in failures] == [
        ("server_resources", True, True)
    ]
    assert audit_events(enclave, AuditAction.QUERY_RUN, "bob")[-1]["sql"] == HEAVY
    assert not _alerts_for(enclave, "bob")
