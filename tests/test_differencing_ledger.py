"""The differencing ledger in the services, on SQLite and PostgreSQL (ARCHITECTURE §3.6, guard v2).

A real project (small factory data, real preparation) queried through ``run_query``, the code both
the CLI and the gateway run: the ledger lives in the state database, so it outlasts the process and
is shared by every replica; a suppressed value is audited and alerted by the gateway's monitor;
every timeout is an alert too. Destruction is tested in ``tests/test_lifecycle.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from enclave import catalog, db, lifecycle, projects, query_service
from enclave.audit import AuditAction
from enclave.cli import app
from enclave.config import Paths
from enclave.db.models import AuditEvent, GuardLedgerEntry
from enclave.db.session import dispose_all
from enclave.errors import EXIT_REFUSED, BadInput, Forbidden, Refused
from enclave.gateway.monitor import MONITOR_ACTOR, QueryMonitor
from enclave.gateway.runner import QueryRunner
from enclave.guard import QueryResult
from enclave.guard.ledger import Sketch
from enclave.guard.limits import QueryLimits
from enclave.services.auth import Caller
from enclave.specs import parse_project_spec
from tests.harness.factories import (
    NO_APPLICATION,
    PATIENT_COLUMNS,
    VISIT_COLUMNS,
    patients_table,
    project_spec,
    visits_table,
    write_dataset,
)

PROJECT = "cardio-2026"
N_PATIENTS = 200
VISITS_PER_PATIENT = 200  # two visit tables joined: 8,000,000 rows, time enough for a timeout
# Half the patients are women; patient P00000 is a woman with income 1000.0, the only one.
ALL_WOMEN = "SELECT count(*) AS n FROM patients WHERE sex = 'F'"
ALL_WOMEN_BUT_ONE = "SELECT count(*) AS n FROM patients WHERE sex = 'F' AND NOT (income = 1000.0)"
SLOW = (
    "SELECT p.sex, count(*) AS n FROM patients p JOIN visits v ON v.pid = p.pid "
    "JOIN visits w ON w.pid = p.pid GROUP BY p.sex"
)
OpenSession = Callable[[], AbstractContextManager[Session]]


@dataclass
class Enclave:
    """A provisioned project on a fresh state database."""

    url: str
    paths: Paths
    sessions: sessionmaker[Session]
    engines: list[Engine] = field(default_factory=list)

    def session(self) -> AbstractContextManager[Session]:
        return db.session_scope(self.sessions)

    def replica(self) -> OpenSession:
        """Sessions on an engine of their own, as another gateway process behind a load balancer has."""
        engine = create_engine(self.url)
        self.engines.append(engine)
        factory = sessionmaker(engine, expire_on_commit=False)
        return lambda: db.session_scope(factory)


@pytest.fixture
def enclave(database_url: str, paths: Paths, tmp_path: Path) -> Iterator[Enclave]:
    setup = Enclave(database_url, paths, db.connect(database_url))
    with setup.session() as session:
        for name, table, columns in (
            ("patients", patients_table(N_PATIENTS), PATIENT_COLUMNS),
            ("visits", visits_table(N_PATIENTS, VISITS_PER_PATIENT), VISIT_COLUMNS),
        ):
            catalog.register(session, paths, write_dataset(tmp_path / "src", name, table, columns), actor="s")
    with setup.session() as session:
        projects.create_project(
            session,
            paths,
            parse_project_spec(project_spec()),
            actor="steward",
            without_application=NO_APPLICATION,
        )
    yield setup
    for engine in setup.engines:
        engine.dispose()


def query(
    enclave: Enclave, sql: str, *, user: str = "bob", open_session: OpenSession | None = None, **kw: Any
) -> QueryResult:
    """One query through ``run_query``, as ``enclave query`` runs it."""
    return query_service.run_query(open_session or enclave.session, enclave.paths, PROJECT, user, sql, **kw)


def gateway_query(
    enclave: Enclave, sql: str, *, user: str = "bob", timeout_s: float = 30.0, rows: int = 10_000
) -> QueryResult:
    """One query as the gateway runs it (``QueryRunner``: run_query, then the monitor), without HTTP."""
    limits = QueryLimits(rows=rows, memory="1GB", threads=1, timeout_s=timeout_s)
    runner = QueryRunner(enclave.session, enclave.paths, QueryMonitor(), limits, workers=1)
    try:
        caller = Caller(user, PROJECT)
        work = runner.run(caller, sql, synthetic=False, source="gateway@test", query_id=uuid.uuid4().hex)
        return asyncio.run(work)
    finally:
        runner.shutdown()


def events(enclave: Enclave, action: AuditAction) -> list[dict[str, Any]]:
    with enclave.session() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action == action.value).order_by(AuditEvent.seq)
        )
        return [{"actor": e.actor, **json.loads(e.details_json)} for e in rows]


def ledger_rows(enclave: Enclave, project: str = PROJECT) -> int:
    with enclave.session() as session:
        return session.scalar(select(func.count()).where(GuardLedgerEntry.project_id == project)) or 0


def test_a_count_differing_by_one_person_is_suppressed_audited_and_alerted(enclave: Enclave) -> None:
    first = gateway_query(enclave, ALL_WOMEN)
    assert first.rows == [[100]] and first.ledger_suppressed == 0
    second = gateway_query(enclave, ALL_WOMEN_BUT_ONE)
    assert second.rows == [] and second.ledger_suppressed == 1  # 99 would give P00000 away
    assert any("differencing ledger" in notice for notice in second.notices)

    audited = events(enclave, AuditAction.QUERY_RUN)
    assert [(e["sql"], e["ledger_suppressed"]) for e in audited] == [(ALL_WOMEN, 0), (ALL_WOMEN_BUT_ONE, 1)]
    assert audited[1]["suppressed_groups"] == 1 and "suppressed_values" in audited[1]
    [alert] = events(enclave, AuditAction.QUERY_ALERT)
    assert alert["actor"] == MONITOR_ACTOR and alert["rule"] == "differencing"
    assert alert["user"] == "bob" and alert["sql"] == ALL_WOMEN_BUT_ONE
    assert (alert["observed"], alert["threshold"]) == (1, 0)


def test_the_cli_suppresses_too_and_the_monitor_counts_it_at_the_next_gateway_query(
    enclave: Enclave, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", enclave.url)

    def cli(sql: str) -> dict[str, Any]:
        args = ["query", "--project", PROJECT, "--user", "bob", sql, "--json"]
        result = CliRunner().invoke(app, ["--home", str(enclave.paths.home), *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    assert cli(ALL_WOMEN)["rows"] == [[100]]
    second = cli(ALL_WOMEN_BUT_ONE)
    assert second["rows"] == [] and second["suppressed_groups"] == 1
    assert [e["ledger_suppressed"] for e in events(enclave, AuditAction.QUERY_RUN)] == [0, 1]
    # `enclave query` does not run the monitor; the audit log it wrote does, at the next evaluation
    with enclave.session() as session:
        outcome = QueryMonitor().evaluate(session, PROJECT, "bob", source="gateway@test", sql="SELECT 1")
    assert [a.rule for a in outcome.alerts] == ["differencing"]


def test_the_ledger_outlives_the_process(enclave: Enclave) -> None:
    assert query(enclave, ALL_WOMEN).rows == [[100]]
    dispose_all()  # nothing of this process's connections is left
    env = {**os.environ, "ENCLAVE_DATABASE_URL": enclave.url}
    args = ["--home", str(enclave.paths.home), "query", "--project", PROJECT, "--user", "alice", "--json"]
    out = subprocess.run(
        [sys.executable, "-c", "from enclave.cli import main; main()", *args, ALL_WOMEN_BUT_ONE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(out.stdout)["rows"] == [], "another analyst, another process: still suppressed"


def test_replicas_share_the_ledger(enclave: Enclave) -> None:
    one, two = enclave.replica(), enclave.replica()
    assert query(enclave, ALL_WOMEN, open_session=one).rows == [[100]]
    second = query(enclave, ALL_WOMEN_BUT_ONE, open_session=two)
    assert second.rows == [] and second.ledger_suppressed == 1


def test_replicas_deciding_at_the_same_time_never_both_release(enclave: Enclave) -> None:
    """Two populations one person apart, offered at once by two replicas: only one is released."""
    rng = np.random.default_rng(3)
    replicas = [query_service.ledger_for(enclave.replica(), PROJECT, synthetic=False) for _ in range(2)]
    for _ in range(8):
        base = {int(p) for p in rng.integers(1, 2**63, 60)}
        sketches = [Sketch.of(base, 5), Sketch.of(base | {int(rng.integers(1, 2**63))}, 5)]
        verdicts: list[bool] = []
        barrier = threading.Barrier(2)

        def decide(ledger: Any, sketch: Sketch, barrier: threading.Barrier, verdicts: list[bool]) -> None:
            barrier.wait()
            verdicts.extend(ledger.admit([sketch], 5))

        threads = [
            threading.Thread(target=decide, args=(ledger, sketch, barrier, verdicts))
            for ledger, sketch in zip(replicas, sketches, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(verdicts) == [False, True]


def test_the_twin_neither_fills_nor_reads_the_project_ledger(enclave: Enclave) -> None:
    query(enclave, ALL_WOMEN, synthetic=True)
    assert ledger_rows(enclave) == 0
    assert query(enclave, ALL_WOMEN).rows == [[100]]
    held = ledger_rows(enclave)
    twin = query(enclave, ALL_WOMEN_BUT_ONE, synthetic=True)
    assert twin.ledger_suppressed == 0 and ledger_rows(enclave) == held
    assert events(enclave, AuditAction.QUERY_RUN)[-1]["synthetic"] is True


def test_a_project_no_longer_active_releases_nothing(enclave: Enclave) -> None:
    """A query still running when its project is suspended or destroyed gets nothing from the ledger."""
    ledger = query_service.ledger_for(enclave.session, PROJECT, synthetic=False)
    with enclave.session() as session:
        lifecycle.suspend(session, PROJECT, actor="steward", reason="breach suspected")
    with pytest.raises(Forbidden) as caught:
        ledger.admit([Sketch.of(range(1, 50), 5)], 5)
    assert caught.value.code == "project_not_active"
    assert ledger_rows(enclave) == 0


def test_a_result_over_the_row_limit_is_one_refusal_from_the_gateway_and_the_cli(enclave: Enclave) -> None:
    """The caller's ``QueryLimits.rows`` is the only row cap: the guard refuses (exit 3, HTTP 413)
    before anything is released, through the gateway's runner as through ``run_query``."""
    by_sex = "SELECT sex, count(*) AS n FROM patients GROUP BY sex"
    assert len(gateway_query(enclave, by_sex, rows=2).rows) == 2
    refusals = []
    for attempt in (
        lambda: gateway_query(enclave, by_sex, rows=1),
        lambda: query(enclave, by_sex, limits=QueryLimits(rows=1)),
    ):
        with pytest.raises(Refused) as caught:
            attempt()
        refusals.append((caught.value.code, caught.value.exit_code))
    assert refusals == [("result_too_large", EXIT_REFUSED)] * 2
    assert [e["code"] for e in events(enclave, AuditAction.QUERY_REFUSE)] == ["result_too_large"] * 2


def test_every_timeout_is_an_alert(enclave: Enclave) -> None:
    for _ in range(2):
        with pytest.raises(BadInput) as caught:
            gateway_query(enclave, SLOW, timeout_s=0.005)
        assert caught.value.code == "query_timeout"
    refusals = events(enclave, AuditAction.QUERY_REFUSE)
    assert [e["code"] for e in refusals] == ["query_timeout", "query_timeout"]
    alerts = events(enclave, AuditAction.QUERY_ALERT)
    assert [(a["rule"], a["observed"], a["sql"]) for a in alerts] == [("timeout", 1, SLOW)] * 2
