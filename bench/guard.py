"""Guard cost: check time per query, and guarded versus plain DuckDB on 1 M demo patients / 10 M visits.

    .venv/bin/python bench/guard.py [--patients 1000000] [--data demo/guard-bench-1m] [--repeat 5]
                                    [--ledger memory|sqlite] [--only TEXT ...] [--skip-e2e]

Aims (the issue's item 9), at 1,000,000 patients with the differencing ledger on:
``check()`` median at most 2 ms; guarded/plain DuckDB median at most 1.5 and max at most 3 over
the queries below.

Prints the median and p95 of ``enclave.guard.check`` over the benign corpus
(tests/guard/fixtures/accept.sql) with the guard tests' policy. Then, per query over the demo data:
the median time in plain DuckDB (an in-memory connection with the same views), the median time of
``enclave.guard.run`` on a locked-down connection, their ratio, what was held back, and the median
of each step of the guarded path, timed here one by one as ``run`` does them: ``check()``,
``EXPLAIN (FORMAT JSON)`` of the compiled SQL (the fan-out bound), the compiled SQL on DuckDB
(``fetch_arrow_table``), ``release`` (the per-value decisions in Python, and the ledger's
``admit`` within it) and ``run_post`` (the analyst's outer layer over the released cells).
Plain, guarded and stepwise runs are interleaved in each repetition, so background load hits all
three alike. Last, the ratios' median and max against the aims, and the floor any exact person
count pays: one count(DISTINCT pid) over each view.

The ledger is on throughout: one ``MemoryLedger`` for the whole session (``--ledger sqlite``: a
``DatabaseLedger`` over a fresh SQLite state database in a temporary folder), passed to every
``run``, as a gateway passes the project's ledger; so every query is checked against everything
released before it in the session.

``enclave.demo_data.generate`` at 1,000,000 patients (seed 42) writes 1,000,000 patients and
10,137,595 visits (about 10.1 per patient; 19 s on 2 cores), the issue's 1 M / 10 M. The data is
generated once and reused (under demo/, which git ignores).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from enclave import db  # noqa: E402
from enclave.db.session import dispose_all  # noqa: E402
from enclave.demo_data import generate  # noqa: E402
from enclave.guard import GuardPolicy, QueryLimits, QueryResult, ViewPolicy, check, open_locked, run  # noqa: E402
from enclave.guard.ledger import DatabaseLedger, Ledger, MemoryLedger, Sketch  # noqa: E402
from enclave.guard.policy import DROPPED_ROLES  # noqa: E402
from enclave.guard.release import release, run_post  # noqa: E402
from enclave.specs import ColumnRole  # noqa: E402
from tests.guard.conftest import fixture_policy  # noqa: E402
from tests.guard.helpers import load_cases  # noqa: E402

CHECK_AIM_MS = 2.0
RATIO_MEDIAN_AIM = 1.5
RATIO_MAX_AIM = 3.0
PROJECT = "bench-guard"

VIEWS = ("patients", "visits")
QUERIES = {
    "count by sex": "SELECT sex, count(*) AS n FROM patients GROUP BY sex",
    "count by ethnicity, sex": "SELECT ethnicity, sex, count(*) FROM patients GROUP BY ethnicity, sex",
    "age bands": "SELECT (age // 10) * 10 AS decade, count(*) FROM patients GROUP BY decade ORDER BY decade",
    "visits by type": "SELECT visit_type, count(*), count(DISTINCT pid) FROM visits GROUP BY visit_type",
    "mean cost by department": (
        "SELECT department, avg(cost) AS mean_cost, count(*) FROM visits GROUP BY department"
    ),
    "visits by year": "SELECT year(visit_date) AS y, count(*) FROM visits GROUP BY y ORDER BY y",
    "join: cost by sex": (
        "SELECT p.sex, count(*) AS visits, sum(v.cost) AS total "
        "FROM patients p JOIN visits v ON p.pid = v.pid GROUP BY p.sex"
    ),
    "per-person visits": (
        "WITH n AS (SELECT pid, count(*) AS k FROM visits GROUP BY pid) SELECT k, count(*) FROM n GROUP BY k"
    ),
    "top diagnoses": "SELECT dx, count(*) AS n FROM visits GROUP BY dx ORDER BY n DESC LIMIT 20",
    # Guard v2 features, on visits (10 M rows) unless said otherwise.
    "FILTER: inpatients by dept": (
        "SELECT department, count(*) AS visits, "
        "count(*) FILTER (WHERE visit_type = 'inpatient') AS admissions "
        "FROM visits GROUP BY department ORDER BY department"
    ),
    "length of stay by dept": (
        "SELECT department, avg(discharge_date - visit_date) AS mean_los "
        "FROM visits GROUP BY department ORDER BY department"
    ),
    "median cost by dept": (
        "SELECT department, median(cost) AS median_cost FROM visits GROUP BY department ORDER BY department"
    ),
    "corr/regr: age, cost/person": (
        "WITH per AS (SELECT pid, sum(cost) AS total FROM visits GROUP BY pid) "
        "SELECT p.sex, corr(p.age, per.total) AS r, regr_slope(per.total, p.age) AS slope, "
        "regr_intercept(per.total, p.age) AS intercept "
        "FROM patients p JOIN per ON per.pid = p.pid GROUP BY p.sex ORDER BY p.sex"
    ),
    "percent of total (window)": (
        "SELECT department, count(*) AS visits, count(*) * 100.0 / sum(count(*)) OVER () AS pct "
        "FROM visits GROUP BY department ORDER BY department"
    ),
}
STEPS = ("check", "explain", "sql", "release", "ledger", "post")
CARDINALITY = re.compile(r'"Estimated Cardinality":\s*"(\d+)"')  # as enclave.guard.execute reads it
LIMITS = QueryLimits(rows=100_000, memory="8GB", threads=2, timeout_s=600)  # a benchmark, not a deployment


def demo_views(data: Path, patients: int) -> tuple[Path, GuardPolicy]:
    """Generate the demo data once, and a views database over its approved columns."""
    if not (data / "visits.parquet").exists():
        print(f"generating demo data for {patients:,} patients in {data} ...", flush=True)
        generate(data, patients, 42)
    views: dict[str, ViewPolicy] = {}
    database = data / "views.duckdb"
    database.unlink(missing_ok=True)
    con = duckdb.connect(str(database))
    rows = {}
    for name in VIEWS:
        spec = yaml.safe_load((data / f"{name}.yaml").read_text(encoding="utf-8"))
        roles = {
            c: ColumnRole(v["role"])
            for c, v in spec["columns"].items()
            if ColumnRole(v["role"]) not in DROPPED_ROLES
        }
        columns = ", ".join(f'"{c}"' for c in roles)
        parquet = (data / f"{name}.parquet").resolve()
        con.execute(f"CREATE VIEW {name} AS SELECT {columns} FROM read_parquet('{parquet}')")
        key = spec["person_key"]
        # Measured as preparation measures it (report.json: person_key_unique).
        (unique, rows[name]) = con.execute(
            f'SELECT count(*) = count(DISTINCT "{key}"), count(*) FROM {name}'
        ).fetchone()
        views[name] = ViewPolicy(name, key, roles, unique_person_key=bool(unique))
    con.close()
    print(f"\ndemo data {data}: " + ", ".join(f"{name} {n:,} rows" for name, n in rows.items()))
    return database, GuardPolicy(views=views)


class TimedLedger(Ledger):
    """Delegates to the session's ledger and adds up the time its ``admit`` takes."""

    def __init__(self, inner: Ledger) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.sketches = 0

    def admit(self, sketches: Sequence[Sketch], k: int, *, label: str = "") -> list[bool]:
        start = time.perf_counter()
        try:
            return self.inner.admit(sketches, k, label=label)
        finally:
            self.seconds += time.perf_counter() - start
            self.sketches += len(sketches)


@contextmanager
def session_ledger(kind: str) -> Iterator[TimedLedger]:
    """One ledger for the whole benchmark session: in memory, or in a scratch SQLite state database."""
    if kind == "memory":
        yield TimedLedger(MemoryLedger())
        return
    with tempfile.TemporaryDirectory(prefix="enclave-bench-guard-") as folder:
        url = f"sqlite:///{Path(folder) / 'state.db'}"
        db.migrate(url)
        sessions = db.connect(url)
        try:
            yield TimedLedger(DatabaseLedger(lambda: db.session_scope(sessions), PROJECT))
        finally:
            dispose_all()


def guarded_steps(
    con: duckdb.DuckDBPyConnection, sql: str, policy: GuardPolicy, ledger: TimedLedger
) -> tuple[dict[str, float], int]:
    """``enclave.guard.run``'s steps one by one, each timed (seconds); and the aggregation's rows."""
    times: dict[str, float] = {}
    start = time.perf_counter()
    verdict = check(sql, policy, max_rows=LIMITS.rows)
    times["check"] = time.perf_counter() - start
    if not verdict.allowed or verdict.compiled is None:
        raise RuntimeError(f"refused: {[r.message for r in verdict.reasons]}")
    compiled = verdict.compiled

    start = time.perf_counter()
    plans = con.execute("EXPLAIN (FORMAT JSON) " + compiled.sql).fetchall()
    estimate = max((int(m.group(1)) for _, plan in plans for m in CARDINALITY.finditer(plan)), default=0)
    times["explain"] = time.perf_counter() - start
    if estimate > policy.max_estimated_rows:
        raise RuntimeError(f"fan-out: about {estimate:,} rows")

    start = time.perf_counter()
    with warnings.catch_warnings():  # run() calls it so, deprecated in DuckDB 1.5 for to_arrow_table()
        warnings.simplefilter("ignore", DeprecationWarning)
        table = con.execute(compiled.sql).fetch_arrow_table()
    times["sql"] = time.perf_counter() - start

    ledger_before = ledger.seconds
    start = time.perf_counter()
    released = release(table, compiled, policy, ledger, sql)
    times["release"] = time.perf_counter() - start
    times["ledger"] = ledger.seconds - ledger_before

    start = time.perf_counter()
    run_post(released.table, compiled, LIMITS.rows)
    times["post"] = time.perf_counter() - start
    return times, table.num_rows


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def bench_check(repeat: int) -> float:
    policy = fixture_policy()
    cases = load_cases("accept.sql")
    allowed = sum(check(case.sql, policy).allowed for case in cases)  # also warms sqlglot's caches
    samples = []
    for _ in range(repeat * 4):
        for case in cases:
            start = time.perf_counter()
            check(case.sql, policy)
            samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    median = statistics.median(samples)
    print(
        f"guard check over {len(cases)} benign queries ({allowed} allowed) x {repeat * 4}: "
        f"median {median:.2f} ms, p95 {p95:.2f} ms, max {samples[-1]:.2f} ms "
        f"(aim: median <= {CHECK_AIM_MS:g} ms)"
    )
    return median


def bench_end_to_end(
    database: Path, policy: GuardPolicy, queries: dict[str, str], repeat: int, ledger: TimedLedger
) -> list[float]:
    # Plain DuckDB in memory with the same view definitions (one file cannot be opened twice with
    # different settings in one process).
    source = duckdb.connect(str(database), read_only=True)
    definitions = [
        r[0] for r in source.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall()
    ]
    source.close()
    plain = duckdb.connect()
    plain.execute("SET threads = 2")
    for definition in definitions:
        plain.execute(definition)
    locked = open_locked(database, LIMITS)

    width = max(len(title) for title in queries)
    print(
        f"\nmedians of {repeat} runs, ms; one {type(ledger.inner).__name__} for the whole session; "
        "check .. post: run()'s steps timed one by one"
    )
    print(
        f"{'query':{width}} {'plain':>7} {'guarded':>8} {'ratio':>6} | {'check':>5} {'EXPLAIN':>7} "
        f"{'SQL':>8} {'release':>7} {'(ledger)':>8} {'post':>5} {'sum':>8} | dominant"
    )
    ratios = []
    outcomes: dict[str, tuple[QueryResult, int, int]] = {}
    for title, sql in queries.items():
        plain.execute(sql).fetchall()  # warm up: Parquet metadata, caches
        sketches_before = ledger.sketches
        plain_s, guarded_s, results = [], [], []
        steps: dict[str, list[float]] = {step: [] for step in STEPS}
        groups = 0
        for _ in range(repeat):
            plain_s.append(timed(lambda sql=sql: plain.execute(sql).fetchall()))
            start = time.perf_counter()
            results.append(run(locked, sql, policy, limits=LIMITS, ledger=ledger))
            guarded_s.append(time.perf_counter() - start)
            times, groups = guarded_steps(locked, sql, policy, ledger)
            for step, seconds in times.items():
                steps[step].append(seconds)
        # The first run was checked against everything released before it in the session.
        outcomes[title] = (results[0], groups, (ledger.sketches - sketches_before) // (2 * repeat))
        plain_ms, guarded_ms = statistics.median(plain_s) * 1000, statistics.median(guarded_s) * 1000
        ratios.append(guarded_ms / plain_ms)
        ms = {step: statistics.median(values) * 1000 for step, values in steps.items()}
        total = sum(ms[step] for step in STEPS if step != "ledger")
        dominant = max((s for s in STEPS if s != "ledger"), key=lambda s: ms[s])
        print(
            f"{title:{width}} {plain_ms:7.1f} {guarded_ms:8.1f} {ratios[-1]:6.1f} | {ms['check']:5.1f} "
            f"{ms['explain']:7.1f} {ms['sql']:8.1f} {ms['release']:7.1f} {ms['ledger']:8.1f} "
            f"{ms['post']:5.1f} {total:8.1f} | {dominant} {100 * ms[dominant] / total:.0f}%",
            flush=True,
        )
    print("(SQL: the compiled aggregation on DuckDB; release includes the ledger's admit, shown apart)")

    print(
        f"\n{'query':{width}} {'groups':>6} {'suppressed':>10} {'NULLed':>6} {'by ledger':>9} {'sketches':>8}"
    )
    for title, (result, groups, sketches) in outcomes.items():
        print(
            f"{title:{width}} {groups:6d} {result.suppressed_groups:10d} {result.suppressed_values:6d} "
            f"{result.ledger_suppressed:9d} {sketches:8d}"
        )
    print(
        "(groups: rows of the compiled aggregation; suppressed: groups held back; NULLed: values\n"
        " returned as NULL; by ledger: of these, held back by the differencing ledger; sketches:\n"
        " populations sent to the ledger per run)"
    )

    median, worst = statistics.median(ratios), max(ratios)
    print(
        f"\nguarded/plain ratio over {len(ratios)} queries: median {median:.2f} "
        f"(aim <= {RATIO_MEDIAN_AIM:g}: {'met' if median <= RATIO_MEDIAN_AIM else 'NOT met'}), "
        f"max {worst:.2f} (aim <= {RATIO_MAX_AIM:g}: {'met' if worst <= RATIO_MAX_AIM else 'NOT met'})"
    )
    # The floor of exact distinct-person suppression: hashing every row's person key once.
    for view in VIEWS:
        floor = statistics.median(
            timed(lambda view=view: plain.execute(f"SELECT count(DISTINCT pid) FROM {view}").fetchall())
            for _ in range(repeat)
        )
        print(f"floor: count(DISTINCT pid) over all of {view} takes {floor * 1000:.1f} ms in plain DuckDB")
    plain.close()
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=REPO / "demo" / "guard-bench-1m")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ledger", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--only", nargs="+", metavar="TEXT", help="queries whose title has TEXT")
    args = parser.parse_args()
    queries = {t: q for t, q in QUERIES.items() if not args.only or any(o in t for o in args.only)}
    check_ms = bench_check(args.repeat)
    if args.skip_e2e:
        return
    database, policy = demo_views(args.data, args.patients)
    with session_ledger(args.ledger) as ledger:
        bench_end_to_end(database, policy, queries, args.repeat, ledger)
        print(f"ledger: {ledger.seconds:.2f} s in admit over the whole session")
    print(
        f"check() median {check_ms:.2f} ms (aim <= {CHECK_AIM_MS:g} ms: "
        f"{'met' if check_ms <= CHECK_AIM_MS else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
