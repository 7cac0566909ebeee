"""``enclave run`` as scripts use it (issue 12): submit with papermill's parameter typing, list, show,
logs, cancel, outputs, templates and the worker's composition; the ``error`` shape and exit codes of
every refusal (ARCHITECTURE §9), on SQLite and PostgreSQL. One test executes a run with real Docker
(``submit --wait``); it skips without root and Docker."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from enclave import audit
from enclave.cli import app
from enclave.cli.run import resolve_value
from enclave.config import Paths
from enclave.db.models import RunOutput
from enclave.roles import Role, grant
from enclave.runs import compose, service
from enclave.runs.notebooks import MAX_NOTEBOOK_BYTES
from enclave.runs.states import RunActor, RunState, move
from tests.export_review.factories import ExportEnv, make_project
from tests.harness.docker_objects import docker_usable, remove_named
from tests.runs.factories import TABLE_NOTEBOOK, fake_prepared, notebook_bytes

PROJECT = "cardio-2026"
TEMPLATE = notebook_bytes("print(region, year)", parameters="region = 'west'\nyear = 2025")


@pytest.fixture
def env(sessions: sessionmaker[Session], paths: Paths, tmp_path: Path) -> ExportEnv:
    """PI alice, analysts alice, bob and mallory, reviewers rev1..rev3, steward stella."""
    (tmp_path / "work").mkdir()
    environment = ExportEnv(sessions, paths, tmp_path / "work")
    make_project(environment, extra_members=[("mallory", "analyst")])
    fake_prepared(paths, PROJECT)
    with environment.session() as session:
        grant(session, "stella", Role.STEWARD, actor="test")
    return environment


@pytest.fixture
def cli(env: ExportEnv, database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, ["--home", str(env.paths.home), "run", *args])
        assert result.exit_code == code, result.output
        return json.loads(result.stdout) if "--json" in args else result

    return run


def write(env: ExportEnv, name: str, data: bytes) -> str:
    path = env.work / name
    path.write_bytes(data)
    return str(path)


def submitted(cli, env: ExportEnv, user: str = "bob", *extra: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    notebook = write(env, "table.ipynb", TABLE_NOTEBOOK)
    return cli("submit", notebook, "--project", PROJECT, "--user", user, "-p", "scale", "2", *extra, "--json")


def error_code(payload: dict[str, Any]) -> str:
    error = payload["error"]
    assert error["message"] and error["message_zh"], error
    return str(error["code"])


def finish(env: ExportEnv, run_id: str, outputs: dict[str, bytes], log: bytes = b"") -> None:
    """Take a queued run to ``succeeded`` with stored outputs and log, as the worker records them."""
    with env.session() as session:
        run = service.get_run(session, run_id)
        move(session, run, RunState.RUNNING, RunActor.WORKER, by="worker")
        for name, data in outputs.items():
            sha = service.store_bytes(env.paths, data, name.rsplit("/", 1)[-1])
            session.add(RunOutput(run_id=run_id, name=name, sha256=sha, size=len(data)))
        run.log_sha256 = service.store_bytes(env.paths, log, "log.txt") if log else None
        move(session, run, RunState.SUCCEEDED, RunActor.WORKER, by="worker")


# ---- papermill's -p typing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-7", -7),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("True", True),
        ("false", False),
        ("None", None),
        ("null", None),
        ("west", "west"),
        ("nan", "nan"),  # not a number a notebook can be given: kept as text
        ("", ""),
    ],
)
def test_parameter_values_are_typed_as_papermill_types_them(text: str, value: Any) -> None:
    assert resolve_value(text) == value and type(resolve_value(text)) is type(value)


def test_submit_queues_with_typed_parameters_and_the_provenance(cli, env: ExportEnv) -> None:  # type: ignore[no-untyped-def]
    notebook = write(env, "table.ipynb", TABLE_NOTEBOOK)
    params = write(env, "params.yaml", b"scale: 1\nsince: 2026-01-01\nregions: [west, east]\n")
    info = cli(
        "submit", notebook, "--project", PROJECT, "--user", "bob",
        "-f", params, "-y", "scale: 5\nnote: from yaml",
        "-p", "scale", "2", "-p", "ratio", "0.5", "-p", "flag", "true", "-p", "missing", "null",
        "-r", "code", "007", "--timeout", "600", "--json",
    )  # fmt: skip
    assert info["state"] == "queued" and info["user"] == "bob" and info["project"] == PROJECT
    assert info["parameters"] == {
        "scale": 2,  # -p over -y over -f, as papermill merges them
        "ratio": 0.5,
        "flag": True,
        "missing": None,
        "code": "007",  # -r keeps text
        "note": "from yaml",
        "since": "2026-01-01",  # YAML dates as ISO text
        "regions": ["west", "east"],
    }
    assert info["notebook"]["name"] == "table.ipynb" and info["timeout_s"] == 600
    assert info["data_version"] == 1 and info["progress"] == {"cells_done": 0, "cells_total": 2}
    with env.session() as session:
        run = service.get_run(session, info["id"])
        assert service.read_stored(env.paths, run.notebook_sha256) == TABLE_NOTEBOOK
        actions = [e.action for e in audit.tail(session, limit=20) if e.object == f"run:{info['id']}"]
    assert actions == ["run.submit"]
    plain = cli("submit", notebook, "--project", PROJECT, "--user", "bob")
    assert plain.stdout.startswith("run run-") and plain.stdout.strip().endswith(": queued")


def test_list_show_and_cancel(cli, env: ExportEnv) -> None:  # type: ignore[no-untyped-def]
    first = submitted(cli, env)["id"]
    second = submitted(cli, env)["id"]
    listed = cli("list", "--user", "bob", "--project", PROJECT, "--json")
    assert sorted(r["id"] for r in listed) == sorted([first, second])
    shown = cli("show", first, "--user", "bob", "--json")
    assert shown["id"] == first and shown["parameters"] == {"scale": 2} and shown["queries"] == []
    assert "queued" in cli("show", first, "--user", "bob").stdout
    cancelled = cli("cancel", first, "--user", "bob", "--json")
    assert cancelled["state"] == "cancelled"
    assert [r["id"] for r in cli("list", "--user", "bob", "--state", "cancelled", "--json")] == [first]
    assert [r["id"] for r in cli("list", "--user", "bob", "--state", "queued", "--json")] == [second]
    # A finished run cannot be cancelled again: the wrong state is exit 4.
    assert error_code(cli("cancel", first, "--user", "bob", "--json", code=4)) == "run_state_invalid"
    # A running run is asked to stop; the worker moves it.
    with env.session() as session:
        move(session, service.get_run(session, second), RunState.RUNNING, RunActor.WORKER, by="worker")
    asked = cli("cancel", second, "--user", "bob", "--json")
    assert asked["state"] == "running" and asked["cancel_requested"] is True
    assert "cancel requested" in cli("cancel", second, "--user", "bob").stdout


def test_another_users_run_is_not_found_and_the_pi_may_look_but_not_cancel(
    cli, env: ExportEnv, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    run_id = submitted(cli, env)["id"]
    for command in (("show", run_id), ("cancel", run_id), ("outputs", run_id, "--out", str(tmp_path / "o"))):
        refused = cli(*command, "--user", "mallory", "--json", code=2)
        assert error_code(refused) == "run_not_found"
    assert cli("list", "--user", "mallory", "--json") == []
    assert cli("logs", run_id, "--user", "mallory", code=2).exit_code == 2
    assert cli("show", run_id, "--user", "alice", "--json")["id"] == run_id  # the PI sees it
    assert error_code(cli("cancel", run_id, "--user", "alice", "--json", code=4)) == "run_not_own"
    assert cli("show", run_id, "--user", "stella", "--json")["id"] == run_id  # a steward sees it
    assert error_code(cli("show", "run-000000000000", "--user", "bob", "--json", code=2)) == "run_not_found"
    assert error_code(cli("show", "../../etc", "--user", "bob", "--json", code=2)) == "run_not_found"
    with env.session() as session:
        assert service.get_run(session, run_id).state == "queued"


@pytest.mark.parametrize("user", ["rev1", "carol"])
def test_a_non_member_may_not_submit(cli, env: ExportEnv, user: str) -> None:  # type: ignore[no-untyped-def]
    notebook = write(env, "table.ipynb", TABLE_NOTEBOOK)
    refused = cli("submit", notebook, "--project", PROJECT, "--user", user, "--json", code=4)
    assert error_code(refused) == "not_a_project_analyst"
    refused = cli("submit", notebook, "--project", "nope-2026", "--user", "bob", "--json", code=2)
    assert error_code(refused) == "project_not_found"


def test_bad_submissions_exit_2_or_3(cli, env: ExportEnv) -> None:  # type: ignore[no-untyped-def]
    notebook = write(env, "table.ipynb", TABLE_NOTEBOOK)
    base = ("--project", PROJECT, "--user", "bob", "--json")
    assert error_code(cli("submit", *base, code=2)) == "run_notebook_missing"
    both = cli("submit", notebook, "--template", "x", *base, code=2)
    assert error_code(both) == "run_template_with_notebook"
    missing = cli("submit", str(env.work / "nope.ipynb"), *base, code=2)
    assert error_code(missing) == "run_file_unreadable"
    fifo = env.work / "fifo.ipynb"
    os.mkfifo(fifo)  # would block a reader forever: refused without opening it
    assert error_code(cli("submit", str(fifo), *base, code=2)) == "run_file_unreadable"
    huge = write(env, "huge.ipynb", b" " * (MAX_NOTEBOOK_BYTES + 10))
    assert error_code(cli("submit", huge, *base, code=3)) == "run_notebook_too_large"
    assert error_code(cli("submit", write(env, "x.ipynb", b"{oops"), *base, code=2)) == "run_notebook_invalid"
    bad_name = cli("submit", notebook, *base, "-p", "import", "1", code=2)
    assert error_code(bad_name) == "run_parameter_name_invalid"
    assert error_code(cli("submit", notebook, *base, "-y", "[1, 2]", code=2)) == "run_parameters_invalid"
    assert error_code(cli("submit", notebook, *base, "-y", "a: [", code=2)) == "run_parameters_invalid"
    assert error_code(cli("submit", notebook, *base, "--timeout", "0", code=2)) == "run_timeout_invalid"
    assert (
        error_code(cli("list", "--user", "bob", "--state", "bogus", "--json", code=2)) == "run_state_unknown"
    )
    with env.session() as session:
        assert service.list_runs(session, viewer="bob") == []


def test_templates_are_a_stewards_and_take_only_their_parameters(cli, env: ExportEnv) -> None:  # type: ignore[no-untyped-def]
    notebook = write(env, "regional.ipynb", TEMPLATE)
    add = ("template", "add", notebook, "--project", PROJECT, "--name", "regional", "--title", "Regional")
    refused = cli(*add, "--user", "bob", "--json", code=4)
    assert error_code(refused) == "role_required"
    added = cli(*add, "--user", "stella", "--json")
    assert added["parameters"] == {"region": "west", "year": 2025} and added["approved_by"] == "stella"
    assert error_code(cli(*add, "--user", "stella", "--json", code=3)) == "run_template_exists"
    assert [t["name"] for t in cli("template", "list", "--project", PROJECT, "--json")] == ["regional"]

    base = ("submit", "--template", "regional", "--project", PROJECT, "--user", "bob")
    run = cli(*base, "-p", "region", "east", "--json")
    assert run["template"] == "regional" and run["parameters"] == {"region": "east"}
    assert run["notebook"]["sha256"] == added["notebook"]["sha256"]
    undeclared = cli(*base, "-p", "limit", "5", "--json", code=2)
    assert error_code(undeclared) == "run_parameter_not_declared"
    assert undeclared["error"]["details"]["declared"] == ["region", "year"]

    assert error_code(cli("template", "retire", "--project", PROJECT, "--name", "regional", "--user", "bob",
                          "--json", code=4)) == "role_required"  # fmt: skip
    retired = cli(
        "template", "retire", "--project", PROJECT, "--name", "regional", "--user", "stella", "--json"
    )
    assert retired["retired_at"]
    assert cli("template", "list", "--project", PROJECT, "--json") == []
    assert error_code(cli(*base, "--json", code=2)) == "run_template_not_found"


def test_outputs_are_written_once_and_checked_against_their_hash(cli, env: ExportEnv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_id = submitted(cli, env)["id"]
    finish(env, run_id, {"table.csv": b"group,n\na,10\n", "figs/plot.txt": b"plot"}, log=b"Ending Cell 1\n")
    out = tmp_path / "out"
    written = cli("outputs", run_id, "--user", "bob", "--out", str(out), "--json")
    assert {f["name"] for f in written["files"]} == {"table.csv", "figs/plot.txt"}
    with env.session() as session:  # outputs leaving the vault store are audited, with their hashes
        [copied] = [e for e in audit.tail(session, limit=100) if e.action == "run.outputs_copy"]
        assert copied.actor == "bob" and copied.project == PROJECT
        assert {f["name"]: f["sha256"] for f in json.loads(copied.details_json)["files"]} == {
            o.name: o.sha256 for o in service.get_run(session, run_id).outputs
        }
    assert (out / "table.csv").read_bytes() == b"group,n\na,10\n" and (
        out / "figs" / "plot.txt"
    ).read_bytes() == b"plot"
    again = cli("outputs", run_id, "--user", "bob", "--out", str(out), "--json", code=2)
    assert error_code(again) == "run_output_exists"  # nothing is overwritten
    one = cli(
        "outputs",
        run_id,
        "--user",
        "alice",
        "--out",
        str(tmp_path / "one"),
        "--output",
        "table.csv",
        "--json",
    )
    assert [f["name"] for f in one["files"]] == ["table.csv"]
    unknown = cli(
        "outputs", run_id, "--user", "bob", "--out", str(tmp_path / "x"), "--output", "nope", "--json", code=2
    )
    assert error_code(unknown) == "run_output_not_found"
    assert cli("logs", run_id, "--user", "bob").stdout == "Ending Cell 1\n"
    # A stored output changed behind the record's back is refused, not copied.
    with env.session() as session:
        sha = service.get_run(session, run_id).outputs[1].sha256
    stored = service.run_store(env.paths).path_for(sha)
    stored.chmod(0o640)
    stored.write_bytes(b"group,n\na,3\n")
    tampered = cli("outputs", run_id, "--user", "bob", "--out", str(tmp_path / "t"), "--json", code=3)
    assert error_code(tampered) == "run_output_tampered"


def test_an_output_name_that_leaves_the_folder_is_refused(cli, env: ExportEnv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_id = submitted(cli, env)["id"]
    finish(env, run_id, {"../escape.csv": b"x"})
    refused = cli("outputs", run_id, "--user", "bob", "--out", str(tmp_path / "out"), "--json", code=2)
    assert error_code(refused) == "run_output_name_invalid"
    assert not (tmp_path / "escape.csv").exists()


def test_logs_follow_the_live_log_until_the_end(cli, env: ExportEnv) -> None:  # type: ignore[no-untyped-def]
    run_id = submitted(cli, env)["id"]
    assert cli("logs", run_id, "--user", "bob").stdout == ""  # not started yet
    with env.session() as session:
        move(session, service.get_run(session, run_id), RunState.RUNNING, RunActor.WORKER, by="worker")
    live = service.run_dir(env.paths, run_id) / service.LOG_FILE
    live.parent.mkdir(parents=True)
    live.write_text("Executing Cell 1\n")
    assert cli("logs", run_id, "--user", "bob").stdout == "Executing Cell 1\n"
    finish_running = b"Executing Cell 1\nEnding Cell 1\n"
    with env.session() as session:
        run = service.get_run(session, run_id)
        run.log_sha256 = service.store_bytes(env.paths, finish_running, "log.txt")
        move(session, run, RunState.FAILED, RunActor.WORKER, by="worker")
    assert cli("logs", run_id, "--user", "bob", "--follow").stdout == finish_running.decode()


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from enclave.cli import run as run_cli

    terminal = io.StringIO()
    monkeypatch.setattr(run_cli, "err_console", Console(file=terminal, force_terminal=True, width=100))
    view = run_cli.ProgressView("run-0123456789ab")
    assert view.bar is not None
    view.update("running", 2, 5)
    view.close()
    assert "2/5" in terminal.getvalue() and "run-0123456789ab running" in terminal.getvalue()

    plain = io.StringIO()
    monkeypatch.setattr(run_cli, "err_console", Console(file=plain, force_terminal=False, width=100))
    view = run_cli.ProgressView("run-0123456789ab")
    for state, done in (("queued", 0), ("running", 1), ("running", 1), ("succeeded", 5)):
        view.update(state, done, 5)
    view.close()
    assert plain.getvalue().splitlines() == [
        "run-0123456789ab: queued 0/5 cells",
        "run-0123456789ab: running 1/5 cells",
        "run-0123456789ab: succeeded 5/5 cells",
    ]


# ---- the worker's composition ----------------------------------------------------------------------------


def test_the_settings_follow_the_hubs_environment() -> None:
    settings = compose.settings_from_env(
        {
            "ENCLAVE_HUB_API_PORT": "9081",
            "ENCLAVE_GATEWAY_PORT": "9101",
            "ENCLAVE_RUNS_PORT": "9104",
            "ENCLAVE_WORKSPACE_MEMORY": "512M",
            "ENCLAVE_WORKSPACE_CPUS": "0.5",
            "ENCLAVE_ANALYST_IMAGE": "enclave/analyst:v2",
            "ENCLAVE_RUN_HOST_CAP": "3",
        },
        host_cap=None,
    )
    assert settings.hub_port == 9081 and settings.host_cap == 3 and settings.image == "enclave/analyst:v2"
    assert dict(settings.service_ports) == {"gateway": 9101, "export-review": 8102, "runs": 9104}
    assert settings.memory == 512 * 1024**2 and settings.cpu == 0.5
    assert compose.settings_from_env({}, host_cap=5).host_cap == 5
    with pytest.raises(Exception) as refused:
        compose.settings_from_env({"ENCLAVE_HUB_API_PORT": "eighty"})
    assert getattr(refused.value, "code", "") == "setting_invalid"
    with pytest.raises(Exception) as refused:  # a size the hub's mem_limit would refuse
        compose.settings_from_env({"ENCLAVE_WORKSPACE_MEMORY": "2 gigs"})
    assert getattr(refused.value, "code", "") == "setting_invalid"


def test_the_worker_asks_the_firewall_for_the_spawners_ports(tmp_path: Path) -> None:
    """A run's network is a workspace's: its firewall must allow exactly the ports the spawner allows."""
    from traitlets.config.loader import PyFileConfigLoader

    config_file = Path(__file__).resolve().parents[2] / "hub_config" / "jupyterhub_config.py"
    environ = {"ENCLAVE_HUB_STATE": str(tmp_path / "hub"), "ENCLAVE_RUNS_PORT": "9104"}
    saved = dict(os.environ)
    try:
        for name in [n for n in os.environ if n.startswith("ENCLAVE_")]:
            del os.environ[name]
        os.environ.update(environ)
        hub = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
        settings = compose.settings_from_env()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    worker = compose.make_worker(lambda: None, Paths(tmp_path), settings)  # type: ignore[arg-type,return-value]
    spawner_ports = sorted({hub.EnclaveSpawner.hub_port, *hub.EnclaveSpawner.service_ports.values()})
    assert worker.executor.settings.allowed_ports() == spawner_ports
    assert hub.EnclaveSpawner.service_ports["runs"] == 9104
    (runs,) = [s for s in hub.JupyterHub.services if s["name"] == "runs"]
    assert runs["environment"]["ENCLAVE_RUNS_PORT"] == "9104"


def test_finish_hooks_include_the_reproduction_check() -> None:
    from export_review import reproduction

    assert compose.finish_hooks() == [reproduction.record]


def test_claiming_one_run_keeps_the_caps(cli, env: ExportEnv, sessions: sessionmaker[Session]) -> None:  # type: ignore[no-untyped-def]
    first, second = submitted(cli, env)["id"], submitted(cli, env)["id"]
    other = submitted(cli, env, "mallory")["id"]
    opener = compose.session_opener(sessions)
    assert not compose.claim_run(opener, first, host_cap=0)
    assert compose.claim_run(opener, first, host_cap=2)
    assert not compose.claim_run(opener, first, host_cap=2)  # not queued any more
    assert not compose.claim_run(opener, second, host_cap=2)  # bob already has a run running
    assert not compose.claim_run(opener, other, host_cap=1)  # the host is full
    cli("cancel", other, "--user", "mallory")
    assert not compose.claim_run(opener, other, host_cap=2)  # cancelled runs never start
    with env.session() as session:
        assert service.get_run(session, first).state == "running"
        assert service.get_run(session, second).state == "queued"


def test_worker_once_with_nothing_queued_exits_at_once(cli, env: ExportEnv) -> None:  # type: ignore[no-untyped-def]
    assert cli("worker", "--once", "--json") == {"executed": [], "recovered": {}}


# ---- submit --wait with real Docker ------------------------------------------------------------------


@pytest.mark.slow
def test_submit_wait_executes_the_run_and_shows_progress(
    env: ExportEnv, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if os.geteuid() != 0 or not docker_usable():
        pytest.skip("executing a run needs root (networks, firewall) and Docker")
    if "postgresql" in database_url:
        pytest.skip("one database is enough to execute a run")
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", database_url)
    monkeypatch.setenv("ENCLAVE_RUN_NETWORK_PREFIX", "enclave-test-runs-net-")
    monkeypatch.setenv("ENCLAVE_RUN_CONTAINER_PREFIX", "enclave-test-runs-cli-")
    notebook = write(env, "table.ipynb", TABLE_NOTEBOOK)
    remove_named("enclave-test-runs-")
    try:
        result = CliRunner().invoke(
            app,
            ["--home", str(env.paths.home), "run", "submit", notebook, "--project", PROJECT, "--user", "bob",
             "-p", "scale", "3", "--wait", "--json"],
        )  # fmt: skip
    finally:
        remove_named("enclave-test-runs-")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["state"] == "succeeded", info
    assert info["progress"] == {"cells_done": 2, "cells_total": 2}
    assert [o["name"] for o in info["outputs"]] == ["table.csv"]
    assert info["image_digest"].startswith("sha256:")
    # Not a terminal: one plain progress line per change, on stderr.
    assert (
        f"{info['id']}: queued 0/2 cells" in result.stderr
        and f"{info['id']}: succeeded 2/2 cells" in result.stderr
    )
    out = tmp_path / "out"
    CliRunner().invoke(
        app, ["--home", str(env.paths.home), "run", "outputs", info["id"], "--user", "bob", "--out", str(out)]
    )
    assert (out / "table.csv").read_text().splitlines() == ["group,n", "a,30", "b,60"]
