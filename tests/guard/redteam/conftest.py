"""Worlds for the red-team corpus: pairs of small deterministic datasets that differ only in secrets.

An attack is judged by what it reveals: it runs in two worlds that are identical except for the
planted secret of one target person, and succeeds only if its decoded guess equals the secret in
both. A guess that is merely a constant, or that is right by luck in one world, does not count.

Worlds "A" and "B" (classes 1-7) differ only in the target's secrets. The target T (pid 'P777') is
the only woman in zip '999'; the other six persons in zip '999' are men (P293..P298), so the attacker
identifies T by ``zip = '999' AND sex = 'F'``.

====================  ==============  ==============
secret of T           world A         world B
====================  ==============  ==============
income (measure)      987654.0        123456.0
hiv (sensitive 0/1)   1               0
dx (sensitive)        'B20'           'I10'
age (quasi-id)        97              44
====================  ==============  ==============

Everyone else: incomes 18,000-60,000 (three NULLs, four zeros), ages 18-89 (two NULLs), 23 persons
with hiv = 1 (two NULLs), four other persons with dx 'B20' (so 'B20' has 5 persons in A, 4 in B),
six with dx 'Z21' (all hiv = 1). Nobody in zip '999' but T has hiv = 1 or dx 'B20'.

Worlds "SA" and "SB" (class 8) are world A with every date moved by a secret project offset (123
and 47 days) plus a per-person jitter in [-7, 7] days, the same for all dates of a person, as
preparation shifts dates. A public event: 13 persons with one visit each on 2021-03-15 in department
'EVENT' (jitters -7..7, mean, median and mode 0).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enclave.guard import GuardPolicy, QueryLimits, open_locked
from enclave.specs import ColumnRole
from tests.guard.helpers import PATIENT_ROLES, STAY_ROLES, person_view

R = ColumnRole
VIEWS = ("patients", "visits", "labs")
TARGET = "P777"
OTHERS = 299
EVENT_DATE = dt.date(2021, 3, 15)
ZIPS = ("100", "200", "300", "400", "500", "600")
DXS = ("I10", "E11", "J45", "C50", "K21", "M54", "I10", "E11", "J45", "I10")
DEPARTMENTS = ("CARD", "ONC", "ER", "GP", "ORTH")

# zip '999': six men with these ages, incomes and diagnoses, and no hiv.
ZIP999_AGES = (34, 47, 52, 61, 68, 75)
ZIP999_INCOMES = (22150.0, 27480.5, 31020.0, 35990.25, 38400.0, 39875.75)
ZIP999_DXS = ("I10", "E11", "I10", "J45", "I10", "E11")
FIRST_ZIP999 = OTHERS - len(ZIP999_AGES)  # P293..P298

B20 = (40, 141, 182, 243)  # the other persons with dx 'B20' (hiv = 1)
Z21 = (17, 58, 99, 160, 201, 262)  # dx 'Z21', all hiv = 1
HIV = (3, 25, 47, 69, 91, 113, 135, 157, 179, 221, 235, 257, 279)
HIV_NULL = (88, 188)
AGE_NULL = (11, 123)
INCOME_NULL = (15, 115, 215)
INCOME_ZERO = (7, 107, 207, 251)
EVENT = (5, 28, 44, 63, 77, 96, 110, 131, 150, 172, 199, 230, 270)
EVENT_JITTER = (-7, -5, -3, -1, 0, 0, 0, 0, 0, 1, 3, 5, 7)


@dataclass(frozen=True)
class Secrets:
    income: float
    hiv: int
    dx: str
    age: int
    offset: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "income": self.income,
            "hiv": self.hiv,
            "dx": self.dx,
            "age": self.age,
            "offset": self.offset,
        }


SECRETS = {
    "A": Secrets(income=987654.0, hiv=1, dx="B20", age=97),
    "B": Secrets(income=123456.0, hiv=0, dx="I10", age=44),
    "SA": Secrets(income=987654.0, hiv=1, dx="B20", age=97, offset=123),
    "SB": Secrets(income=987654.0, hiv=1, dx="B20", age=97, offset=47),
}
# Which pair of worlds judges an attack on a secret.
PAIRS = {"offset": ("SA", "SB")}
DEFAULT_PAIR = ("A", "B")


def jitter(index: int | None) -> int:
    """The per-person jitter of the shifted worlds, in [-7, 7] days."""
    if index in EVENT:
        return EVENT_JITTER[EVENT.index(index)]
    pid = TARGET if index is None else f"P{index:03d}"
    return int(hashlib.sha256(pid.encode()).hexdigest()[:8], 16) % 15 - 7


def patients_table(secrets: Secrets) -> pa.Table:
    rows: dict[str, list] = {k: [] for k in ("pid", "sex", "age", "zip", "dx", "income", "hiv")}

    def add(pid, sex, age, zip_, dx, income, hiv):
        for key, value in zip(rows, (pid, sex, age, zip_, dx, income, hiv), strict=True):
            rows[key].append(value)

    for i in range(OTHERS):
        if i >= FIRST_ZIP999:
            j = i - FIRST_ZIP999
            add(f"P{i:03d}", "M", ZIP999_AGES[j], "999", ZIP999_DXS[j], ZIP999_INCOMES[j], 0)
            continue
        dx = "B20" if i in B20 else "Z21" if i in Z21 else DXS[i % len(DXS)]
        hiv = None if i in HIV_NULL else int(i in B20 or i in Z21 or i in HIV)
        if i in INCOME_NULL:
            income = None
        elif i in INCOME_ZERO:
            income = 0.0
        else:
            income = 18000.0 + (i * 7919) % 42000 + 0.25 * (i % 4)
        age = None if i in AGE_NULL else 18 + (i * 37) % 72
        add(f"P{i:03d}", "F" if i % 2 == 0 else "M", age, ZIPS[(i // 2) % 6], dx, income, hiv)
    add(TARGET, "F", secrets.age, "999", secrets.dx, secrets.income, secrets.hiv)
    schema = pa.schema(
        [
            ("pid", pa.string()),
            ("sex", pa.string()),
            ("age", pa.int32()),
            ("zip", pa.string()),
            ("dx", pa.string()),
            ("income", pa.float64()),
            ("hiv", pa.int32()),
        ]
    )
    return pa.table(rows, schema=schema)


def _shift(index: int | None, offset: int | None) -> dt.timedelta:
    if offset is None:
        return dt.timedelta(0)
    return dt.timedelta(days=offset + jitter(index))


def visits_table(secrets: Secrets, offset: int | None) -> pa.Table:
    rows: dict[str, list] = {
        k: [] for k in ("pid", "visit_date", "discharge_date", "department", "cost", "dx")
    }

    def add(index, pid, visit, discharge, department, cost, dx):
        shift = _shift(index, offset)
        values = (
            pid,
            visit + shift,
            None if discharge is None else discharge + shift,
            department,
            cost,
            dx,
        )
        for key, value in zip(rows, values, strict=True):
            rows[key].append(value)

    start = dt.date(2019, 1, 1)
    patients = patients_table(secrets).to_pylist()
    for i in range(OTHERS):
        first_dx = patients[i]["dx"]
        for j in range(1 + (i * 7) % 4):
            visit = start + dt.timedelta(days=(i * 53 + j * 97) % 1000)
            discharge = None if (i + j) % 23 == 0 else visit + dt.timedelta(days=(i + 3 * j) % 9)
            cost = 0.0 if (i, j) in ((9, 0), (60, 1), (121, 0)) else 100.0 + (i * 131 + j * 71) % 4900
            dx = first_dx if j == 0 else ("R51", "I10", "E11", "J45")[(i + j) % 4]
            add(i, f"P{i:03d}", visit, discharge, DEPARTMENTS[(i + j) % 5], cost + 0.5 * (j % 2), dx)
        if i in EVENT:
            add(i, f"P{i:03d}", EVENT_DATE, EVENT_DATE, "EVENT", 50.0, "Z00")
    for visit, stay, department, cost, dx in (
        (dt.date(2020, 2, 10), 2, "CARD", 1200.0, secrets.dx),
        (dt.date(2020, 9, 3), 5, "ONC", 5400.0, "R51"),
        (dt.date(2021, 6, 21), 0, "ER", 800.0, "I10"),
    ):
        add(None, TARGET, visit, visit + dt.timedelta(days=stay), department, cost, dx)
    schema = pa.schema(
        [
            ("pid", pa.string()),
            ("visit_date", pa.date32()),
            ("discharge_date", pa.date32()),
            ("department", pa.string()),
            ("cost", pa.float64()),
            ("dx", pa.string()),
        ]
    )
    return pa.table(rows, schema=schema)


def labs_table(offset: int | None) -> pa.Table:
    rows: dict[str, list] = {k: [] for k in ("pid", "test_date", "test_code", "value")}
    start = dt.date(2019, 2, 1)
    people = [(i, f"P{i:03d}") for i in range(OTHERS)] + [(None, TARGET)]
    for index, pid in people:
        n = 2 if index is None else index % 3 + 1
        seed = 777 if index is None else index
        for k in range(n):
            rows["pid"].append(pid)
            day = start + dt.timedelta(days=(seed * 29 + k * 61) % 900)
            rows["test_date"].append(day + _shift(index, offset))
            rows["test_code"].append(("HBA1C", "LDL", "CRP")[(seed + k) % 3])
            rows["value"].append(4.0 + ((seed * 17 + k * 5) % 60) / 10)
    schema = pa.schema(
        [
            ("pid", pa.string()),
            ("test_date", pa.date32()),
            ("test_code", pa.string()),
            ("value", pa.float64()),
        ]
    )
    return pa.table(rows, schema=schema)


def make_policy() -> GuardPolicy:
    return GuardPolicy(
        views={
            # one row per person, as preparation would measure
            "patients": person_view(
                "patients", {**PATIENT_ROLES, "hiv": R.SENSITIVE}, unique_person_key=True
            ),
            "visits": person_view("visits", STAY_ROLES),
            "labs": person_view(
                "labs",
                {"pid": R.PERSON_KEY, "test_date": R.DATE, "test_code": R.ATTRIBUTE, "value": R.MEASURE},
            ),
        }
    )


@dataclass
class World:
    name: str
    root: Path
    secrets: Secrets
    policy: GuardPolicy
    locked: duckdb.DuckDBPyConnection
    _plain: duckdb.DuckDBPyConnection | None = field(default=None, repr=False)

    @property
    def plain(self) -> duckdb.DuckDBPyConnection:
        """An unguarded connection with views over the same Parquet files (for the sanity test)."""
        if self._plain is None:
            self._plain = duckdb.connect()
            for name in VIEWS:
                self._plain.execute(
                    f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{self.root / (name + '.parquet')}')"
                )
        return self._plain

    def close(self) -> None:
        self.locked.close()
        if self._plain is not None:
            self._plain.close()


def build_world(root: Path, name: str) -> World:
    secrets = SECRETS[name]
    offset = secrets.offset if name.startswith("S") else None
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(patients_table(secrets), root / "patients.parquet")
    pq.write_table(visits_table(secrets, offset), root / "visits.parquet")
    pq.write_table(labs_table(offset), root / "labs.parquet")
    (root / "views.duckdb").unlink(missing_ok=True)
    con = duckdb.connect(str(root / "views.duckdb"))
    for view in VIEWS:
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet('{root / (view + '.parquet')}')")
    con.close()
    locked = open_locked(root / "views.duckdb", QueryLimits(memory="512MB", threads=2))
    return World(name=name, root=root, secrets=secrets, policy=make_policy(), locked=locked)


@pytest.fixture(scope="session")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, World]]:
    base = tmp_path_factory.mktemp("redteam-worlds")
    built = {name: build_world(base / name, name) for name in SECRETS}
    yield built
    for world in built.values():
        world.close()
