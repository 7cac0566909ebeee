"""Guard cost: check time per query, and guarded versus plain DuckDB on 1,000,000 demo patients.

    .venv/bin/python bench/guard.py [--patients 1000000] [--data demo/guard-bench-1m] [--repeat 5]

Prints the median and p95 of ``enclave.guard.check`` over the benign corpus
(tests/guard/fixtures/accept.sql; aim: median under 2 ms), then, per typical aggregate over the
demo data, the median time in plain DuckDB, through ``enclave.guard.run`` on a locked-down
connection, and their ratio (aim: under 1.3), and the floor any exact person count pays:
one count(DISTINCT pid) over each view.
The demo data is generated once and reused (under demo/, which git ignores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import duckdb
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from enclave.demo_data import generate  # noqa: E402
from enclave.guard import GuardPolicy, ViewPolicy, check, open_locked, run  # noqa: E402
from enclave.guard.policy import DROPPED_ROLES  # noqa: E402
from enclave.specs import ColumnRole  # noqa: E402
from tests.guard.conftest import R  # noqa: E402
from tests.guard.helpers import load_cases  # noqa: E402

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
}


def test_policy() -> GuardPolicy:
    """The policy of the guard's own test fixtures, for timing ``check`` on the benign corpus."""
    return GuardPolicy(
        views={
            "patients": ViewPolicy(
                "patients",
                "pid",
                {
                    "pid": R.PERSON_KEY,
                    "sex": R.QUASI_ID,
                    "age": R.QUASI_ID,
                    "zip": R.QUASI_ID,
                    "dx": R.SENSITIVE,
                    "income": R.MEASURE,
                },
            ),
            "visits": ViewPolicy(
                "visits",
                "pid",
                {"pid": R.PERSON_KEY, "visit_date": R.DATE, "cost": R.MEASURE, "dx": R.SENSITIVE},
            ),
        }
    )


def demo_views(data: Path, patients: int) -> tuple[Path, GuardPolicy]:
    """Generate the demo data once, and a views database over its approved columns."""
    if not (data / "visits.parquet").exists():
        print(f"generating demo data for {patients:,} patients in {data} ...", flush=True)
        generate(data, patients, 42)
    views: dict[str, ViewPolicy] = {}
    database = data / "views.duckdb"
    database.unlink(missing_ok=True)
    con = duckdb.connect(str(database))
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
        (unique,) = con.execute(f'SELECT count(*) = count(DISTINCT "{key}") FROM {name}').fetchone()
        views[name] = ViewPolicy(name, key, roles, unique_person_key=bool(unique))
    con.close()
    return database, GuardPolicy(views=views, max_result_rows=100_000)


def timed(work, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_check(repeat: int) -> None:
    policy = test_policy()
    cases = load_cases("accept.sql")
    for case in cases:  # warm up sqlglot's caches
        check(case.sql, policy)
    samples = []
    for _ in range(repeat * 4):
        for case in cases:
            start = time.perf_counter()
            check(case.sql, policy)
            samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(
        f"guard check over {len(cases)} benign queries x {repeat * 4}: "
        f"median {statistics.median(samples):.2f} ms, p95 {p95:.2f} ms (aim: median < 2 ms)"
    )


def bench_end_to_end(database: Path, policy: GuardPolicy, repeat: int) -> None:
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
    locked = open_locked(database, memory_limit="8GB", threads=2, timeout_s=600)
    print(f"\n{'query':28} {'plain ms':>10} {'guarded ms':>11} {'ratio':>7} {'suppressed':>11}")
    ratios = []
    for title, sql in QUERIES.items():
        plain.execute(sql).fetchall()
        result = run(locked, sql, policy)
        plain_s = timed(lambda sql=sql: plain.execute(sql).fetchall(), repeat)
        guarded_s = timed(lambda sql=sql: run(locked, sql, policy), repeat)
        ratio = guarded_s / plain_s
        ratios.append(ratio)
        times = f"{plain_s * 1000:10.1f} {guarded_s * 1000:11.1f} {ratio:7.2f}"
        print(f"{title:28} {times} {result.suppressed_groups:11d}")
    print(
        f"\nguarded/plain ratio: median {statistics.median(ratios):.2f}, max {max(ratios):.2f} (aim: < 1.3)"
    )
    # The floor of exact distinct-person suppression: hashing every row's person key once.
    for view in VIEWS:
        floor = timed(
            lambda view=view: plain.execute(f"SELECT count(DISTINCT pid) FROM {view}").fetchall(), repeat
        )
        print(f"floor: count(DISTINCT pid) over all of {view} takes {floor * 1000:.1f} ms in plain DuckDB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=REPO / "demo" / "guard-bench-1m")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-e2e", action="store_true")
    args = parser.parse_args()
    bench_check(args.repeat)
    if not args.skip_e2e:
        database, policy = demo_views(args.data, args.patients)
        bench_end_to_end(database, policy, args.repeat)


if __name__ == "__main__":
    main()
