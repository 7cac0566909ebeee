"""What the Docker benchmarks (bench/runs.py, bench/spawn.py) share: the enclave they time against
and how they summarise the timings."""

from __future__ import annotations

import os
import statistics
from datetime import date, timedelta
from pathlib import Path

from enclave import catalog, db, projects
from enclave.config import Paths
from enclave.specs import parse_project_spec
from tests.harness import factories

TABLES = {
    "patients": (factories.patients_table, factories.PATIENT_COLUMNS),
    "visits": (factories.visits_table, factories.VISIT_COLUMNS),
}


def make_home(
    root: Path, project: str, user: str, datasets: tuple[str, ...] = ("patients", "visits")
) -> Paths:
    """An enclave in ``root / "home"`` (SQLite state) with ``datasets`` registered (60 patients) and one
    provisioned project over them, current for a month, whose PI and only analyst is ``user``."""
    paths = Paths(root / "home")
    paths.home.mkdir(parents=True)
    url = f"sqlite:///{paths.state_db}"
    db.migrate(url)
    sessions = db.connect(url)
    with db.session_scope(sessions) as session:
        for name in datasets:
            table, columns = TABLES[name]
            source = factories.write_dataset(root / "src", name, table(60), columns)
            catalog.register(session, paths, source, actor="steward")
    period = {
        "start": (date.today() - timedelta(days=1)).isoformat(),
        "end": (date.today() + timedelta(days=30)).isoformat(),
    }
    spec = factories.project_spec(id=project, pi=user, analysts=[user], period=period)
    spec["datasets"] = {name: spec["datasets"][name] for name in datasets}
    with db.session_scope(sessions) as session:
        projects.create_project(
            session, paths, parse_project_spec(spec), actor="steward", without_application="benchmark"
        )
    return paths


def summary(times: list[float]) -> tuple[float, float]:
    """The median and the p95."""
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def print_load() -> None:
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
