"""Small datasets and specs for tests, built through the real catalog and project code."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from sqlalchemy.orm import Session, sessionmaker

from enclave import catalog, db
from enclave.config import Paths
from enclave.db import session_scope

# Test set-ups create projects from hand-written specs, without a governance application: the audited
# override (``create_project(without_application=...)``, ``project create --without-application``).
NO_APPLICATION = "test fixture"
NO_APPLICATION_ARGS = ("--without-application", NO_APPLICATION)

PATIENT_COLUMNS: dict[str, dict[str, str]] = {
    "pid": {"role": "person_key"},
    "name": {"role": "direct_id"},
    "zip": {"role": "quasi_id", "generalize": "postcode_prefix_3"},
    "age": {"role": "quasi_id", "generalize": "age_band_5"},
    "sex": {"role": "quasi_id"},
    "dx": {"role": "sensitive"},
    "income": {"role": "measure"},
}
VISIT_COLUMNS: dict[str, dict[str, str]] = {
    "pid": {"role": "person_key"},
    "visit_date": {"role": "date"},
    "cost": {"role": "measure"},
    "dx": {"role": "sensitive"},
    "notes": {"role": "text"},
}


def patients_table(n: int = 50) -> pa.Table:
    return pa.table(
        {
            "pid": [f"P{i:05d}" for i in range(n)],
            "name": [f"姓名{i}" for i in range(n)],
            "zip": [f"{100000 + (i % 7) * 80}" for i in range(n)],
            "age": [20 + (i * 7) % 70 for i in range(n)],
            "sex": ["M" if i % 2 else "F" for i in range(n)],
            "dx": [["I10", "E11", "J18"][i % 3] for i in range(n)],
            "income": [1000.0 + i * 10 for i in range(n)],
        }
    )


def visits_table(n_patients: int = 50, per_patient: int = 3) -> pa.Table:
    rows = [(p, v) for p in range(n_patients) for v in range(per_patient)]
    return pa.table(
        {
            "pid": [f"P{p:05d}" for p, _ in rows],
            "visit_date": [date(2020, 1, 1) + timedelta(days=p + 30 * v) for p, v in rows],
            "cost": [100.0 + p + v for p, v in rows],
            "dx": [["I10", "E11"][(p + v) % 2] for p, v in rows],
            "notes": ["自由文本" for _ in rows],
        }
    )


def dataset_spec(name: str, source: str, columns: dict[str, dict[str, str]], **fields: Any) -> dict[str, Any]:
    spec = {
        "name": name,
        "title": f"{name} register",
        "steward": "data-office",
        "level": 3,
        "category": "personal_attributes",
        "share_type": "conditional",
        "source": source,
        "person_key": "pid",
        "columns": copy.deepcopy(columns),
    }
    spec.update(fields)
    return spec


def write_dataset(
    directory: Path,
    name: str,
    table: pa.Table,
    columns: dict[str, dict[str, str]],
    fmt: str = "parquet",
    **fields: Any,
) -> Path:
    """Write a source file and its spec; return the spec's path."""
    directory.mkdir(parents=True, exist_ok=True)
    source = directory / f"{name}.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, source)
    else:
        table.to_pandas().to_csv(source, index=False)
    spec_path = directory / f"{name}.yaml"
    spec_path.write_text(
        yaml.safe_dump({**dataset_spec(name, source.name, columns), **fields}, allow_unicode=True),
        encoding="utf-8",
    )
    return spec_path


def project_spec(**fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": "cardio-2026",
        "title": "Cardiovascular outcomes",
        "purpose": "Study outcomes after hypertension diagnosis",
        "pi": "alice",
        "analysts": ["alice", "bob"],
        "committee": ["carol", "dave", "erin"],
        "datasets": {
            "patients": ["pid", "zip", "age", "sex", "dx", "income"],
            "visits": ["pid", "visit_date", "cost"],
        },
        "access": "aggregate",
        "min_cell_count": 5,
        "period": {"start": "2026-11-01", "end": "2027-10-31"},
        "cross_border": False,
    }
    spec.update(fields)
    return spec


APPLICATION_FORM: dict[str, Any] = {
    "title": "Hypertension outcomes",
    "purpose": "Describe costs after a hypertension diagnosis",
    "purpose_category": "research",
    "track": "in_house",
    "organisation": "City Hospital",
    "datasets": {
        "patients": {"columns": ["pid", "age", "sex", "dx"]},
        "visits": {
            "columns": ["pid", "visit_date", "cost"],
            "time_range": {"start": "2020-01-01", "end": "2021-12-31"},
        },
    },
    "team": [{"user": "alice", "role": "pi"}, {"user": "bob", "role": "analyst"}],
    "period": {"start": "2026-01-01", "end": "2027-12-31"},
    "access": "aggregate",
    "min_cell_count": 5,
    "legal_basis": "public_interest",
    "ethics_ref": "EC-2026-001",
    "cross_border": False,
}


def application_form(**fields: Any) -> dict[str, Any]:
    """The shared test application form (a fresh copy) with ``fields`` replaced."""
    data = copy.deepcopy(APPLICATION_FORM)
    data.update(fields)
    return data


@dataclass
class StateHome:
    """An enclave home and its state database's sessions; ``session()`` is one committed transaction."""

    sessions: sessionmaker[Session]
    paths: Paths

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.sessions) as s:
            yield s


def migrated_home(root: Path) -> tuple[Paths, str]:
    """An enclave home at ``root/home`` with a migrated SQLite state database; returns it and the URL."""
    paths = Paths(root / "home")
    paths.home.mkdir()
    url = f"sqlite:///{paths.state_db}"
    db.migrate(url)
    return paths, url


def register_patients_and_visits(
    session: Session, paths: Paths, directory: Path, *, n_patients: int = 50, actor: str = "steward"
) -> None:
    """Write the patients and visits datasets (``n_patients`` persons) to ``directory`` and register them."""
    for name, table, columns in (
        ("patients", patients_table(n_patients), PATIENT_COLUMNS),
        ("visits", visits_table(n_patients), VISIT_COLUMNS),
    ):
        catalog.register(session, paths, write_dataset(directory, name, table, columns), actor=actor)
