"""Property: over random queries drawn from the guard's algebra on random data, every released value
rests on a population of at least k persons, its complement within its group is 0 or at least k
persons, and no two populations released in one session (same query or earlier) differ by 1 to k-1
persons. Released non-NULL values equal plain DuckDB's.

The test generates the queries, so it knows each aggregate's population and computes it straight
from the data with plain DuckDB, never through the guard:

* ``count(*)``: the persons of the group; ``count(x)``: persons with a row where x is not NULL;
* ``count(*) FILTER (WHERE c)``, ``sum(CASE WHEN c THEN 1 ELSE 0 END)``, ``count_if(c)``: persons with
  a row where c is true;
* ``sum/avg/stddev_pop(x)``: persons with a row where x is neither NULL nor 0;
* ``count(DISTINCT x)``: counts only values held by at least k persons of the group; its population is
  the persons holding a counted value.

A released NULL (the guard suppresses one value that way, with a notice) has no population.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave.errors import Refused
from enclave.guard import GuardPolicy, QueryLimits, open_locked, run
from enclave.guard.ledger import MemoryLedger
from enclave.specs import ColumnRole
from tests.guard.helpers import PATIENT_ROLES, VISIT_ROLES, person_view

R = ColumnRole
POLICY = GuardPolicy(
    views={
        "patients": person_view("patients", {**PATIENT_ROLES, "flag": R.MEASURE}),
        "visits": person_view("visits", VISIT_ROLES),
    }
)
K = POLICY.k


# --- random data ------------------------------------------------------------------------------------


def random_tables(seed: int) -> tuple[pa.Table, pa.Table]:
    """30-80 patients in zips of every size 1..20, 0-4 visits each, NULLs and zeros in the measures."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 81))
    zips: list[str] = []
    while len(zips) < n:
        zips += [f"{100 + len(set(zips))}"] * int(rng.integers(1, 21))
    zips = [str(z) for z in rng.permutation(zips[:n])]

    def measure(low: int, high: int) -> float | None:
        draw = rng.random()
        return None if draw < 0.1 else 0.0 if draw < 0.2 else float(rng.integers(low, high))

    patients = {
        "pid": [f"Q{i:03d}" for i in range(n)],
        "sex": [str(s) for s in rng.choice(["F", "M"], size=n)],
        "age": [int(a) for a in rng.integers(20, 86, size=n)],
        "zip": zips,
        "dx": [str(d) for d in rng.choice(["A", "B", "C", "D"], size=n, p=[0.45, 0.3, 0.17, 0.08])],
        "income": [measure(1000, 5000) for _ in range(n)],
        "flag": [None if rng.random() < 0.05 else int(rng.integers(0, 2)) for _ in range(n)],
    }
    visits: dict[str, list[Any]] = {"pid": [], "visit_date": [], "cost": [], "dx": []}
    start = dt.date(2019, 1, 1)
    for i in range(n):
        for _ in range(int(rng.integers(0, 5))):
            visits["pid"].append(f"Q{i:03d}")
            visits["visit_date"].append(start + dt.timedelta(days=int(rng.integers(0, 4 * 365))))
            visits["cost"].append(measure(10, 500))
            visits["dx"].append(str(rng.choice(["I10", "E11", "J45", "R99"], p=[0.4, 0.3, 0.2, 0.1])))
    patient_schema = pa.schema(
        [
            ("pid", pa.string()),
            ("sex", pa.string()),
            ("age", pa.int64()),
            ("zip", pa.string()),
            ("dx", pa.string()),
            ("income", pa.float64()),
            ("flag", pa.int64()),
        ]
    )
    visit_schema = pa.schema(
        [("pid", pa.string()), ("visit_date", pa.date32()), ("cost", pa.float64()), ("dx", pa.string())]
    )
    return pa.table(patients, schema=patient_schema), pa.table(visits, schema=visit_schema)


def write_views(root: Path, seed: int) -> Path:
    """Parquet files and a ``views.duckdb`` over them, as preparation builds them."""
    patients, visits = random_tables(seed)
    pq.write_table(patients, root / "patients.parquet")
    pq.write_table(visits, root / "visits.parquet")
    con = duckdb.connect(str(root / "views.duckdb"))
    for name in ("patients", "visits"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{root / (name + '.parquet')}')")
    con.close()
    return root / "views.duckdb"


# --- the algebra ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agg:
    """An aggregate and the row-level condition under which a row puts its person in the population."""

    sql: str
    contributes: str
    distinct: str | None = None  # count(DISTINCT x): the value x


def counted(expr: str) -> Agg:
    return Agg(f"count({expr})", f"({expr}) IS NOT NULL")


def valued(func: str, expr: str) -> Agg:
    return Agg(f"{func}({expr})", f"({expr}) IS NOT NULL AND ({expr}) <> 0")


def filtered(cond: str) -> Agg:
    return Agg(f"count(*) FILTER (WHERE {cond})", f"coalesce({cond}, FALSE)")


def indicator(cond: str) -> Agg:
    return Agg(f"sum(CASE WHEN {cond} THEN 1 ELSE 0 END)", f"coalesce({cond}, FALSE)")


COUNT_ALL = Agg("count(*)", "TRUE")

PATIENT_AGGS = [
    COUNT_ALL,
    counted("p.income"),
    Agg("count(DISTINCT p.dx)", "p.dx IS NOT NULL", distinct="p.dx"),
    valued("sum", "p.income"),
    valued("avg", "p.income"),
    valued("stddev_pop", "p.income"),
    valued("avg", "p.age"),
    valued("avg", "p.flag"),
    filtered("p.age >= 60"),
    filtered("p.flag = 1"),
    indicator("p.age < 40"),
    indicator("p.dx = 'D'"),
    Agg("count_if(p.income > 3000)", "coalesce(p.income > 3000, FALSE)"),
]
VISIT_AGGS = [
    COUNT_ALL,
    counted("v.cost"),
    Agg("count(DISTINCT v.dx)", "v.dx IS NOT NULL", distinct="v.dx"),
    valued("sum", "v.cost"),
    valued("avg", "v.cost"),
    valued("stddev_pop", "v.cost"),
    filtered("v.dx = 'R99'"),
    filtered("v.cost > 300"),
    indicator("v.dx = 'I10'"),
]
PER_AGGS = [
    COUNT_ALL,
    counted("per.total"),
    valued("sum", "per.total"),
    valued("avg", "per.total"),
    valued("stddev_pop", "per.total"),
    valued("avg", "per.n"),
    valued("sum", "per.n"),
    filtered("per.n >= 3"),
    indicator("per.total > 500"),
]

PATIENT_KEYS = [
    "p.sex",
    "p.zip",
    "p.dx",
    "CASE WHEN p.age < 40 THEN 'a' WHEN p.age < 60 THEN 'b' ELSE 'c' END",
]
VISIT_KEYS = ["v.dx", "year(v.visit_date)"]
PER_KEYS = ["per.n", "CASE WHEN per.total > 400 THEN 'high' ELSE 'low' END"]

# {zip}, {age}, {sex}: the values of one drawn target patient; {zip2}: another drawn zip.
PATIENT_FILTERS = [
    "TRUE",
    "p.age > 50",
    "p.sex = 'F'",
    "p.zip = '{zip}'",
    "p.zip IN ('{zip}', '{zip2}')",
    "p.zip <> '{zip}'",
    "NOT (p.zip = '{zip}' AND p.age = {age})",
    "(p.zip = '{zip}' AND p.age = {age}) OR p.sex = '{other_sex}'",
    "p.sex = '{sex}' AND NOT (p.zip = '{zip}' AND p.age = {age})",
    "p.dx = 'D' OR p.zip = '{zip}'",
    "p.income > 2000",
    "p.flag = 1",
]
VISIT_FILTERS = [
    "TRUE",
    "v.cost > 100",
    "v.dx = 'R99'",
    "year(v.visit_date) >= 2021",
    "NOT (v.dx = 'R99' AND v.cost > 250)",
]
PER_FILTERS = ["TRUE", "per.n >= 2", "per.total > 300", "NOT (per.n = 4 AND per.total > 900)"]

PER = "WITH per AS (SELECT pid, count(*) AS n, sum(cost) AS total FROM visits GROUP BY pid) "


@dataclass(frozen=True)
class Source:
    sql: str
    pid: str
    keys: list[str]
    filters: list[str]
    aggs: list[Agg]
    prefix: str = ""


SOURCES = {
    "patients": Source("FROM patients p", "p.pid", PATIENT_KEYS, PATIENT_FILTERS, PATIENT_AGGS),
    "visits": Source("FROM visits v", "v.pid", VISIT_KEYS, VISIT_FILTERS, VISIT_AGGS),
    "join": Source(
        "FROM patients p JOIN visits v ON p.pid = v.pid",
        "p.pid",
        PATIENT_KEYS + VISIT_KEYS,
        PATIENT_FILTERS + VISIT_FILTERS[1:],
        PATIENT_AGGS + VISIT_AGGS[1:],
    ),
    "per": Source("FROM per", "per.pid", PER_KEYS, PER_FILTERS, PER_AGGS, prefix=PER),
    "per join patients": Source(
        "FROM per JOIN patients p ON p.pid = per.pid",
        "p.pid",
        PER_KEYS + PATIENT_KEYS,
        PER_FILTERS + PATIENT_FILTERS[1:],
        PER_AGGS + PATIENT_AGGS[1:],
        prefix=PER,
    ),
}


@dataclass
class Query:
    source: Source
    keys: list[str]
    where: str
    aggs: list[Agg]

    @property
    def sql(self) -> str:
        keys = "".join(f"{k} AS k{i}, " for i, k in enumerate(self.keys))
        aggs = ", ".join(f"{a.sql} AS a{i}" for i, a in enumerate(self.aggs))
        group = f" GROUP BY {', '.join(self.keys)}" if self.keys else ""
        return f"{self.source.prefix}SELECT {keys}{aggs} {self.source.sql} WHERE {self.where}{group}"


@st.composite
def queries(draw: st.DrawFn, targets: list[tuple[str, int, str]], zips: list[str]) -> Query:
    source = SOURCES[draw(st.sampled_from(sorted(SOURCES)))]
    keys = draw(st.lists(st.sampled_from(source.keys), max_size=2, unique=True))
    zip_, age, sex = draw(st.sampled_from(targets))
    where = draw(st.sampled_from(source.filters)).format(
        zip=zip_,
        age=age,
        sex=sex,
        other_sex="M" if sex == "F" else "F",
        zip2=draw(st.sampled_from(zips)),
    )
    aggs = draw(st.lists(st.sampled_from(source.aggs), min_size=1, max_size=3, unique=True))
    return Query(source, keys, where, aggs)


# --- the truth, straight from the data --------------------------------------------------------------


@dataclass
class Group:
    persons: set[str] = field(default_factory=set)
    contributors: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    holders: dict[int, dict[Any, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )


def truth(plain: duckdb.DuckDBPyConnection, query: Query) -> tuple[dict[tuple, Group], dict[tuple, tuple]]:
    """Each group's persons and each aggregate's contributors, and plain DuckDB's values."""
    width = len(query.keys)
    columns = [f"{k} AS k{i}" for i, k in enumerate(query.keys)] + [f"{query.source.pid} AS pid"]
    for i, agg in enumerate(query.aggs):
        columns.append(f"coalesce({agg.contributes}, FALSE) AS c{i}")
        columns.append(f"{agg.distinct or 'NULL'} AS d{i}")
    rows_sql = f"{query.source.prefix}SELECT {', '.join(columns)} {query.source.sql} WHERE {query.where}"
    groups: dict[tuple, Group] = defaultdict(Group)
    for row in plain.execute(rows_sql).fetchall():
        group = groups[tuple(row[:width])]
        pid = row[width]
        group.persons.add(pid)
        for i in range(len(query.aggs)):
            contributes, value = row[width + 1 + 2 * i], row[width + 2 + 2 * i]
            if contributes:
                group.contributors[i].add(pid)
                if query.aggs[i].distinct is not None:
                    group.holders[i][value].add(pid)
    values = {tuple(row[:width]): tuple(row[width:]) for row in plain.execute(query.sql).fetchall()}
    return groups, values


def population(query: Query, group: Group, i: int) -> tuple[frozenset[str], Any]:
    """The persons behind aggregate ``i`` of a group, and its value when it differs from plain SQL."""
    if query.aggs[i].distinct is None:
        return frozenset(group.contributors[i]), None
    kept = [persons for persons in group.holders[i].values() if len(persons) >= K]
    return frozenset().union(*kept), len(kept)


def same(released: Any, expected: Any) -> bool:
    if isinstance(released, float) or isinstance(expected, float):
        return expected is not None and math.isclose(released, expected, rel_tol=1e-9, abs_tol=1e-9)
    return released == expected


# --- the property -----------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_released_values_rest_on_k_persons_and_never_differ_by_fewer(seed, data, tmp_path_factory):
    root = tmp_path_factory.mktemp("guard-property")
    locked = open_locked(write_views(root, seed), QueryLimits(memory="256MB", threads=1))
    plain = duckdb.connect()
    plain.execute(f"CREATE VIEW patients AS SELECT * FROM read_parquet('{root / 'patients.parquet'}')")
    plain.execute(f"CREATE VIEW visits AS SELECT * FROM read_parquet('{root / 'visits.parquet'}')")
    try:
        targets = plain.execute("SELECT DISTINCT zip, age, sex FROM patients ORDER BY ALL").fetchall()
        zips = [z for (z,) in plain.execute("SELECT DISTINCT zip FROM patients ORDER BY zip").fetchall()]
        session = data.draw(st.lists(queries(targets, zips), min_size=2, max_size=5), label="session")
        ledger = MemoryLedger()  # one ledger for the whole session
        released: list[tuple[frozenset[str], str]] = []
        for query in session:
            released += check_one(locked, plain, query, ledger)
        check_no_small_differences(released)
    finally:
        plain.close()
        locked.close()


def check_one(locked, plain, query: Query, ledger: MemoryLedger) -> list[tuple[frozenset[str], str]]:
    """Run one query of the session; check each released value; return their populations."""
    sql = query.sql
    try:
        result = run(locked, sql, POLICY, ledger=ledger)
    except Refused as refused:
        # The algebra is what the guard supports; another refusal (say, a spent budget) releases nothing.
        assert refused.code != "query_rejected", f"{refused}\n{sql}"
        return []
    width = len(query.keys)
    assert len(result.columns) == width + len(query.aggs), sql
    groups, values = truth(plain, query)
    out = []
    for row in result.rows:
        key = tuple(row[:width])
        group = groups.get(key, Group())
        assert len(group.persons) >= K, f"group {key} of {len(group.persons)} persons released: {sql}"
        assert key in values, f"released group {key} is not in the plain result: {sql}"
        for i, value in enumerate(row[width:]):
            if value is None:
                # A suppressed value: NULL with a notice (or NULL in plain DuckDB too).
                assert result.notices or values[key][i] is None, f"silent NULL: {query.aggs[i].sql}: {sql}"
                continue
            where = f"{query.aggs[i].sql} of group {key} in: {sql}"
            persons, special = population(query, group, i)
            expected = special if special is not None else values[key][i]
            assert same(value, expected), f"released {value!r}, plain {expected!r}: {where}"
            assert len(persons) >= K, f"{len(persons)} contributing persons behind {value!r}: {where}"
            if query.aggs[i].distinct is not None:
                # count(DISTINCT x) counts only values held by at least k persons (docs/guard.md):
                # persons holding only rarer values add nothing to it, so no complement rule and
                # no ledger population of its own (the ledger keeps its non-NULL population).
                continue
            rest = len(group.persons - persons)
            assert rest == 0 or rest >= K, f"{rest} persons of the group do not contribute: {where}"
            out.append((persons, where))
    return out


def check_no_small_differences(released: list[tuple[frozenset[str], str]]) -> None:
    """No two released populations of one session differ by 1 to k-1 persons."""
    for index, (first, first_where) in enumerate(released):
        for second, second_where in released[:index]:
            if abs(len(first) - len(second)) >= K:
                continue
            differ = len(first ^ second)
            assert differ == 0 or differ >= K, (
                f"populations differ by {differ} person(s):\n  {first_where}\n  {second_where}"
            )
