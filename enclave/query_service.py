"""Run an analyst's query exactly as the gateway does: who may, the guard, locked-down DuckDB, audit.

Both ``enclave query`` and the gateway service call ``run_query``, so the CLI contract and the
service can never drift apart. Every query is audited, allowed or refused (R-AUD-6, R-QRY-4).

Queries on real data share the project's differencing ledger in the state database (ARCHITECTURE
§3.6, ``enclave.differencing_ledger``): every gateway replica and the CLI see what any of them
released, and it survives restarts. A query on the synthetic twin gets a ledger of its own, thrown
away after it: the twin's persons are not the project's, and must neither fill the project's
ledger nor be judged against it.

Crash safety: a result's populations enter the project's ledger in the same transaction as the
query's ``query.run`` audit record (``differencing_ledger.held_ledger``), committed only once the
result is complete and within its limits. A gateway killed before that commit leaves neither; one
killed after it leaves both, and the client may not have the result. A ``query_id`` names one
release: a retry with the same id after a crash runs again if nothing was committed, and is refused
(``query_id_used``) if a result under that id was already audited as released by this analyst in
this project within ``QUERY_ID_REUSE_WINDOW_S``, so one id never has two released results.

A batch run (``enclave.runs``) queries with the analyst's identity and its own run token; each of
its queries, allowed or refused, gets a ``RunQuery`` row in the transaction of its audit record,
which names the run (``details.run``): the queries behind a run's outputs. A run's query is refused
(``run_not_running``) once the run is no longer running or its cancel was asked for.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit, crashpoints, differencing_ledger, lifecycle, projects
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db.models import AuditEvent, Run, RunQuery
from enclave.errors import BadInput, EnclaveError, Forbidden, Unavailable
from enclave.guard import GuardPolicy, QueryResult, Verdict, check, run
from enclave.guard.ledger import Ledger, MemoryLedger
from enclave.guard.limits import DEFAULT_LIMITS, QueryLimits
from enclave.guard.lockdown import open_locked
from enclave.guard.policy import policy_from_specs
from enclave.prepare import layout, storage
from enclave.prepare.report import PreparationReport
from enclave.projects import ProjectState
from enclave.roles import ProjectRole
from enclave.user_locks import check_user_not_locked

OpenSession = Callable[[], AbstractContextManager[Session]]
MAX_AUDITED_SQL = 20_000
QUERY_ID = re.compile(r"[a-z0-9-]{1,64}")
QUERY_ID_REUSE_WINDOW_S = 86_400.0  # a retried id is looked up among this analyst's last day of queries
# Refusals that are a failure of running the query, not the guard's or the access rules' refusal.
FAILED_CODES = frozenset(
    {"query_timeout", "query_resources", "query_failed", "query_cancelled", "query_invalid"}
)


# Codes of failures caused by the server; none of them counts toward a user's refusal alerts.
SERVER_BUSY = "server_busy"  # the queue is full, or the query waited longer than `queue_timeout_s`
SERVER_RESOURCES = "server_resources"  # out of memory while sharing the server (retried alone)
SERVER_TIMEOUT = "server_timeout"  # stopped by the time limit while sharing the server (retried alone)
SERVER_SHUTDOWN = "server_shutdown"  # interrupted because the gateway is stopping
SERVER_FAILURE_CODES = frozenset({SERVER_BUSY, SERVER_RESOURCES, SERVER_TIMEOUT, SERVER_SHUTDOWN})

_MESSAGES = {
    SERVER_BUSY: (
        "The gateway is busy: the query could not start in time. Try again shortly.",
        "查询网关繁忙：查询未能及时开始。请稍后重试。",
    ),
    SERVER_RESOURCES: (
        "The gateway ran short of memory while other queries ran; the query is run again alone.",
        "其他查询运行期间网关内存不足；该查询将单独重新运行。",
    ),
    SERVER_TIMEOUT: (
        "The query ran out of time while other queries shared the server; it is run again alone.",
        "该查询与其他查询共享服务器时超时；将单独重新运行。",
    ),
    SERVER_SHUTDOWN: (
        "The gateway is restarting; the query was stopped. Try again shortly.",
        "查询网关正在重启，查询已停止。请稍后重试。",
    ),
}


class ServerUnavailable(Unavailable):
    """The server, not the analyst, could not run the query now (HTTP 503 + ``Retry-After``).

    Audited with ``outcome: server_failure``, which no monitoring rule counts. ``retry`` marks a
    failure the gateway answers by running the query once more, alone.
    """

    def __init__(self, code: str, *, retry_after_s: int, retry: bool = False, **details: Any) -> None:
        en, zh = _MESSAGES[code]
        super().__init__(code, en, zh, details={"retry_after_s": retry_after_s, **details})
        self.retry_after_s = retry_after_s
        self.retry = retry


class QueryHooks(Protocol):
    """How a caller that schedules queries (the gateway's runner) takes part in one ``run_query``.

    ``opened`` gets the query's DuckDB connection before anything runs, so the caller can
    ``interrupt()`` it (it raises ``query_cancelled`` for a query cancelled meanwhile); ``admit``
    gets the guard's plan estimate once every check passed (``enclave.guard.run``) and may wait
    there (admission control) or raise; ``classify`` may replace an error before it is audited and
    raised, e.g. by a ``ServerUnavailable`` for a failure the server caused.
    """

    def opened(self, con: duckdb.DuckDBPyConnection) -> None: ...

    def admit(self, estimate: int | None) -> None: ...

    def classify(self, error: EnclaveError) -> EnclaveError: ...


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
    if ProjectRole.ANALYST not in projects.roles_of(session, project_id, user):
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
        report = PreparationReport.load(prepared / layout.REPORT)
    except (OSError, ValueError):
        return set()
    return {name for name, dataset in report.datasets.items() if dataset.person_key_unique}


def prepared_query_context(
    session: Session, paths: Paths, project_id: str, *, synthetic: bool = False
) -> tuple[QueryContext, Path]:
    """The one builder of a query's context, for running a query and for ``enclave guard check``
    alike, so a check shows exactly the SQL that would run: the project's policy with the flags its
    current prepared version measured, and that version's folder."""
    prepared = layout.current_prepared_dir(paths, project_id)
    # The twin's synthetic persons may repeat across rows: it never gets the flag.
    unique = set() if synthetic else unique_person_keys(prepared)
    return query_context(session, project_id, unique), prepared


def check_query(
    open_session: OpenSession,
    paths: Paths,
    project_id: str,
    sql: str,
    *,
    synthetic: bool = False,
    limits: QueryLimits = DEFAULT_LIMITS,
) -> Verdict:
    """The guard's verdict for the project's policy, without running anything."""
    with open_session() as session:
        context, _ = prepared_query_context(session, paths, project_id, synthetic=synthetic)
    return check(sql, context.policy, max_rows=limits.rows)


def ledger_for(open_session: OpenSession, project_id: str, *, synthetic: bool) -> Ledger:
    """The project's differencing ledger, or a throwaway one for the synthetic twin."""
    if synthetic:
        return MemoryLedger()
    return differencing_ledger.project_ledger(open_session, project_id)


def check_run_running(session: Session, run_id: str, project_id: str, user: str) -> None:
    """A run may query only while it runs, as its own analyst in its own project, and not once its
    cancel was asked for (the gateway checked its token already; this holds until the query runs)."""
    from enclave.runs.states import RunState  # here: enclave.runs.service imports this module

    run = session.get(Run, run_id)
    if (
        run is None
        or run.project_id != project_id
        or run.user != user
        or run.state != RunState.RUNNING
        or run.cancel_requested
    ):
        raise Forbidden(
            "run_not_running",
            f"Run {run_id} is not running: its queries are refused",
            f"运行 {run_id} 未在运行中：其查询被拒绝",
        )


def run_query_outcome(outcome: str, code: str | None) -> str:
    """A run's query as ``RunQuery.outcome``: ``allowed``, ``rejected`` (refused) or ``failed``."""
    if outcome == "success":
        return "allowed"
    if outcome == "server_failure" or code in FAILED_CODES:
        return "failed"
    return "rejected"


def _record_run_query(
    session: Session, run_id: str, record: AuditEvent, sql: str, details: dict[str, Any]
) -> None:
    """The run's ``RunQuery`` row, in the audit record's transaction; none when the run is unknown
    or not this analyst's in this project (the audit record names the run all the same)."""
    run = session.get(Run, run_id)
    if run is None or run.user != record.actor or run.project_id != record.project:
        return
    session.add(
        RunQuery(
            run_id=run_id,
            query_id=str(details.get("query_id") or ""),
            sql=sql,
            outcome=run_query_outcome(record.outcome, details.get("code")),
            audit_id=record.seq,
            at=record.ts,
        )
    )
    session.flush()


def _query_record(
    session: Session,
    *,
    user: str,
    project_id: str,
    sql: str,
    source: str | None,
    outcome: str,
    details: dict[str, Any],
    run_id: str | None = None,
) -> AuditEvent:
    action = AuditAction.QUERY_RUN if outcome == "success" else AuditAction.QUERY_REFUSE
    record = audit.record(
        session,
        action,
        actor=user,
        obj=f"project:{project_id}",
        project=project_id,
        outcome=outcome,
        source=source,
        details={
            "sql": sql[:MAX_AUDITED_SQL],
            "sql_truncated": len(sql) > MAX_AUDITED_SQL,
            **({"run": run_id} if run_id is not None else {}),
            **details,
        },
    )
    if run_id is not None:
        _record_run_query(session, run_id, record, sql, details)
    return record


def _audit_query(open_session: OpenSession, **fields: Any) -> None:
    """Audit a query in a transaction of its own (refusals)."""
    with open_session() as session:
        _query_record(session, **fields)


def _check_query_id(query_id: str | None) -> None:
    if query_id is not None and not QUERY_ID.fullmatch(query_id):
        raise BadInput(
            "query_id_invalid",
            "query_id must be 1-64 lowercase letters, digits or dashes",
            "query_id 必须由 1-64 个小写字母、数字或连字符组成",
        )


def check_query_id_unused(
    session: Session, project_id: str, user: str, query_id: str | None, *, before_seq: int | None = None
) -> None:
    """Refuse an id under which this analyst already had a result released in this project (recently,
    ``QUERY_ID_REUSE_WINDOW_S``); ``before_seq`` looks only at records older than the caller's own."""
    if query_id is None:
        return
    since = datetime.now(UTC) - timedelta(seconds=QUERY_ID_REUSE_WINDOW_S)
    query = select(AuditEvent.seq, AuditEvent.ts).where(
        AuditEvent.actor == user,
        AuditEvent.ts >= since.isoformat(timespec="microseconds"),
        AuditEvent.action == AuditAction.QUERY_RUN.value,
        AuditEvent.project == project_id,
        # canonical JSON of a validated id (no quote, backslash, % or _): an exact key-value match
        AuditEvent.details_json.contains(f'"query_id":"{query_id}"'),
    )
    if before_seq is not None:
        query = query.where(AuditEvent.seq < before_seq)
    earlier = session.execute(query.limit(1)).first()
    if earlier is not None:
        raise BadInput(
            "query_id_used",
            f"A result of query {query_id} was already released (audit record {earlier.seq}, {earlier.ts}); "
            "run it again under a new query_id",
            f"查询 {query_id} 的结果已发布（审计记录 {earlier.seq}，{earlier.ts}）；"
            "请使用新的 query_id 重新运行",
            details={"query_id": query_id, "audit_seq": earlier.seq},
        )


@contextmanager
def _ledger_scope(
    open_session: OpenSession, project_id: str, *, synthetic: bool
) -> Iterator[tuple[Ledger, OpenSession]]:
    """The query's ledger, and how to open the transaction its audit record goes in: the ledger's
    own held transaction once it admitted something, so both commit together at the block's end."""
    if synthetic:
        yield MemoryLedger(), open_session
        return
    with differencing_ledger.held_ledger(open_session, project_id) as ledger:

        @contextmanager
        def audit_session() -> Iterator[Session]:
            if ledger.session is not None:
                yield ledger.session
            else:
                with open_session() as session:
                    yield session

        yield ledger, audit_session


def audit_server_failure(
    open_session: OpenSession,
    project_id: str,
    user: str,
    sql: str,
    error: ServerUnavailable,
    *,
    source: str | None,
    synthetic: bool,
    run_id: str | None = None,
    query_id: str | None = None,
) -> None:
    """Record a query the gateway turned away before it ran (``server_busy``), as a server failure."""
    ids = {"query_id": query_id} if query_id is not None and QUERY_ID.fullmatch(query_id) else {}
    _audit_query(
        open_session,
        user=user,
        project_id=project_id,
        sql=sql,
        source=source,
        outcome="server_failure",
        run_id=run_id,
        details={
            **ids,
            "code": error.code,
            "reasons": [],
            "synthetic": synthetic,
            "duration_ms": 0.0,
            "server_failure": True,
            "retried": False,
        },
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
    limits: QueryLimits = DEFAULT_LIMITS,
    hooks: QueryHooks | None = None,
    today: date | None = None,
    query_id: str | None = None,
    run_id: str | None = None,
) -> QueryResult:
    """Check access, run through the guard on the project's views (or its twin), audit the outcome.

    ``limits`` are the query's rows, memory, threads and time (the CLI's defaults, or the gateway's
    settings); ``hooks`` are the gateway runner's part in the run (cancellation, admission control,
    server failures: ``QueryHooks``); a failure it classifies as ``ServerUnavailable`` is audited
    with ``outcome: server_failure``. ``today`` replaces the enclave's date in the period check
    (tests); ``query_id`` (the client's id, recorded in the audit) may name at most one released
    result (see the module docstring). ``run_id`` names the batch run making the query (the
    gateway's run-token caller): it must be running, and the query is recorded for it
    (``RunQuery``, module docstring).
    """
    started = time.monotonic()
    audited = {"user": user, "project_id": project_id, "sql": sql, "source": source, "run_id": run_id}
    ids = {"query_id": query_id} if query_id is not None and QUERY_ID.fullmatch(query_id) else {}
    try:
        _check_query_id(query_id)
        with open_session() as session:
            check_analyst_access(session, project_id, user, today=today)
            if run_id is not None:
                check_run_running(session, run_id, project_id, user)
            check_query_id_unused(session, project_id, user, query_id)
            context, prepared = prepared_query_context(session, paths, project_id, synthetic=synthetic)
        database = prepared / (layout.TWIN_DB if synthetic else layout.VIEWS_DB)
        with _ledger_scope(open_session, project_id, synthetic=synthetic) as (ledger, audit_session):
            s3 = storage.locked_access(paths, project_id)  # None with local storage
            con = open_locked(database, limits, s3=s3)
            try:
                if hooks is not None:
                    hooks.opened(con)
                admit = hooks.admit if hooks is not None else None
                result = run(con, sql, context.policy, limits=limits, ledger=ledger, on_estimate=admit)
            finally:
                con.close()
            crashpoints.reach("query-admitted")
            with audit_session() as session:
                record = _query_record(
                    session,
                    **audited,
                    outcome="success",
                    details={
                        **ids,
                        "rows": len(result.rows),
                        "suppressed_groups": result.suppressed_groups,
                        "suppressed_values": result.suppressed_values,
                        # values or groups held back by the differencing ledger: monitoring alerts on these
                        "ledger_suppressed": result.ledger_suppressed,
                        "synthetic": synthetic,
                        "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    },
                )
                # Again under the chain's write lock: two runs of one id cannot both commit.
                check_query_id_unused(session, project_id, user, query_id, before_seq=record.seq)
        # committed: the ledger's rows and the audit record, together
    except EnclaveError as error:
        final = hooks.classify(error) if hooks is not None else error
        server = isinstance(final, ServerUnavailable)
        _audit_query(
            open_session,
            **audited,
            outcome="server_failure" if server else "refused",
            details={
                **ids,
                "code": final.code,
                "reasons": [r.code for r in final.reasons],
                "synthetic": synthetic,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
                **({"server_failure": True, "retried": final.retry} if server else {}),
            },
        )
        if final is error:
            raise
        raise final from None
    crashpoints.reach("query-committed")
    return result
