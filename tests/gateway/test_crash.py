"""``kill -9`` of the gateway in the middle of a query (issue #17, crash safety).

The gateway runs as a real process (``enclave gateway serve``) against a real hub, on SQLite and on
PostgreSQL state. It is stopped at a named point (``enclave.crashpoints``) and killed there. After
a restart: the audit chain verifies; a query's ledger rows exist if and only if its ``query.run``
record does (one transaction); one ``query_id`` never has two released results; the next query runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from enclave.audit import AuditAction
from enclave.db.models import AuditEvent, GuardLedgerEntry
from tests.conftest import state_database
from tests.crash import ServiceProcess, check_audit_chain, in_background
from tests.gateway.conftest import N_PATIENTS, PROJECT, Enclave, Hub, free_port, http, prepared_enclave

pytestmark = pytest.mark.slow

PREFIX = "/services/enclave-gateway/"
AGGREGATE = "SELECT sex, count(*) AS n FROM patients GROUP BY sex ORDER BY sex"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Enclave]:
    """A fresh home with one prepared project, its state on SQLite or on a new PostgreSQL database."""
    for url in state_database(request, tmp_path / "home" / "state.db"):
        yield prepared_enclave(tmp_path, url, [(PROJECT, "alice", ["alice", "bob"])])


@pytest.fixture
def gateway(hub: Hub, state: Enclave, tmp_path: Path) -> Iterator[tuple[ServiceProcess, str]]:
    port = free_port()
    env = {
        "JUPYTERHUB_API_TOKEN": hub.gateway_token,
        "JUPYTERHUB_API_URL": hub.api_url,
        "JUPYTERHUB_SERVICE_PREFIX": PREFIX,
        "ENCLAVE_DATABASE_URL": state.database_url,
    }
    args = ["gateway", "serve", "--ip", "127.0.0.1", "--port", str(port)]
    process = ServiceProcess(state.home, args, env, tmp_path / "gateway.log")
    try:
        yield process, f"http://127.0.0.1:{port}{PREFIX}"
    finally:
        process.stop()


def runs_of(state: Enclave, query_id: str) -> dict[str, list[dict[str, Any]]]:
    """The audit records that name ``query_id``, by action."""
    found: dict[str, list[dict[str, Any]]] = {}
    with state.session() as session:
        for event in session.scalars(select(AuditEvent).order_by(AuditEvent.seq)):
            details = json.loads(event.details_json)
            if details.get("query_id") == query_id:
                found.setdefault(event.action, []).append(details)
    return found


def ledger_rows(state: Enclave) -> int:
    with state.session() as session:
        query = select(func.count()).select_from(GuardLedgerEntry)
        return int(session.scalar(query.where(GuardLedgerEntry.project_id == PROJECT)) or 0)


@pytest.mark.parametrize("point", ["query-admitted", "query-committed"])
def test_kill_9_in_the_middle_of_a_query(
    hub: Hub, state: Enclave, gateway: tuple[ServiceProcess, str], point: str
) -> None:
    process, url = gateway
    token, _ = hub.server_token("bob", PROJECT)
    query_id = uuid.uuid4().hex
    body = {"sql": AGGREGATE, "query_id": query_id, "format": "json"}

    process.start(url, pause_at=point)
    cut_off = in_background(lambda: http("POST", f"{url}api/query", token, body))
    process.wait_paused(point)
    process.kill9()
    cut_off.join(30)

    check_audit_chain(state.database_url, state.home)
    if point == "query-admitted":  # nothing committed: no ledger rows, no record
        assert runs_of(state, query_id) == {} and ledger_rows(state) == 0
    else:  # committed together: the record and the rows; the client never got the result
        assert len(runs_of(state, query_id)[AuditAction.QUERY_RUN]) == 1 and ledger_rows(state) > 0
    rows_before = ledger_rows(state)

    process.start(url)  # the restart
    status, retried = http("POST", f"{url}api/query", token, body)
    if point == "query-admitted":  # never released: it runs again, once
        assert status == 200 and retried["query_id"] == query_id, retried
        assert ledger_rows(state) > 0
    else:  # released once already: the same id is refused, never a second release
        assert status == 400 and retried["errors"][0]["code"] == "query_id_used", retried
        assert ledger_rows(state) == rows_before
    records = runs_of(state, query_id)
    assert len(records[AuditAction.QUERY_RUN]) == 1
    assert [r["code"] for r in records.get(AuditAction.QUERY_REFUSE, [])] == (
        [] if point == "query-admitted" else ["query_id_used"]
    )

    status, fresh = http("POST", f"{url}api/query", token, {"sql": AGGREGATE, "format": "json"})
    assert status == 200 and sum(n for _, n in fresh["rows"]) == N_PATIENTS, fresh
    check_audit_chain(state.database_url, state.home)
