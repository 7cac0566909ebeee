"""The differencing ledger's storage per 10,000 queries, and its admit latency as it grows.

    .venv/bin/python bench/ledger.py [--queries 10000] [--populations 3] [--k 5] [--backend sqlite postgresql]

Fills one project's ledger (``enclave.guard.ledger.DatabaseLedger``, the table the services use)
with ``--queries`` queries' worth of released populations, ``--populations`` per query, each a
random person set whose size is drawn log-uniformly between 5 and 1,000,000 persons (a sketch's
size does not depend on it). About 1% of the populations are differencing attempts: an earlier
population with 1 to k-1 persons added or removed, which the ledger must refuse. Every other
population is new, so the table holds about queries × populations rows: an upper bound, since a
repeated query adds nothing.

Prints, per backend: rows, bytes per row and bytes per 10,000 queries (table and indexes:
``pg_total_relation_size`` on PostgreSQL, ``dbstat`` on SQLite, with the file's growth beside it),
then the median and p95 time of one query's ``admit`` (one transaction) in each tenth of the run.
PostgreSQL runs in a scratch database on ``$ENCLAVE_TEST_POSTGRES`` (default: the local server),
dropped at the end.

Sketches of up to 2,000 persons are built exactly (``Sketch.of`` semantics, vectorised). Larger
ones are drawn from the exact distribution of a random person set's sketch: cell counts are
multinomial, and the XOR of one or more random 64-bit hashes is uniform, so they cost nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, text  # noqa: E402

from enclave import db  # noqa: E402
from enclave.audit import now_iso  # noqa: E402
from enclave.db.models import GuardLedgerEntry  # noqa: E402
from enclave.db.session import dispose_all, engine_for  # noqa: E402
from enclave.guard.ledger import (  # noqa: E402
    TABLES,
    DatabaseLedger,
    Sketch,
    cells_of,
    cells_per_table,
    check_value,
)

PROJECT = "bench-2026"
EXACT_UP_TO = 2_000
SMALLEST, LARGEST = 5, 1_000_000
ATTEMPT_SHARE = 0.01
ATTEMPTS_PER_SAMPLE = 5  # extra differencing attempts at each sampled tenth, to check they are refused
LABELS = (  # what the ledger keeps as a label: the first 200 characters of the query
    "SELECT sex, count(*) AS n FROM patients GROUP BY sex",
    "SELECT dx, sex, count(*), avg(income) FROM patients WHERE age >= '40-44' GROUP BY dx, sex",
    "SELECT p.dx, count(*) AS visits, sum(v.cost) AS cost FROM patients p JOIN visits v ON p.pid = v.pid "
    "WHERE v.visit_date >= DATE '2024-01-01' GROUP BY p.dx ORDER BY cost DESC",
    "WITH per_person AS (SELECT pid, count(*) AS n, sum(cost) AS total FROM visits GROUP BY pid) "
    "SELECT n, count(*), avg(total), quantile_cont(total, 0.5) FROM per_person GROUP BY n ORDER BY n",
)


def exact_sketch(persons: np.ndarray, k: int) -> Sketch:
    """``Sketch.of(persons, k)`` for distinct uint64 person hashes, the XORs in numpy."""
    width = cells_per_table(k)
    cells = np.array([cells_of(int(p), width) for p in persons], np.int64).reshape(-1, TABLES)
    checks_of = np.array([check_value(int(p)) for p in persons], np.uint64)
    counts = np.zeros(TABLES * width, np.int64)
    hashes = np.zeros(TABLES * width, np.uint64)
    checks = np.zeros(TABLES * width, np.uint64)
    for t in range(TABLES):
        counts += np.bincount(cells[:, t], minlength=TABLES * width)
        np.bitwise_xor.at(hashes, cells[:, t], persons)
        np.bitwise_xor.at(checks, cells[:, t], checks_of)
    return Sketch(len(persons), counts, hashes, checks)


def drawn_sketch(size: int, k: int, rng: np.random.Generator) -> Sketch:
    """A sketch distributed exactly as that of ``size`` random person hashes."""
    width = cells_per_table(k)
    counts = np.concatenate([rng.multinomial(size, [1 / width] * width) for _ in range(TABLES)])
    occupied = counts > 0
    hashes = np.where(occupied, rng.integers(0, 2**64, TABLES * width, dtype=np.uint64), 0).astype(np.uint64)
    checks = np.where(occupied, rng.integers(0, 2**64, TABLES * width, dtype=np.uint64), 0).astype(np.uint64)
    return Sketch(size, counts.astype(np.int64), hashes, checks)


def persons(size: int, rng: np.random.Generator) -> np.ndarray:
    return np.unique(rng.integers(1, 2**64, size, dtype=np.uint64))


class Workload:
    """Queries' worth of populations: mostly new, about 1% differing from a kept one by 1..k-1."""

    def __init__(self, k: int, seed: int) -> None:
        self.k = k
        self.rng = np.random.default_rng(seed)
        self.kept: list[np.ndarray] = []  # exactly built populations, for differencing attempts

    def population(self) -> tuple[Sketch, bool]:
        """A released population's sketch, and whether it is a differencing attempt."""
        rng = self.rng
        if self.kept and rng.random() < ATTEMPT_SHARE:
            return self.attempt(), True
        return self.new(), False

    def attempt(self) -> Sketch:
        """A kept population with 1..k-1 persons removed or added."""
        rng = self.rng
        base = self.kept[rng.integers(len(self.kept))]
        change = int(rng.integers(1, self.k))
        if rng.random() < 0.5 and len(base) > change:
            return exact_sketch(base[change:], self.k)
        return exact_sketch(np.unique(np.concatenate([base, persons(change, rng)])), self.k)

    def new(self) -> Sketch:
        """A population of a new size and new persons."""
        rng = self.rng
        size = int(np.exp(rng.uniform(np.log(SMALLEST), np.log(LARGEST))))
        if size > EXACT_UP_TO:
            return drawn_sketch(size, self.k, rng)
        members = persons(size, rng)
        if len(self.kept) < 500:
            self.kept.append(members)
        return exact_sketch(members, self.k)


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    name = f"enclave_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def scratch_sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{Path(folder) / 'state.db'}"
        dispose_all()


def storage(url: str) -> dict[str, int]:
    """Bytes the ledger's table and its indexes take, and the database file(s) where there are any."""
    with engine_for(url).connect() as conn:
        if conn.dialect.name == "postgresql":
            row = conn.execute(
                text(
                    "SELECT pg_total_relation_size('guard_ledger'), pg_relation_size('guard_ledger'), "
                    "pg_indexes_size('guard_ledger'), "
                    "COALESCE(pg_total_relation_size(reltoastrelid), 0) "
                    "FROM pg_class WHERE relname = 'guard_ledger'"
                )
            ).one()
            return {"total": row[0], "table": row[1], "indexes": row[2], "toast": row[3]}
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        sizes = dict(
            conn.execute(
                text(
                    "SELECT name, sum(pgsize) FROM dbstat WHERE name = 'guard_ledger' "
                    "OR name IN (SELECT name FROM sqlite_master WHERE tbl_name = 'guard_ledger' "
                    "AND type = 'index') GROUP BY name"
                )
            ).all()
        )
        path = Path(url.removeprefix("sqlite:///"))
        return {
            "total": sum(sizes.values()),
            "table": sizes.get("guard_ledger", 0),
            "indexes": sum(v for n, v in sizes.items() if n != "guard_ledger"),
            "file": path.stat().st_size,
        }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Run:
    """One backend: the ledger, the workload, and what happened."""

    def __init__(self, url: str, per_query: int, k: int, seed: int) -> None:
        db.migrate(url)
        self.sessions = db.connect(url)
        self.ledger = DatabaseLedger(self.open_session, PROJECT)
        self.workload = Workload(k, seed)
        self.labels = np.random.default_rng(seed + 1)
        self.per_query, self.k = per_query, k
        self.queries = 0
        self.outcomes = {(True, False): 0, (True, True): 0, (False, False): 0, (False, True): 0}

    def open_session(self):  # type: ignore[no-untyped-def]
        return db.session_scope(self.sessions)

    def label(self) -> str:
        return LABELS[self.labels.integers(len(LABELS))]

    def admit(self) -> float:
        """One query's populations through ``DatabaseLedger.admit``; its time in seconds."""
        populations = [self.workload.population() for _ in range(self.per_query)]
        started = time.perf_counter()
        verdicts = self.ledger.admit([sketch for sketch, _ in populations], self.k, label=self.label())
        elapsed = time.perf_counter() - started
        for (_, attempt), admitted in zip(populations, verdicts, strict=True):
            self.outcomes[attempt, not admitted] += 1
        self.queries += 1
        return elapsed

    def attempts(self, n: int) -> None:
        """Differencing attempts through ``admit``, untimed: each must be refused."""
        if not self.workload.kept:
            return
        for _ in range(n):
            [admitted] = self.ledger.admit([self.workload.attempt()], self.k, label=self.label())
            self.outcomes[True, not admitted] += 1

    def insert(self, queries: int) -> None:
        """Queries' worth of new populations written as ``admit`` writes them, without deciding."""
        with self.open_session() as session:
            for _ in range(queries):
                label, now = self.label(), now_iso()
                session.add_all(
                    GuardLedgerEntry(
                        project_id=PROJECT, size=s.size, sketch=s.to_bytes(), created_at=now, label=label
                    )
                    for s in (self.workload.new() for _ in range(self.per_query))
                )
        self.queries += queries


def bench(url: str, queries: int, per_query: int, k: int, seed: int, samples: int) -> None:
    """Fill the ledger to ``queries`` queries, timing ``admit`` along the way.

    ``samples`` = 0: every query goes through ``admit`` and is timed. Otherwise the ledger is filled
    by plain inserts, and at every tenth ``samples`` queries go through ``admit`` and are timed.
    """
    run = Run(url, per_query, k, seed)
    before = storage(url)
    tenth = max(1, queries // 10)
    buckets: list[tuple[int, list[float]]] = []
    started = time.monotonic()
    while run.queries < queries:
        at = run.queries
        if samples:
            timings = [run.admit() for _ in range(samples)]
            run.attempts(ATTEMPTS_PER_SAMPLE)
            run.insert(min(tenth, queries - run.queries))
        else:
            timings = [run.admit() for _ in range(min(tenth, queries - run.queries))]
        buckets.append((at, timings))
    if samples:
        buckets.append((run.queries, [run.admit() for _ in range(samples)]))
    elapsed = time.monotonic() - started
    after = storage(url)
    with run.open_session() as session:
        rows = session.execute(text("SELECT count(*) FROM guard_ledger")).scalar_one()
    grown = {key: after[key] - before.get(key, 0) for key in after}
    per_row = grown["total"] / rows if rows else 0.0
    scale = 10_000 / run.queries

    sketch_bytes = TABLES * cells_per_table(k) * 20  # int32 count, uint64 hash, uint64 check per cell
    outcomes = run.outcomes
    attempts = outcomes[True, False] + outcomes[True, True]
    print(
        f"  rows {rows:,} ({per_query} populations × {run.queries:,} queries; {sketch_bytes} B sketch each)"
    )
    print(
        f"  through admit: differencing attempts refused {outcomes[True, True]:,} of {attempts:,}; "
        f"other populations refused {outcomes[False, True]:,} of "
        f"{outcomes[False, False] + outcomes[False, True]:,}; {elapsed:.1f} s in all"
    )
    parts = ", ".join(f"{key} {value / 1e6:.2f} MB" for key, value in grown.items())
    print(f"  growth: {parts}")
    print(f"  bytes per row (table + indexes): {per_row:,.0f}")
    print(
        f"  per 10,000 queries: {grown['total'] * scale / 1e6:.1f} MB table + indexes"
        + (f" ({grown['file'] * scale / 1e6:.1f} MB of database file)" if "file" in grown else "")
    )
    what = f"{samples} sampled queries" if samples else "every query"
    print(f"  admit latency per query (one transaction of {per_query} populations; {what}):")
    print(f"    {'ledger at':>18}  {'median ms':>9}  {'p95 ms':>9}")
    for at, timings in buckets:
        where = f"{at:,} queries" if samples else f"{at:,}-{at + len(timings):,}"
        median, p95 = statistics.median(timings) * 1000, percentile(timings, 0.95) * 1000
        print(f"    {where:>18}  {median:9.2f}  {p95:9.2f}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--populations", type=int, default=3, help="released populations per query")
    parser.add_argument("--k", type=int, default=5, help="the project's minimum cell count")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--samples",
        type=int,
        default=30,
        help="queries timed through admit at every tenth of the fill (0: every query goes through admit)",
    )
    parser.add_argument(
        "--backend", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"]
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "ENCLAVE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="an admin URL; the bench creates and drops its own database there",
    )
    args = parser.parse_args()
    for backend in args.backend:
        print(f"{backend}:")
        scratch = scratch_sqlite() if backend == "sqlite" else scratch_postgres(args.postgres)
        with scratch as url:
            bench(url, args.queries, args.populations, args.k, args.seed, args.samples)


if __name__ == "__main__":
    main()
