"""Fixture data for the guard: small deterministic Parquet files with known small groups, a
``views.duckdb`` of views over them (as preparation builds it), and the matching policy.

Known facts the tests rely on:
* 200 patients P000..P199; zip '999' holds one person (P199), zip '998' three (P196-P198).
* P150 is the only patient with dx 'Z99'.
* P042 has six visits with dx 'R99' and nobody else has that dx: six rows, one person.
* P160 (zip '300') earns 1,000,000; everyone else 1,000-1,499: zip '300' income is dominated.
* Visits have a ``department`` (five departments, each with well over k persons) and a
  ``discharge_date``: NULL for about a third of the visits, otherwise 0-20 days after the visit.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enclave.guard import GuardPolicy, QueryLimits, open_locked
from tests.guard.helpers import PATIENT_ROLES, STAY_ROLES, person_view


def _zip(i: int) -> str:
    if i < 80:
        return "100"
    if i < 150:
        return "200"
    if i < 196:
        return "300"
    return "998" if i < 199 else "999"


def patients_table() -> pa.Table:
    ids = range(200)
    return pa.table(
        {
            "pid": [f"P{i:03d}" for i in ids],
            "sex": ["F" if i % 2 == 0 else "M" for i in ids],
            "age": [20 + (i * 7) % 60 for i in ids],
            "zip": [_zip(i) for i in ids],
            "dx": ["Z99" if i == 150 else ["I10", "E11", "J45", "C50"][i % 4] for i in ids],
            "income": [1_000_000.0 if i == 160 else 1000.0 + (i * 37) % 500 for i in ids],
        }
    )


DEPARTMENTS = ["cardiology", "endocrinology", "general", "oncology", "respiratory"]


def visits_table() -> pa.Table:
    rows = {"pid": [], "visit_date": [], "cost": [], "dx": [], "discharge_date": [], "department": []}
    start = dt.date(2020, 1, 1)
    for i in range(200):
        count = 6 if i == 42 else (5 if i == 199 else i % 3 + 1)
        for j in range(count):
            visit_date = start + dt.timedelta(days=(i * 11 + j * 30) % 1000)
            rows["pid"].append(f"P{i:03d}")
            rows["visit_date"].append(visit_date)
            rows["cost"].append(float(10 * (j + 1) + i % 7))
            rows["dx"].append("R99" if i == 42 else ["I10", "E11", "J45"][(i + j) % 3])
            stay = None if (i * 7 + j) % 3 == 0 else dt.timedelta(days=(i * 3 + j * 5) % 21)
            rows["discharge_date"].append(None if stay is None else visit_date + stay)
            rows["department"].append(DEPARTMENTS[(i + 2 * j) % 5])
    return pa.table(rows)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("guard-data")
    pq.write_table(patients_table(), root / "patients.parquet")
    pq.write_table(visits_table(), root / "visits.parquet")
    con = duckdb.connect(str(root / "views.duckdb"))
    for name in ("patients", "visits"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{root / (name + '.parquet')}')")
    con.close()
    return root


@pytest.fixture(scope="session")
def policy() -> GuardPolicy:
    return fixture_policy()


def fixture_policy() -> GuardPolicy:
    """The policy of the fixture views (also what ``bench/guard.py`` times ``check`` with)."""
    return GuardPolicy(
        views={
            "patients": person_view("patients", PATIENT_ROLES),
            "visits": person_view("visits", STAY_ROLES),
        }
    )


@pytest.fixture(scope="session")
def locked(data_dir: Path) -> duckdb.DuckDBPyConnection:
    con = open_locked(data_dir / "views.duckdb", QueryLimits(memory="512MB", threads=2))
    yield con
    con.close()


@pytest.fixture(scope="session")
def plain(data_dir: Path) -> duckdb.DuckDBPyConnection:
    """An unguarded in-memory connection over the same Parquet files, to compare numbers with."""
    con = duckdb.connect()
    for name in ("patients", "visits"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{data_dir / (name + '.parquet')}')")
    yield con
    con.close()
