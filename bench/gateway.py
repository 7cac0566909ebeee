"""Gateway latency versus the same query in-process, on 1,000,000 prepared patients.

    .venv/bin/python bench/gateway.py [--patients 1000000] [--repeat 7] [--clients 20]

Prints, per query, the median in-process time (``enclave.query_service.run_query``, the code the
gateway itself runs) and through the gateway (HTTP, hub token check, Arrow IPC), their ratio
(aim: under 1.2 for queries over 50 ms), then the p95 with 20 concurrent clients as a ratio of
the in-process median. Starts a real JupyterHub and the gateway on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from enclave_client import Connection, QueryError  # noqa: E402
from traitlets.config import Config  # noqa: E402

from enclave import catalog, db, projects, query_service  # noqa: E402
from enclave.specs import parse_project_spec  # noqa: E402
from tests.factories import PATIENT_COLUMNS, VISIT_COLUMNS, project_spec, write_dataset  # noqa: E402
from tests.gateway.conftest import Enclave, running_hub, start_gateway  # noqa: E402

PROJECT = "bench-2026"
QUERIES = {
    "count by sex": "SELECT sex, count(*) AS n FROM patients GROUP BY sex",
    "count by dx, sex": "SELECT dx, sex, count(*) AS n FROM patients GROUP BY dx, sex",
    "avg income by age": "SELECT age, avg(income) AS mean_income, count(*) AS n FROM patients GROUP BY age",
    "visits join": (
        "SELECT p.dx, count(*) AS visits, sum(v.cost) AS cost FROM patients p "
        "JOIN visits v ON p.pid = v.pid GROUP BY p.dx"
    ),
}


def tables(n: int) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(7)
    pids = np.array([f"P{i:07d}" for i in range(n)])
    patients = pa.table(
        {
            "pid": pids,
            "name": np.full(n, "x"),
            "zip": (100000 + rng.integers(0, 50, n) * 80).astype(str),
            "age": rng.integers(18, 95, n),
            "sex": rng.choice(["F", "M"], n),
            "dx": rng.choice(["I10", "E11", "J18", "C50", "N18"], n),
            "income": rng.normal(5000, 1500, n).round(2),
        }
    )
    m = 2 * n
    start = date(2020, 1, 1)
    visits = pa.table(
        {
            "pid": pids[rng.integers(0, n, m)],
            "visit_date": [start + timedelta(days=int(d)) for d in rng.integers(0, 1500, m)],
            "cost": rng.gamma(2.0, 150.0, m).round(2),
            "dx": rng.choice(["I10", "E11"], m),
            "notes": np.full(m, ""),
        }
    )
    return patients, visits


def prepare(root: Path, n: int) -> Enclave:
    home = root / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'state.db'}"
    db.migrate(url)
    enclave = Enclave(home, url)
    patients, visits = tables(n)
    with enclave.session() as session:
        for name, table, columns in (
            ("patients", patients, PATIENT_COLUMNS),
            ("visits", visits, VISIT_COLUMNS),
        ):
            catalog.register(
                session, enclave.paths, write_dataset(root / "src", name, table, columns), actor="bench"
            )
    spec = project_spec(id=PROJECT, pi="alice", analysts=["alice"])
    with enclave.session() as session:
        projects.create_project(session, enclave.paths, parse_project_spec(spec), actor="bench")
    return enclave


def timed(func) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    func()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as tmp:
        root = Path(tmp)
        print(f"preparing {args.patients:,} patients …", flush=True)
        enclave = prepare(root, args.patients)
        sessions = db.connect(enclave.database_url)
        (root / "hub").mkdir()
        with running_hub(root / "hub") as hub:
            relaxed = Config({"QueryMonitor": {"queries_per_window": 10**9, "rows_per_hour": 10**9}})
            gateway = start_gateway(hub, enclave, config=relaxed, workers=args.clients)
            try:
                token, _ = hub.server_token("alice", PROJECT)
                client = Connection(gateway.url, token, PROJECT)

                def in_process(sql: str) -> None:
                    query_service.run_query(
                        lambda: db.session_scope(sessions),
                        enclave.paths,
                        PROJECT,
                        "alice",
                        sql,
                        source="bench",
                    )

                print(f"\n{'query':<20} {'in-process ms':>14} {'gateway ms':>11} {'ratio':>6}")
                medians = {}
                for name, sql in QUERIES.items():
                    in_process(sql)
                    client.sql(sql, progress=None)  # warm both paths
                    local = statistics.median(timed(lambda s=sql: in_process(s)) for _ in range(args.repeat))
                    remote = statistics.median(
                        timed(lambda s=sql: client.sql(s, progress=None)) for _ in range(args.repeat)
                    )
                    medians[name] = local
                    flag = "" if local < 50 else ("  ok" if remote / local < 1.2 else "  ABOVE 1.2")
                    print(f"{name:<20} {local:>14.1f} {remote:>11.1f} {remote / local:>6.2f}{flag}")

                print(f"\n{args.clients} concurrent clients, {args.repeat} queries each")
                clients = [Connection(gateway.url, hub.server_token("alice", PROJECT)[0], PROJECT)]
                clients *= args.clients
                for name, sql in QUERIES.items():
                    failures: Counter[str] = Counter()

                    def one_client(
                        c: Connection, s: str = sql, failures: Counter[str] = failures
                    ) -> list[float]:
                        times = []
                        for _ in range(args.repeat):
                            try:
                                times.append(timed(lambda: c.sql(s, progress=None)))
                            except QueryError as error:  # counted and printed, never hidden
                                failures[error.code] += 1
                        return times

                    with ThreadPoolExecutor(args.clients) as pool:
                        latencies = list(pool.map(one_client, clients))
                    flat = sorted(x for run in latencies for x in run)
                    failed = ", ".join(f"{n} × {code}" for code, n in failures.items()) or "none failed"
                    if not flat:
                        print(f"{name:<20} every query failed: {failed}")
                        continue
                    p95 = flat[int(0.95 * (len(flat) - 1))]
                    print(
                        f"{name:<20} p95 {p95:>9.1f} ms  = {p95 / medians[name]:>6.2f} × in-process median"
                        f"  ({failed})"
                    )
            finally:
                gateway.stop()


if __name__ == "__main__":
    main()
