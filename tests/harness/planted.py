"""Planted source data for the de-identification and preparation tests: small deterministic tables
with the rare values, outliers and near-unique groups the rules must catch, and their specs. The
root conftest's ``source_files`` fixtures write them."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from enclave.specs import DatasetSpec, ProjectSpec, parse_dataset_spec, parse_project_spec
from tests.harness.factories import dataset_spec

GROUP_AGES = [31, 38, 47, 52, 66, 93]
GROUP_POSTCODES = ["100080", "100081", "200001", "200002", "300100", "300200"]
PERSONS = 60
RARE_DX = "C53"  # two persons only: must never reach the twin (GB/T 39725 §10.2 e example)
OUTLIER_COST = 999_999.5

PATIENTS_SPEC: dict[str, Any] = dataset_spec(
    "patients",
    "patients.parquet",
    {
        "pid": {"role": "person_key"},
        "name": {"role": "direct_id"},
        "id_number": {"role": "direct_id"},
        "phone": {"role": "direct_id"},
        "postcode": {"role": "quasi_id", "generalize": "postcode_prefix_3"},
        "birth_date": {"role": "quasi_id", "generalize": "year"},
        "age": {"role": "quasi_id", "generalize": "age_band_5"},
        "sex": {"role": "quasi_id"},
    },
    title="Patients",
    level=4,
)
VISITS_SPEC: dict[str, Any] = dataset_spec(
    "visits",
    "visits.parquet",
    {
        "visit_id": {"role": "attribute"},
        "pid": {"role": "person_key"},
        "visit_date": {"role": "date"},
        "discharge_date": {"role": "date"},
        "visit_month": {"role": "date", "generalize": "year_month"},
        "department": {"role": "attribute"},
        "dx": {"role": "sensitive"},
        "cost": {"role": "measure"},
        "visit_type": {"role": "attribute"},
        "notes": {"role": "text"},
    },
    title="Visits",
    level=4,
    category="medical_care",
)
PATIENT_COLUMNS = ["pid", "name", "postcode", "age", "sex"]
VISIT_COLUMNS = [
    "pid",
    "visit_id",
    "visit_date",
    "discharge_date",
    "visit_month",
    "department",
    "dx",
    "cost",
    "visit_type",
    "notes",
]


def patient_name(pid: int) -> str:
    return f"Zhang Sanfeng{pid:03d}"


def patients_frame(*, rare: bool = False) -> pd.DataFrame:
    rows = []
    for pid in range(1, PERSONS + 1):
        group = pid % 6
        age = GROUP_AGES[group] + (pid % 2 if group != 5 else pid % 3)
        rows.append(
            {
                "pid": pid,
                "name": patient_name(pid),
                "id_number": f"11010819{pid:010d}",
                "phone": f"1390000{pid:04d}",
                "postcode": GROUP_POSTCODES[group],
                "birth_date": date(2026 - age, 1 + pid % 12, 1 + pid % 28),
                "age": age,
                "sex": "F" if group % 2 else "M",
            }
        )
    if rare:  # one 38-year-old woman in a postcode area nobody else lives in
        rows.append(
            {
                "pid": 61,
                "name": patient_name(61),
                "id_number": "110108190000000061",
                "phone": "13900000061",
                "postcode": "999999",
                "birth_date": date(1988, 3, 3),
                "age": 38,
                "sex": "F",
            }
        )
    return pd.DataFrame(rows)


def visits_frame() -> pd.DataFrame:
    rows = []
    for pid in range(1, PERSONS + 1):
        for j in range(3):
            start = date(2018, 1, 1) + timedelta(days=(pid * 7 + j * 40) % 300)
            stay = 90 if (pid, j) == (1, 0) else 1 + (pid + j) % 9
            if (pid, j) == (1, 0):
                start = date(2018, 1, 1)  # the golden example: 2018-01-01 .. 2018-04-01
            dx = RARE_DX if pid in (7, 8) and j == 0 else ["I10", "E11", "J45"][(pid + j) % 3]
            rows.append(
                {
                    "visit_id": pid * 10 + j,
                    "pid": pid,
                    "visit_date": start,
                    "discharge_date": start + timedelta(days=stay),
                    "visit_month": start,
                    "department": "cardio" if (pid + j) % 2 else "endo",
                    "dx": dx,
                    "cost": OUTLIER_COST if (pid, j) == (5, 1) else 100.0 + (pid * 13 + j * 7) % 500,
                    "visit_type": 1 + (pid + j) % 3,
                    "notes": f"{patient_name(pid)} came with chest pain",
                }
            )
    return pd.DataFrame(rows)


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def sources(folder: Path, *, rare: bool = False, fmt: str = "parquet") -> dict[str, tuple[DatasetSpec, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    patients = write_frame(patients_frame(rare=rare), folder / f"patients.{fmt}")
    visits = write_frame(visits_frame(), folder / f"visits.{fmt}")
    return {
        "patients": (parse_dataset_spec(PATIENTS_SPEC), patients),
        "visits": (parse_dataset_spec(VISITS_SPEC), visits),
    }


def query(db: Path, sql: str) -> list[tuple]:
    """The rows of ``sql`` over the DuckDB file ``db`` (prepared views or twin), opened read-only."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def project_spec(project_id: str = "cardio-2026", **overrides: Any) -> ProjectSpec:
    data: dict[str, Any] = {
        "id": project_id,
        "title": "Cardiovascular outcomes",
        "purpose": "testing",
        "pi": "alice",
        "analysts": ["alice", "bob"],
        "committee": ["carol", "dave", "erin"],
        "datasets": {"patients": PATIENT_COLUMNS, "visits": VISIT_COLUMNS},
        "access": "aggregate",
        "period": {"start": "2026-11-01", "end": "2027-10-31"},
    }
    data.update(overrides)
    return parse_project_spec(data)
