"""Gateway latency versus the same query in-process, then the gateway under load, on 1,000,000 patients.

    .venv/bin/python bench/gateway.py [--patients 1000000] [--repeat 7] [--clients 20] [--load-repeat 3]
                                      [--memory-limit 2GB] [--workers 4]

Part 1 prints, per query, the median in-process time (``enclave.query_service.run_query``, the code
the gateway itself runs) and through the gateway (HTTP, hub token check, Arrow IPC), and their ratio
(aim: under 1.2 for queries over 50 ms).

Part 2 (issue #17) runs ``--clients`` concurrent clients of four analysts; ``--heavy-share`` of them
(a quarter) send the heavy visits join, the others the light single-view queries, ``--load-repeat``
each. It
prints the failures by code (aim: 0), the throughput against the same queries sent back to back by
one client (aim: at least 0.8 times), the p95 of the light queries that overlapped a heavy one
against each query's solo median through the gateway (aim: at most 5 times), and the monitoring
alerts raised (aim: none). Starts a real JupyterHub and the gateway on 127.0.0.1. Figures are noisy
on a shared machine: report the load average with them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from enclave_client import Connection, QueryError  # noqa: E402
from traitlets.config import Config  # noqa: E402

from enclave import catalog, db, projects, query_service  # noqa: E402
from enclave.audit import AuditAction  # noqa: E402
from enclave.db.models import AuditEvent  # noqa: E402
from enclave.guard import QueryLimits  # noqa: E402
from enclave.specs import parse_project_spec  # noqa: E402
from tests.conftest import _fresh_postgres_database  # noqa: E402
from tests.gateway.conftest import Enclave, running_hub, start_gateway  # noqa: E402
from tests.harness.factories import PATIENT_COLUMNS, VISIT_COLUMNS, project_spec, write_dataset  # noqa: E402

PROJECT = "bench-2026"
ANALYSTS = ["alice", "bob", "mallory", "frank"]
HEAVY = "visits join"
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


def prepare(root: Path, n: int, url: str | None = None) -> Enclave:
    home = root / "home"
    home.mkdir()
    url = url or f"sqlite:///{home / 'state.db'}"
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
    spec = project_spec(id=PROJECT, pi="alice", analysts=ANALYSTS)
    with enclave.session() as session:
        projects.create_project(
            session,
            enclave.paths,
            parse_project_spec(spec),
            actor="bench",
            without_application="benchmark fixture",
        )
    return enclave


@contextmanager
def state_database(postgres: bool) -> Iterator[str | None]:
    """A fresh PostgreSQL database for the state (dropped afterwards), or None for SQLite."""
    if not postgres:
        yield None
        return
    admin_url = os.environ.get(
        "ENCLAVE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    yield from _fresh_postgres_database(admin_url)  # the tests' own: created, then dropped


def timed(func) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    func()
    return (time.perf_counter() - started) * 1000


Plan = list[tuple[str, list[str]]]  # (user, query names) per client
Span = tuple[str, float, float]  # (query name, start, end) of a query that succeeded


def concurrently(
    gateway_url: str, tokens: dict[str, str], plan: Plan
) -> tuple[list[Span], Counter[str], float]:
    """Every client of ``plan`` at once, each sending its queries back to back."""
    failures: Counter[str] = Counter()
    spans: list[Span] = []

    def one_client(user: str, names: list[str]) -> None:
        conn = Connection(gateway_url, tokens[user], PROJECT)
        for name in names:
            begun = time.perf_counter()
            try:
                conn.sql(QUERIES[name], progress=None)
                spans.append((name, begun, time.perf_counter()))
            except QueryError as error:  # counted and printed, never hidden
                failures[error.code] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(len(plan)) as pool:
        for future in [pool.submit(one_client, user, names) for user, names in plan]:
            future.result()
    return spans, failures, time.perf_counter() - started


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(0.95 * (len(ordered) - 1))]


class Sampler:
    """The gateway's admission queues, sampled every 100 ms while a phase runs (where the time goes)."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.samples: list[dict[str, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            self.samples.append({"in_flight": len(self.runner._running), **self.runner.admission.snapshot()})

    def mean(self) -> str:
        self.stop.set()
        self.thread.join()
        keys = self.samples[0].keys() if self.samples else []
        return ", ".join(f"{k} {statistics.fmean(s[k] for s in self.samples):.1f}" for k in keys)


def load(
    gateway_url: str,
    tokens: dict[str, str],
    solo: dict[str, float],
    clients: int,
    repeat: int,
    runner: Any,
    heavy_share: float = 0.25,
) -> None:
    """Part 2: light and heavy queries from ``clients`` clients at once, against one client in turn."""
    light = [name for name in QUERIES if name != HEAVY]
    plan: Plan = []  # `heavy_share` of the clients send the heavy query, the others light ones
    for i in range(clients):
        heavy_client = i < max(1, round(clients * heavy_share))
        names = [HEAVY] * repeat if heavy_client else [light[(i + j) % len(light)] for j in range(repeat)]
        plan.append((ANALYSTS[i % len(ANALYSTS)], names))
    total = sum(len(names) for _, names in plan)
    n_heavy = sum(n == HEAVY for _, names in plan for n in names)

    serial_client = Connection(gateway_url, tokens["alice"], PROJECT)
    started = time.perf_counter()
    for _, names in plan:
        for name in names:
            serial_client.sql(QUERIES[name], progress=None)
    serial_s = time.perf_counter() - started

    sampler = Sampler(runner)
    spans, failures, concurrent_s = concurrently(gateway_url, tokens, plan)
    queues = sampler.mean()
    heavy = [(b, e) for name, b, e in spans if name == HEAVY]
    overlapping = [
        (name, (e - b) * 1000)
        for name, b, e in spans
        if name != HEAVY and any(hb < e and b < he for hb, he in heavy)
    ]
    light_plan = [(user, names) for user, names in plan if HEAVY not in names]
    light_spans, light_failures, _ = concurrently(gateway_url, tokens, light_plan)
    failures.update(light_failures)

    print(
        f"\n{clients} concurrent clients of {len(ANALYSTS)} analysts, {total} queries ({n_heavy} heavy), "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    failed = ", ".join(f"{n} × {code}" for code, n in failures.items()) or "0"
    print(f"failures: {failed}  (aim: 0)")
    ratio = serial_s / concurrent_s
    print(
        f"throughput: {total / concurrent_s:.2f} q/s concurrent vs {total / serial_s:.2f} q/s back to back "
        f"= {ratio:.2f} ×  (aim: ≥ 0.8)  [{concurrent_s:.1f} s vs {serial_s:.1f} s]"
    )
    if overlapping:
        print(
            f"light queries while heavy ones ran: {len(overlapping)}, "
            f"p95 {p95([ms for _, ms in overlapping]):.0f} ms"
            f" = {p95([ms / solo[name] for name, ms in overlapping]):.2f} × solo median  (aim: ≤ 5)"
        )
    if light_spans:
        alone = [(name, (e - b) * 1000) for name, b, e in light_spans]
        print(
            f"the same light clients without the heavy ones: p95 {p95([ms for _, ms in alone]):.0f} ms"
            f" = {p95([ms / solo[name] for name, ms in alone]):.2f} × solo median"
        )
    print(f"admission queues, mean while mixed: {queues}")
    heavy_ms = sorted((e - b) * 1000 for b, e in heavy)
    if heavy_ms:
        print(
            f"heavy queries: p50 {statistics.median(heavy_ms):.0f} ms, max {heavy_ms[-1]:.0f} ms "
            f"(solo {solo[HEAVY]:.0f} ms)"
        )


def alerts_and_locks(sessions) -> tuple[Counter[str], int]:  # type: ignore[no-untyped-def]
    with db.session_scope(sessions) as session:
        rows = session.query(AuditEvent.details_json).filter(
            AuditEvent.action == AuditAction.QUERY_ALERT.value
        )
        alerts = Counter(json.loads(d).get("rule", "?") for (d,) in rows)
        locked = session.query(AuditEvent).filter(AuditEvent.action == AuditAction.USER_LOCK.value).count()
    return alerts, locked


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--load-repeat", type=int, default=3)
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--heavy-share", type=float, default=0.25, help="share of the clients sending the join"
    )
    parser.add_argument(
        "--heavy-slots", type=int, default=None, help="Admission.heavy_slots (default: its own)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="state in a fresh PostgreSQL database (as in production; the tests' server, "
        "$ENCLAVE_TEST_POSTGRES) instead of SQLite, whose single write lock serializes the ledger",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as tmp, state_database(args.postgres) as url:
        root = Path(tmp)
        print(f"preparing {args.patients:,} patients ({'PostgreSQL' if url else 'SQLite'}) …", flush=True)
        enclave = prepare(root, args.patients, url)
        sessions = db.connect(enclave.database_url)
        (root / "hub").mkdir()
        with running_hub(root / "hub") as hub:
            # Rate and volume alerts off (a benchmark is a flood by design); refusal alerts stay on.
            relaxed = Config({"QueryMonitor": {"queries_per_window": 10**9, "rows_per_hour": 10**9}})
            if args.heavy_slots is not None:
                relaxed.Admission = Config({"heavy_slots": args.heavy_slots})
            gateway = start_gateway(
                hub, enclave, config=relaxed, workers=args.workers, memory_limit=args.memory_limit
            )
            try:
                tokens = {user: hub.server_token(user, PROJECT)[0] for user in ANALYSTS}
                client = Connection(gateway.url, tokens["alice"], PROJECT)

                def in_process(sql: str) -> None:
                    query_service.run_query(
                        lambda: db.session_scope(sessions),
                        enclave.paths,
                        PROJECT,
                        "alice",
                        sql,
                        source="bench",
                        limits=QueryLimits(memory=args.memory_limit),
                    )

                print(f"\n{'query':<20} {'in-process ms':>14} {'gateway ms':>11} {'ratio':>6}")
                solo = {}
                for name, sql in QUERIES.items():
                    in_process(sql)
                    client.sql(sql, progress=None)  # warm both paths
                    local = statistics.median(timed(lambda s=sql: in_process(s)) for _ in range(args.repeat))
                    remote = statistics.median(
                        timed(lambda s=sql: client.sql(s, progress=None)) for _ in range(args.repeat)
                    )
                    solo[name] = remote
                    flag = "" if local < 50 else ("  ok" if remote / local < 1.2 else "  ABOVE 1.2")
                    print(f"{name:<20} {local:>14.1f} {remote:>11.1f} {remote / local:>6.2f}{flag}")

                load(
                    gateway.url,
                    tokens,
                    solo,
                    args.clients,
                    args.load_repeat,
                    gateway.app.runner,
                    args.heavy_share,
                )
                alerts, locked = alerts_and_locks(sessions)
                print(f"monitoring: alerts {dict(alerts) or 0}, users locked {locked}  (aim: 0, 0)")
            finally:
                gateway.stop()


if __name__ == "__main__":
    main()
