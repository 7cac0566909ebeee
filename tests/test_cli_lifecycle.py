"""``enclave project`` and the lifecycle by date: refusing an ended spec, the sweep loop the hub runs
as a service, and the 5-yearly review in ``show``/``list`` (R-LIFE-4, R-LIFE-8, R-LIFE-9)."""

from __future__ import annotations

import runpy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from enclave import lifecycle
from enclave.cli import app
from tests.conftest import write_yaml
from tests.harness.cli import runner
from tests.harness.factories import NO_APPLICATION_ARGS, project_spec
from tests.test_cli import assert_error_shape, register_all, run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ENCLAVE_DATABASE_URL", raising=False)
    home = tmp_path / "home"
    run(home, "init", "--actor", "steward")
    register_all(home, tmp_path)
    return home


def test_create_refuses_a_spec_whose_period_has_ended(home: Path, tmp_path: Path) -> None:
    today = lifecycle.enclave_today()
    ended = {
        "start": (today - timedelta(days=600)).isoformat(),
        "end": (today - timedelta(days=240)).isoformat(),
    }
    spec = write_yaml(tmp_path / "old.yaml", project_spec(period=ended))
    out = run(home, "project", "create", str(spec), *NO_APPLICATION_ARGS, "--no-prepare", "--json", code=4)
    assert_error_shape(out, "project_ended")
    assert run(home, "project", "list", "--json") == []
    refusals = run(home, "audit", "tail", "--json")
    assert any(e["action"] == "project.create_refused" for e in refusals)


def test_a_future_period_is_created(home: Path, tmp_path: Path) -> None:
    today = lifecycle.enclave_today()
    later = {
        "start": (today + timedelta(days=10)).isoformat(),
        "end": (today + timedelta(days=400)).isoformat(),
    }
    spec = write_yaml(tmp_path / "later.yaml", project_spec(period=later))
    assert (
        run(home, "project", "create", str(spec), *NO_APPLICATION_ARGS, "--no-prepare", "--json")["state"]
        == "approved"
    )


def test_the_sweep_records_accounts_that_ended(home: Path, tmp_path: Path) -> None:
    """Accounts end by themselves with their projects (R-APP-17): the sweep audits each one once."""
    period = {"start": "2026-11-01", "end": "2027-10-31"}
    spec = write_yaml(tmp_path / "p.yaml", project_spec(period=period))
    run(home, "project", "create", str(spec), *NO_APPLICATION_ARGS, "--no-prepare")
    added = runner.invoke(
        app,
        ["--home", str(home), "user", "add", "alice", "--no-forced-change"],
        input="Correct-horse-battery-7\n",
        env={"ENCLAVE_DATABASE_URL": ""},
    )
    assert added.exit_code == 0, added.output
    assert run(home, "project", "sweep", "--today", "2027-10-31", "--json")["accounts_ended"] == []
    assert run(home, "project", "sweep", "--today", "2027-11-01", "--json")["accounts_ended"] == ["alice"]
    assert run(home, "project", "sweep", "--today", "2027-11-02", "--json")["accounts_ended"] == []
    ended = [e for e in run(home, "audit", "tail", "-n", "50", "--json") if e["action"] == "account.expire"]
    assert [(e["actor"], e["object"]) for e in ended] == [("sweep", "user:alice")]


def test_sweep_destroys_on_day_30_and_shows_the_review(home: Path, tmp_path: Path) -> None:
    period = {"start": "2026-11-01", "end": "2027-10-31"}  # the factory's, current when this was written
    spec = write_yaml(tmp_path / "p.yaml", project_spec(period=period))
    run(home, "project", "create", str(spec), *NO_APPLICATION_ARGS, "--no-prepare")
    out = run(home, "project", "sweep", "--today", "2027-11-29", "--json")
    assert (out["expired"], out["destroyed"], out["failed"]) == (["cardio-2026"], [], [])
    out = run(home, "project", "sweep", "--today", "2027-11-30", "--json")  # end + 30
    assert out["destroyed"] == ["cardio-2026"]
    out = run(home, "project", "sweep", "--today", "2032-10-31", "--json")
    assert out["reviews"] == [{"project": "cardio-2026", "due": "2032-10-31"}]
    assert run(home, "project", "sweep", "--today", "2032-11-01", "--json")["reviews"] == []
    (row,) = run(home, "project", "list", "--json")
    assert [r["due"] for r in row["retention_review"]["reminders"]] == ["2032-10-31"]
    shown = run(home, "project", "show", "cardio-2026")
    assert "DUE since 2032-10-31" in shown
    run(home, "project", "sweep", "--grace-days", "0", code=2)  # day 0 is the last day of use


def load_hub_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> Any:
    for name in ("ENCLAVE_HUB_EXTERNAL_SERVICES", "ENCLAVE_MONITORING_TOKEN_FILE", "ENCLAVE_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENCLAVE_HOME", str(tmp_path / "home"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = Config()
    runpy.run_path(str(REPO / "hub_config" / "jupyterhub_config.py"), {"get_config": lambda: config})
    return config


def test_the_hub_runs_the_sweep_as_a_managed_service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = load_hub_config(monkeypatch, tmp_path, ENCLAVE_SWEEP_INTERVAL="600", ENCLAVE_TIMEZONE="UTC")
    services = {s["name"]: s for s in config.JupyterHub.services}
    sweep = services["lifecycle-sweep"]
    assert sweep["command"][1:] == ["project", "sweep", "--every", "600"]
    assert sweep["command"][0].endswith("/enclave")
    urls = sweep["environment"]["ENCLAVE_SERVICE_URLS"].split(",")
    assert [u.rsplit("/services/", 1)[1] for u in urls] == ["gateway/", "export-review/", "runs/"]
    assert sweep["environment"]["ENCLAVE_HOME"] == str(tmp_path / "home")
    assert all(s["environment"]["ENCLAVE_TIMEZONE"] == "UTC" for s in services.values() if "command" in s)
    (role,) = [r for r in config.JupyterHub.load_roles if "lifecycle-sweep" in r.get("services", [])]
    assert sorted(role["scopes"]) == ["delete:servers", "list:users", "read:servers"]

    none = load_hub_config(monkeypatch, tmp_path, ENCLAVE_HUB_SERVICES="none")
    assert [s["name"] for s in none.JupyterHub.services] == []
    only = load_hub_config(monkeypatch, tmp_path, ENCLAVE_HUB_SERVICES="sweep")
    (alone,) = only.JupyterHub.services
    assert alone["name"] == "lifecycle-sweep" and alone["environment"]["ENCLAVE_SERVICE_URLS"] == ""
