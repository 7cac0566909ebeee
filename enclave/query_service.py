"""Run an analyst's query exactly as the gateway does: who may, the guard, locked-down DuckDB, audit.

Both ``enclave query`` and the gateway service call ``run_query``, so the CLI contract and the
service can never drift apart. Every query is audited, allowed or refused (R-AUD-6, R-QRY-4).

Queries on real data share the project's differencing ledger in the state database (ARCHITECTURE
§3.6, ``enclave.differencing_ledger``): every gateway replica and the CLI see what any of them
released, and it survives restarts. A query on the synthetic twin gets a ledger of its own, thrown
away after it: the twin's persons are not the project's, and must neither fill the project's
ledger nor be judged against it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy.orm import Session

from enclave import audit, differencing_ledger, lifecycle, projects
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.errors import BadInput, EnclaveError, Forbidden
from enclave.gateway.locks import check_user_not_locked
from enclave.guard import GuardPolicy, QueryResult, Verdict, check, run
from enclave.guard.ledger import Ledger, MemoryLedger
from enclave.guard.lockdown import open_locked
from enclave.guard.policy import policy_from_specs
from enclave.projects import ProjectState
from enclave.workspace import layout, storage

OpenSession = Callable[[], AbstractContextManager[Session]]
ConnectionCallback = Callable[[duckdb.DuckDBPyConnection], None]
MAX_AUDITED_SQL = 20_000


@dataclass(frozen=True)
class QueryContext:
    """What a query runs against: the project's guard policy and its views database."""

    project_id: str
    policy: GuardPolicy


def check_analyst_access(
    session: Session, project_id: str, user: str, *, today: date | None = None
) -> projects.Project:
    """Only an analyst of an active, unlocked project inside its period may query it (R-QRY-2,
    R-QRY-16, R-LIFE-9: ``lifecycle.check_usable``, even before the sweep expired it)."""
    project = projects.get(session, project_id)
    if "analyst" not in projects.roles_of(session, project_id, user):
        raise Forbidden(
            "not_a_project_analyst",
            f"{user} is not an analyst of project {project_id}",
            f"{user} 不是项目 {project_id} 的分析人员",
        )
    if project.state != ProjectState.ACTIVE:
        raise Forbidden(
            "project_not_active",
            f"Project {project_id} is {project.state}: queries are not allowed",
            f"项目 {project_id} 状态为 {project.state}：不允许查询",
        )
    lifecycle.check_usable(project, today)
    if project.locked:
        raise Forbidden(
            "project_access_locked",
            f"Access to project {project_id} is locked after monitoring alerts; a steward must unlock it",
            f"因监控告警，项目 {project_id} 的访问已被锁定；需由数据管理员解锁",
        )
    check_user_not_locked(session, project_id, user)  # per-user lock set by monitoring (R-QRY-5)
    return project


def query_context(
    session: Session, project_id: str, unique_person_keys: Collection[str] = ()
) -> QueryContext:
    spec = projects.current_spec(session, project_id)
    datasets = projects.dataset_specs_for(session, project_id)
    return QueryContext(project_id, policy_from_specs(spec, datasets, unique_person_keys))


def unique_person_keys(prepared: Path) -> set[str]:
    """The datasets whose person key this prepared version measured as unique per row (report.json).

    Read from the same resolved version folder as the views database, so a new preparation switching
    ``current`` in between cannot pair one version's flag with another's data. Anything unreadable
    means no flag: the guard then counts persons with count(DISTINCT ...), which is always right.
    """
    try:
        report = json.loads((prepared / layout.REPORT).read_text(encoding="utf-8"))
        datasets = report["datasets"]
        return {name for name, facts in datasets.items() if facts.get("person_key_unique") is True}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def check_query(open_session: OpenSession, project_id: str, sql: str) -> Verdict:
    """The guard's verdict for the project's policy, without running anything."""
    with open_session() as session:
        context = query_context(session, project_id)
    return check(sql, context.policy)


def ledger_for(open_session: OpenSession, project_id: str, *, synthetic: bool) -> Ledger:
    """The project's differencing ledger, or a throwaway one for the synthetic twin."""
    if synthetic:
        return MemoryLedger()
    return differencing_ledger.project_ledger(open_session, project_id)


def _audit_query(
    open_session: OpenSession,
    *,
    user: str,
    project_id: str,
    sql: str,
    source: str | None,
    outcome: str,
    details: dict[str, Any],
) -> None:
    action = AuditAction.QUERY_RUN if outcome == "success" else AuditAction.QUERY_REFUSE
    with open_session() as session:
        audit.record(
            session,
            action,
            actor=user,
            obj=f"project:{project_id}",
            project=project_id,
            outcome=outcome,
            source=source,
            details={"sql": sql[:MAX_AUDITED_SQL], "sql_truncated": len(sql) > MAX_AUDITED_SQL, **details},
        )


def _check_row_limit(result: QueryResult, max_rows: int | None) -> None:
    if max_rows is not None and len(result.rows) > max_rows:
        raise BadInput(
            "result_too_large",
            f"The result has {len(result.rows)} rows, more than the limit of {max_rows}: aggregate further",
            f"结果有 {len(result.rows)} 行，超过上限 {max_rows} 行：请进一步汇总",
            details={"rows": len(result.rows), "max_rows": max_rows},
        )


def run_query(
    open_session: OpenSession,
    paths: Paths,
    project_id: str,
    user: str,
    sql: str,
    *,
    synthetic: bool = False,
    source: str | None = None,
    memory_limit: str = "2GB",
    threads: int = 2,
    timeout_s: float = 30.0,
    max_rows: int | None = None,
    on_connection: ConnectionCallback | None = None,
    today: date | None = None,
) -> QueryResult:
    """Check access, run through the guard on the project's views (or its twin), audit the outcome.

    ``max_rows`` refuses a result with more rows (the gateway's per-query limit); ``on_connection``
    receives the DuckDB connection before the query runs, so a caller can ``interrupt()`` it;
    ``today`` replaces the enclave's date in the period check (tests).
    """
    started = time.monotonic()
    try:
        with open_session() as session:
            check_analyst_access(session, project_id, user, today=today)
            prepared = layout.current_prepared_dir(paths, project_id)
            # The twin's synthetic persons may repeat across rows: it never gets the flag.
            unique = set() if synthetic else unique_person_keys(prepared)
            context = query_context(session, project_id, unique)
        database = prepared / (layout.TWIN_DB if synthetic else layout.VIEWS_DB)
        con = open_locked(
            database,
            memory_limit=memory_limit,
            threads=threads,
            timeout_s=timeout_s,
            s3=storage.locked_access(paths, project_id),  # None with local storage
        )
        try:
            if on_connection is not None:
                on_connection(con)
            ledger = ledger_for(open_session, project_id, synthetic=synthetic)
            result = run(con, sql, context.policy, ledger=ledger)
        finally:
            con.close()
        _check_row_limit(result, max_rows)
    except EnclaveError as error:
        _audit_query(
            open_session,
            user=user,
            project_id=project_id,
            sql=sql,
            source=source,
            outcome="refused",
            details={
                "code": error.code,
                "reasons": [r.code for r in error.reasons],
                "synthetic": synthetic,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        raise
    _audit_query(
        open_session,
        user=user,
        project_id=project_id,
        sql=sql,
        source=source,
        outcome="success",
        details={
            "rows": len(result.rows),
            "suppressed_groups": result.suppressed_groups,
            "suppressed_values": result.suppressed_values,
            # values or groups held back by the differencing ledger: monitoring alerts on these
            "ledger_suppressed": result.ledger_suppressed,
            "synthetic": synthetic,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        },
    )
    return result
