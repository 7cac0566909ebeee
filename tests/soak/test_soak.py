"""Soak: twenty analysts query the real gateway for ten minutes (issue #17, item 3).

Each analyst is a thread with the analyst client (``enclave_client.Connection``, Arrow over HTTP)
and its own server token from the hub. It picks a query from a fixed, weighted mix (counts by
group, averages, joins, a window, a person-level layer, a small cell; a fifth on the synthetic twin;
one in twenty that the guard refuses) and thinks 1-4 s between queries. The run stops at the
deadline (``ENCLAVE_SOAK_SECONDS``, default 600) or at the cap on queries, whichever comes first.

The gateway runs with production defaults, monitoring included: the pace (about one query per
2.7 s per analyst) and the cap (280 per analyst per ten minutes) keep every analyst under the
monitor's 300 queries per ten minutes and 50 refusals per hour, and the mix releases no population
that differs from another by 1..k-1 persons, so a correct gateway raises no alert and locks nobody.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from enclave_client import Connection, QueryError
from sqlalchemy import func, select

from enclave import audit
from enclave.audit import AuditAction
from enclave.db.models import AuditEvent, GuardLedgerEntry
from enclave.guard.ledger import TABLES, Sketch, cells_per_table, differs_by_few
from tests.gateway.conftest import Enclave, Hub
from tests.soak.conftest import ANALYSTS, PROJECT, REFERENCE_USER, GatewayProcess, SoakDatabase

pytestmark = pytest.mark.slow

DURATION_S = float(os.environ.get("ENCLAVE_SOAK_SECONDS", "600"))
SEED = int(os.environ.get("ENCLAVE_SOAK_SEED", "17"))
THINK_S = (1.0, 4.0)
CAP_PER_ANALYST_PER_10_MIN = 280  # under the monitor's default of 300 queries per 10 minutes
QUERY_TIMEOUT_S = 60.0  # the client gives up after this: counted as a connection failure
WARMUP_FRACTION = 0.25  # memory growth is measured from the end of the first quarter to the end
SAMPLE_EVERY_S = 5.0
# Growth of the gateway's resident memory from the end of the warm-up to the end of the run. The
# gateway keeps no per-query state once a query is answered (DuckDB connections are closed, the
# token cache holds 20 entries for 5 s, the ledger lives in the database), so its memory should
# level off once its worker threads, connection pools and allocator arenas have grown; 64 MiB is
# the noise of glibc arenas and DuckDB's buffers with room to spare, and catches a leak of about
# 20 KiB per query over the ~3,400 queries after the warm-up (a leaked result table, say).
MEMORY_GROWTH_BOUND_MIB = 64
K = 5  # the project's min_cell_count (tests.harness.factories.project_spec)
# Admission control's 503s for a server short of room (``enclave.gateway.admission``): counted apart
# and reported, not errors. ``server_shutdown`` is not among them: nothing stops the gateway here.
BUSY_CODES = frozenset({"server_busy", "server_resources", "server_timeout"})


@dataclass(frozen=True)
class Template:
    name: str
    sql: str
    weight: int
    synthetic: bool = False
    refused: frozenset[str] = frozenset()  # the guard's codes when the query must be refused


SQL = {
    "count_by_sex": "SELECT sex, count(*) AS n FROM patients GROUP BY sex",
    "count_by_dx": "SELECT dx, count(*) AS n FROM patients GROUP BY dx",
    "count_by_dx_sex": "SELECT dx, sex, count(*) AS n FROM patients GROUP BY dx, sex",
    "income_by_sex": "SELECT sex, avg(income) AS mean_income, count(*) AS n FROM patients GROUP BY sex",
    "income_by_age": (
        "SELECT age, avg(income) AS mean_income, count(*) AS n FROM patients GROUP BY age ORDER BY age"
    ),
    "visits_join_by_dx": (
        "SELECT p.dx, count(*) AS visits, sum(v.cost) AS cost "
        "FROM patients p JOIN visits v ON p.pid = v.pid GROUP BY p.dx"
    ),
    "cost_join_by_sex": (
        "SELECT p.sex, count(DISTINCT p.pid) AS persons, avg(v.cost) AS mean_cost "
        "FROM patients p JOIN visits v ON p.pid = v.pid GROUP BY p.sex"
    ),
    "visits_by_year": "SELECT year(visit_date) AS y, count(*) AS visits FROM visits GROUP BY y ORDER BY y",
    "share_by_dx": (
        "SELECT dx, count(*) AS n, 100.0 * count(*) / sum(count(*)) OVER () AS pct FROM patients GROUP BY dx"
    ),
    "per_person_visits": (
        "WITH per AS (SELECT pid, count(*) AS n_visits, sum(cost) AS total FROM visits GROUP BY pid) "
        "SELECT n_visits, count(*) AS persons, avg(total) AS mean_total FROM per GROUP BY n_visits"
    ),
    "small_cell": "SELECT count(*) AS n FROM patients WHERE income > 4990",  # < 5 persons: suppressed
}
MIX = (
    *(
        Template(name, SQL[name], weight)
        for name, weight in (
            ("count_by_sex", 10),
            ("count_by_dx", 10),
            ("count_by_dx_sex", 8),
            ("income_by_sex", 8),
            ("income_by_age", 8),
            ("visits_join_by_dx", 8),
            ("cost_join_by_sex", 6),
            ("visits_by_year", 5),
            ("share_by_dx", 5),
            ("per_person_visits", 4),
            ("small_cell", 3),
        )
    ),
    *(
        Template(f"{name}~twin", SQL[name], 5, synthetic=True)
        for name in ("count_by_dx_sex", "income_by_age", "visits_join_by_dx", "per_person_visits")
    ),
    Template("row_level", "SELECT pid, income FROM patients", 1, refused=frozenset({"QRY_NOT_AGGREGATE"})),
    Template(
        "read_file",
        "SELECT * FROM read_csv('/etc/passwd')",
        1,
        refused=frozenset({"QRY_TABLE_FUNCTION", "QRY_FUNCTION_NOT_ALLOWED"}),
    ),
    Template("delete", "DELETE FROM patients", 1, refused=frozenset({"QRY_NOT_SELECT"})),
    Template("typo", "SELEC count(*) FROM patients", 1, refused=frozenset({"QRY_PARSE"})),
    Template(
        "max_income",
        "SELECT sex, max(income) AS top FROM patients GROUP BY sex",
        1,
        refused=frozenset({"QRY_UNSAFE_AGGREGATE"}),
    ),
)


@dataclass
class Outcome:
    analyst: str
    template: Template
    kind: str  # success | refused | busy | error
    detail: str
    latency_ms: float
    answer: list[tuple[Any, ...]] | None = None


def _value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return str(value)


def _answer(frame: Any) -> list[tuple[Any, ...]]:
    """The rows (order-free; NULL and NaN alike), then the columns and suppressed groups."""
    rows = [tuple(_value(v) for v in row) for row in frame.itertuples(index=False)]
    rows.sort(key=lambda row: tuple(repr(round(v, 6) if isinstance(v, float) else v) for v in row))
    return [tuple(frame.columns), (int(frame.attrs["suppressed_groups"]),), *rows]


def _same_answer(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    """Equal, floats within 1e-9 (DuckDB's parallel sums may differ in the last bits)."""
    if len(a) != len(b):
        return False
    for row_a, row_b in zip(a, b, strict=True):
        if len(row_a) != len(row_b):
            return False
        for x, y in zip(row_a, row_b, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


def _same_groups(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    """The same columns, and as many groups released or suppressed (which ones may differ).

    What a twin answer is held to: a query on the twin gets a fresh in-memory ledger, and when two
    of its own cells differ by 1..k-1 persons the one released is the first in DuckDB's (unordered)
    group order, so which groups are suppressed may change from call to call. Real data is held to
    the reference answer exactly (its cells do not clash, and the project's ledger keeps what it
    released). The number of twin answers that varied is reported.
    """
    return a[0] == b[0] and a[1][0] + len(a) == b[1][0] + len(b)


def run_one(analyst: str, connection: Connection, template: Template) -> Outcome:
    """One query, classified: a success, the expected refusal, a busy gateway, or an error."""
    started = time.perf_counter()
    try:
        frame = connection.sql(template.sql, synthetic=template.synthetic, progress=None)
    except QueryError as error:
        elapsed = (time.perf_counter() - started) * 1000
        codes = frozenset(error.codes)
        if error.status == 0:
            kind = "error"  # connection failure or client time-out (gateway_unreachable)
        elif error.status == 503 and error.code in BUSY_CODES:
            kind = "busy"
        elif error.status >= 500:
            kind = "error"
        elif template.refused and error.status == 422 and codes == template.refused:
            kind = "refused"
        else:
            kind = "error"  # a refusal this query must not get
        return Outcome(analyst, template, kind, f"{error.status} {','.join(sorted(codes))}", elapsed)
    except Exception as error:  # the connection broke in a way the client does not wrap
        elapsed = (time.perf_counter() - started) * 1000
        return Outcome(analyst, template, "error", f"{type(error).__name__}: {error}", elapsed)
    elapsed = (time.perf_counter() - started) * 1000
    if template.refused:
        return Outcome(analyst, template, "error", "answered, but the guard must refuse it", elapsed)
    return Outcome(analyst, template, "success", "", elapsed, _answer(frame))


class Analysts:
    """Twenty analyst threads sharing a deadline, a cap on queries and the reference answers."""

    def __init__(self, gateway: GatewayProcess, tokens: dict[str, str], reference: dict[str, Any]) -> None:
        self.gateway = gateway
        self.tokens = tokens
        self.reference = reference
        self.cap_per_analyst = max(10, math.ceil(CAP_PER_ANALYST_PER_10_MIN * DURATION_S / 600))
        self.cap_total = self.cap_per_analyst * len(tokens)
        self.issued = 0
        self.lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        self.weights = [t.weight for t in MIX]
        self.twin_varied = 0

    def _take_ticket(self) -> bool:
        with self.lock:
            if self.issued >= self.cap_total:
                return False
            self.issued += 1
            return True

    def run(self, index: int, analyst: str, deadline: float) -> None:
        rng = random.Random(SEED * 1000 + index)
        connection = Connection(self.gateway.url, self.tokens[analyst], PROJECT, timeout_s=QUERY_TIMEOUT_S)
        mine: list[Outcome] = []
        time.sleep(rng.uniform(0, THINK_S[1]))  # analysts arrive spread out, not all at once
        while time.monotonic() < deadline and len(mine) < self.cap_per_analyst and self._take_ticket():
            template = rng.choices(MIX, self.weights)[0]
            outcome = run_one(analyst, connection, template)
            expected = self.reference[template.name]
            if outcome.kind == "success" and not _same_answer(outcome.answer, expected):
                if template.synthetic and _same_groups(outcome.answer, expected):
                    with self.lock:  # see _same_groups
                        self.twin_varied += 1
                else:
                    outcome.kind = "error"
                    outcome.detail = f"answer differs from the reference: {outcome.answer}"
            outcome.answer = None
            mine.append(outcome)
            time.sleep(max(0.0, min(rng.uniform(*THINK_S), deadline - time.monotonic())))
        with self.lock:
            self.outcomes += mine


def rss_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the kernel's peak) of a process, in KiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
    return fields


class MemorySampler(threading.Thread):
    """Samples the resident memory of the gateway (and the hub) every few seconds."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(name="soak-memory", daemon=True)
        self.pids = pids
        self.samples: dict[str, list[tuple[float, int]]] = {name: [] for name in pids}
        self.stopped = threading.Event()

    def sample(self) -> None:
        now = time.monotonic()
        for name, pid in self.pids.items():
            self.samples[name].append((now, rss_kib(pid)["VmRSS"]))

    def run(self) -> None:
        while not self.stopped.wait(SAMPLE_EVERY_S):
            self.sample()

    def stop(self) -> None:
        self.stopped.set()
        self.join(10)
        self.sample()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def ledger_rows(enclave: Enclave) -> list[tuple[str, int, bytes]]:
    with enclave.session() as session:
        return [
            (project, size, bytes(blob))
            for project, size, blob in session.execute(
                select(GuardLedgerEntry.project_id, GuardLedgerEntry.size, GuardLedgerEntry.sketch).order_by(
                    GuardLedgerEntry.id
                )
            )
        ]


def check_ledger(rows: list[tuple[str, int, bytes]]) -> list[str]:
    """What is wrong with the project's ledger rows: each sketch well-formed (its size in every
    sub-table), no population recorded twice, and no two populations 1..k-1 persons apart."""
    problems = []
    width = cells_per_table(K)
    sketches = []
    for number, (project, size, blob) in enumerate(rows):
        if project != PROJECT:
            problems.append(f"row {number}: project {project}")
            continue
        if size <= 0 or len(blob) != 20 * TABLES * width:
            problems.append(f"row {number}: size {size}, {len(blob)} bytes")
            continue
        sketch = Sketch.from_bytes(size, blob)
        per_table = sketch.counts.reshape(TABLES, width)
        if (per_table < 0).any() or any(int(total) != size for total in per_table.sum(axis=1)):
            problems.append(f"row {number}: cell counts {per_table.sum(axis=1).tolist()} for size {size}")
        sketches.append(sketch)
    seen = Counter((size, blob) for _, size, blob in rows)
    problems += [f"population of {size} recorded {n} times" for (size, _), n in seen.items() if n > 1]
    for i, a in enumerate(sketches):
        for b in sketches[i + 1 :]:
            if differs_by_few(a, b, K):
                problems.append(f"populations of {a.size} and {b.size} differ by 1..{K - 1} persons")
    return problems


def audit_counts(enclave: Enclave) -> Counter[tuple[str, str]]:
    """The project's audit records by (action, outcome)."""
    with enclave.session() as session:
        rows = session.execute(
            select(AuditEvent.action, AuditEvent.outcome, func.count())
            .where(AuditEvent.project == PROJECT)
            .group_by(AuditEvent.action, AuditEvent.outcome)
        )
        return Counter({(action, outcome): count for action, outcome, count in rows})


def test_twenty_analysts_for_ten_minutes(
    soak_hub: Hub,
    soak_enclave: Enclave,
    soak_database: SoakDatabase,
    gateway_process: GatewayProcess,
    soak_report: list[str],
    record_testsuite_property: Any,
) -> None:
    """No errors, no memory growth, an intact audit chain and a consistent ledger after the soak.

    * Every answer is a success equal to the reference answer for its query, or the guard's refusal
      with exactly the expected codes; a busy answer (admission control's 503 ``server_busy``,
      ``server_resources``, ``server_timeout``) is counted and reported by code. An error is any
      other 5xx, a connection failure or client time-out, any other refusal code, a success for a
      query the guard must refuse, or an answer that changed. The gateway logs no traceback.
    * The gateway's resident memory (``/proc/<pid>/status`` VmRSS, sampled every 5 s) grows by less
      than ``MEMORY_GROWTH_BOUND_MIB`` (64 MiB) from the end of the warm-up (the first quarter of
      the run) to the end: the median of the last three samples against that of the three before
      the warm-up ended.
    * ``enclave.audit.verify`` accepts the whole chain, which holds exactly one ``query.run`` per
      success and one ``query.refuse`` (outcome ``refused``) per refusal; server failures
      (outcome ``server_failure``) are reported; no monitoring alert and no lock.
    * The differencing ledger: every stored sketch deserialises with its size in each sub-table,
      no population is stored twice, no two stored populations differ by 1..k-1 persons, and the
      ledger holds exactly the populations the reference pass released: queries repeated by twenty
      analysts at once, and queries on the twin, added none.
    """
    reference_token, _ = soak_hub.server_token(REFERENCE_USER, PROJECT)
    reference_connection = Connection(
        gateway_process.url, reference_token, PROJECT, timeout_s=QUERY_TIMEOUT_S
    )
    reference: dict[str, Any] = {}
    reference_outcomes = []
    for template in MIX:
        outcome = run_one(REFERENCE_USER, reference_connection, template)
        assert outcome.kind in ("success", "refused"), (template.name, outcome.detail)
        assert (outcome.kind == "refused") == bool(template.refused), (template.name, outcome.detail)
        reference[template.name] = outcome.answer
        reference_outcomes.append(outcome)
    assert reference["small_cell"][1] == (1,), reference["small_cell"]  # the small cell was suppressed
    ledger_baseline = ledger_rows(soak_enclave)
    assert ledger_baseline, "the reference pass released no population"

    tokens = {analyst: soak_hub.server_token(analyst, PROJECT)[0] for analyst in ANALYSTS}
    analysts = Analysts(gateway_process, tokens, reference)
    sampler = MemorySampler({"gateway": gateway_process.pid, "hub": soak_hub.process.pid})
    sampler.sample()
    started = time.monotonic()
    deadline = started + DURATION_S
    threads = [
        threading.Thread(target=analysts.run, args=(i, name, deadline), name=f"soak-{name}", daemon=True)
        for i, name in enumerate(ANALYSTS)
    ]
    sampler.start()
    for thread in threads:
        thread.start()
    hard_deadline = deadline + QUERY_TIMEOUT_S + 30
    for thread in threads:
        thread.join(max(0.0, hard_deadline - time.monotonic()))
    sampler.stop()
    elapsed = time.monotonic() - started
    stuck = [thread.name for thread in threads if thread.is_alive()]

    outcomes = analysts.outcomes
    kinds = Counter(o.kind for o in outcomes)
    successes = [o for o in outcomes if o.kind == "success"]
    errors = [o for o in outcomes if o.kind == "error"]
    latencies = [o.latency_ms for o in outcomes]
    success_latencies = [o.latency_ms for o in successes]

    gateway_samples = sampler.samples["gateway"]
    warm_end = started + WARMUP_FRACTION * DURATION_S
    before_warm = [kib for t, kib in gateway_samples if t <= warm_end][-3:]
    last = [kib for _, kib in gateway_samples][-3:]
    rss_start = gateway_samples[0][1]
    rss_warm = statistics.median(before_warm)
    rss_end = statistics.median(last)
    rss_peak = max(kib for _, kib in gateway_samples)
    growth_mib = (rss_end - rss_warm) / 1024
    hub_samples = sampler.samples["hub"]
    gateway_alive = gateway_process.process.poll() is None
    hwm = rss_kib(gateway_process.pid)["VmHWM"] if gateway_alive else 0

    with soak_enclave.session() as session:
        verified = audit.verify(session, paths=soak_enclave.paths)
    counts = audit_counts(soak_enclave)
    by_action: Counter[str] = Counter()
    for (action, _), n in counts.items():
        by_action[action] += n
    audited_runs = by_action[AuditAction.QUERY_RUN.value]
    ledger = ledger_rows(soak_enclave)
    ledger_problems = check_ledger(ledger)
    gateway_log = gateway_process.log.read_text(errors="replace")
    tracebacks = gateway_log.count("Traceback (most recent call last)")

    all_successes = len(successes) + sum(o.kind == "success" for o in reference_outcomes)
    all_refusals = kinds["refused"] + sum(o.kind == "refused" for o in reference_outcomes)
    figures = {
        "state_db": soak_database.backend,
        "duration_s": round(elapsed, 1),
        "analysts": len(ANALYSTS),
        "queries": len(outcomes),
        "cap": analysts.cap_total,
        "success": kinds["success"],
        "success_twin": sum(o.template.synthetic for o in successes),
        "twin_answers_varied": analysts.twin_varied,
        "refused": kinds["refused"],
        "busy": kinds["busy"],
        "errors": kinds["error"],
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
        "success_p95_ms": round(percentile(success_latencies, 0.95), 1),
        "rss_start_mib": round(rss_start / 1024, 1),
        "rss_warm_mib": round(rss_warm / 1024, 1),
        "rss_end_mib": round(rss_end / 1024, 1),
        "rss_peak_mib": round(rss_peak / 1024, 1),
        "rss_hwm_mib": round(hwm / 1024, 1),
        "rss_growth_mib": round(growth_mib, 1),
        "rss_growth_bound_mib": MEMORY_GROWTH_BOUND_MIB,
        "hub_rss_start_mib": round(hub_samples[0][1] / 1024, 1),
        "hub_rss_end_mib": round(hub_samples[-1][1] / 1024, 1),
        "audit_records_checked": verified.checked,
        "audit_query_run": audited_runs,
        "audit_query_refused": counts[(AuditAction.QUERY_REFUSE.value, "refused")],
        "audit_server_failures": counts[(AuditAction.QUERY_REFUSE.value, "server_failure")],
        "audit_alerts": by_action[AuditAction.QUERY_ALERT.value],
        "audit_user_locks": by_action[AuditAction.USER_LOCK.value],
        "ledger_rows_after_reference": len(ledger_baseline),
        "ledger_rows_end": len(ledger),
    }
    for name, value in figures.items():
        record_testsuite_property(f"soak_{name}", value)
    by_template = Counter((o.template.name, o.kind) for o in outcomes)
    busy_codes = Counter(o.detail for o in outcomes if o.kind == "busy")
    error_kinds = Counter(f"{o.template.name}: {o.detail[:120]}" for o in errors)
    soak_report += [
        f"state DB {figures['state_db']}; {figures['analysts']} analysts for {figures['duration_s']} s "
        f"(deadline {DURATION_S:g} s, cap {figures['cap']} queries)",
        f"queries {figures['queries']}: success {figures['success']} (twin {figures['success_twin']}), "
        f"refused as expected {figures['refused']}, busy {figures['busy']} {dict(busy_codes)}, "
        f"errors {figures['errors']}; "
        f"twin answers whose suppressed groups varied {figures['twin_answers_varied']}",
        f"latency p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, max {figures['max_ms']} ms "
        f"(successes p95 {figures['success_p95_ms']} ms)",
        f"gateway RSS start {figures['rss_start_mib']} MiB, end of warm-up {figures['rss_warm_mib']} MiB, "
        f"end {figures['rss_end_mib']} MiB, peak {figures['rss_peak_mib']} MiB (kernel HWM "
        f"{figures['rss_hwm_mib']} MiB); growth {figures['rss_growth_mib']} MiB "
        f"(bound {MEMORY_GROWTH_BOUND_MIB} MiB); hub RSS {figures['hub_rss_start_mib']} -> "
        f"{figures['hub_rss_end_mib']} MiB",
        f"audit chain {'intact' if verified.ok else 'BROKEN: ' + str(verified.problem)} "
        f"({verified.checked} records; query.run {figures['audit_query_run']}, query.refuse refused "
        f"{figures['audit_query_refused']}, server failures {figures['audit_server_failures']}, alerts "
        f"{figures['audit_alerts']}, user locks {figures['audit_user_locks']})",
        f"ledger rows {len(ledger_baseline)} after the reference pass, {len(ledger)} at the end"
        + (f"; problems: {ledger_problems[:5]}" if ledger_problems else "; consistent"),
        "gateway RSS every ~30 s (MiB): "
        + " ".join(f"{kib / 1024:.0f}" for _, kib in gateway_samples[:: max(1, round(30 / SAMPLE_EVERY_S))]),
        "by query: " + ", ".join(f"{name} {kind} {n}" for (name, kind), n in sorted(by_template.items())),
        *(f"error x{n}: {text}" for text, n in error_kinds.most_common(10)),
    ]

    assert not stuck, f"analysts still running past the hard deadline: {stuck}"
    assert gateway_alive, "the gateway died:\n" + gateway_process.log_tail()
    assert outcomes, "no query ran"
    assert not errors, f"{len(errors)} errors, e.g. {error_kinds.most_common(5)}"
    assert tracebacks == 0, "the gateway logged tracebacks:\n" + gateway_process.log_tail()
    assert growth_mib < MEMORY_GROWTH_BOUND_MIB, figures
    assert verified.ok, verified.to_dict()
    assert verified.checked >= all_successes + all_refusals
    assert audited_runs == all_successes, (counts, all_successes)
    assert counts[(AuditAction.QUERY_REFUSE.value, "refused")] == all_refusals, (counts, all_refusals)
    assert by_action[AuditAction.QUERY_ALERT.value] == 0, counts
    assert by_action[AuditAction.USER_LOCK.value] == 0, counts
    assert not ledger_problems, ledger_problems
    assert len(ledger) == len(ledger_baseline), (len(ledger_baseline), len(ledger))
