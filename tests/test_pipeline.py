"""The whole steward and analyst story through the CLI, on generated demo data with real preparation:
register, provision, query through the guard, look a subject up, expire, destroy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from enclave.cli import app
from enclave.config import Paths
from enclave.demo_data import generate
from enclave.prepare.destroy import verify_certificate
from tests.harness.factories import NO_APPLICATION_ARGS

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent


def run(home: Path, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, ["--home", str(home), *args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def query(home: Path, sql: str, *, user: str = "bob", code: int = 0) -> Any:
    """``enclave query`` on the demo project as ``user``."""
    return run(home, "query", "--project", "demo-cardio", "--user", user, sql, code=code)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pipeline")
    home, data = root / "home", root / "data"
    generate(data, 800, 11)
    run(home, "init")
    for name in ("patients", "visits", "labs", "prescriptions"):
        run(home, "dataset", "register", str(data / f"{name}.yaml"))
    created = run(
        home, "project", "create", str(REPO / "examples" / "demo-project.yaml"), *NO_APPLICATION_ARGS
    )
    assert created["state"] == "active"
    return home, data


def test_prepared_views_answer_aggregates_and_hide_small_groups(demo: tuple[Path, Path]) -> None:
    home, _ = demo
    out = query(home, "SELECT sex, count(*) AS n FROM patients GROUP BY sex")
    assert sorted(r[0] for r in out["rows"]) == ["F", "M"] and sum(r[1] for r in out["rows"]) == 800
    ages = query(home, "SELECT age, count(DISTINCT pid) FROM patients GROUP BY age")
    assert all("-" in a or a.startswith(("<", ">")) for a, _ in ages["rows"]), "ages are banded"
    assert all(n >= 5 for _, n in ages["rows"])
    dx = query(home, "SELECT dx, count(DISTINCT pid) FROM visits GROUP BY dx")
    assert dx["suppressed_groups"] > 0, "the demo data has rare diagnoses"


def test_row_dumps_and_outsiders_are_refused_and_audited(demo: tuple[Path, Path]) -> None:
    home, _ = demo
    refused = query(home, "SELECT * FROM patients", code=3)
    assert refused["error"]["code"] == "query_rejected"
    outsider = query(home, "SELECT count(*) FROM patients", user="carol", code=4)
    assert outsider["error"]["code"] == "not_a_project_analyst"
    events = run(home, "audit", "tail", "--project", "demo-cardio", "-n", "5")
    assert [e["action"] for e in events][-2:] == ["query.refuse", "query.refuse"]
    assert events[-2]["details"]["sql"] == "SELECT * FROM patients"


def test_subject_look_back_then_expiry_and_destruction(demo: tuple[Path, Path]) -> None:
    home, data = demo
    pid = pq.read_table(data / "patients.parquet", columns=["pid"]).column(0)[0].as_py()
    history = run(home, "audit", "subject", pid)
    assert {e["project"] for e in history["projects"]} == {"demo-cardio"}
    assert {e["dataset"] for e in history["projects"]} >= {"patients", "visits"}
    assert run(home, "audit", "subject", "no-such-person")["projects"] == []
    looked_up = run(home, "audit", "tail", "--action", "subject.lookup")
    assert pid not in json.dumps(looked_up), "the audit log keeps only a keyed hash of the subject"

    assert run(home, "project", "expire", "demo-cardio")["state"] == "expired"
    assert query(home, "SELECT count(*) FROM patients", code=4)["error"]["code"] == "project_not_active"
    destroyed = run(home, "project", "destroy", "demo-cardio")
    certificate = Path(destroyed["certificate"]["path"])
    paths = Paths(home)
    assert not paths.project_dir("demo-cardio").exists()
    assert not (paths.secrets / "demo-cardio").exists()
    assert verify_certificate(certificate)
    destroyed_names = {item["name"] for item in destroyed["certificate"]["items"]}
    assert any(name.endswith("views.duckdb") for name in destroyed_names)
    assert run(home, "audit", "verify")["ok"] is True
    # the ledger outlives the project (R-AUD-9)
    assert {e["project"] for e in run(home, "audit", "subject", pid)["projects"]} == {"demo-cardio"}
