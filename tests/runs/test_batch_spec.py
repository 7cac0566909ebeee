"""The run container's docker arguments, read as a table (no Docker needed): a workspace's plan and
lock-down, minus the home volume, plus the run's own folders, token, labels and command."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from jupyterhub import orm

from hub_config import lockdown
from hub_config.batch import COMMAND, BatchSettings, DockerRunExecutor
from hub_config.network import ProjectNetwork
from hub_config.publish import PublishedData
from hub_config.spawner import EnclaveSpawner
from hub_config.workspace_policy import Limits

GATEWAY = "172.30.0.1"
NET = ProjectNetwork("enclave-project-p-1", "netid", "encl-abc", GATEWAY, "172.30.0.0/16")
RUN = SimpleNamespace(id="run-0123456789ab", project_id="p-1", user="bob", image="enclave/analyst:latest")


def spec(tmp_path: Path, access: str = "aggregate") -> dict:
    settings = BatchSettings(
        limits=Limits(pids=128, scratch="256m", memory=1024**3, cpu=0.5),
        hub_port=8081,
        service_ports={"gateway": 8101, "runs": 8104},
    )
    executor = DockerRunExecutor(None, settings, client=object())  # type: ignore[arg-type]
    data = PublishedData(
        tmp_path / "published", tmp_path / "published/twin.duckdb", tmp_path / "published/rows.duckdb"
    )
    if access == "aggregate":
        data = PublishedData(data.root, data.twin_db, None)
    plan = executor.plan(RUN, access, data, GATEWAY)  # type: ignore[arg-type]
    return executor.container_spec(RUN, plan, NET, tmp_path / "run", "encrun_secret")  # type: ignore[arg-type]


def test_the_run_gets_a_workspaces_lockdown(tmp_path: Path) -> None:
    got = spec(tmp_path)
    host = got["host_config"]
    workspace = lockdown.host_config(Limits(pids=128, scratch="256m", memory=1024**3), dns=[GATEWAY])
    for key, value in workspace.items():
        if key != "tmpfs":
            assert host[key] == value, key
    assert host["read_only"] is True and host["cap_drop"] == ["ALL"] and host["privileged"] is False
    assert host["network_mode"] == NET.name and host["dns"] == [GATEWAY]
    assert host["mem_limit"] == 1024**3 and host["nano_cpus"] == 500_000_000
    assert got["user"] == "1000:1000" and got["image"] == "enclave/analyst:latest"


def test_no_home_volume_only_its_own_folders(tmp_path: Path) -> None:
    host = spec(tmp_path)["host_config"]
    assert host["binds"] == {
        str(tmp_path / "run/in"): {"bind": "/run/enclave/in", "mode": "ro"},
        str(tmp_path / "run/out"): {"bind": "/run/enclave/out", "mode": "rw"},
        str(tmp_path / "published"): {"bind": str(tmp_path / "published"), "mode": "ro"},
    }
    assert "noexec" in host["tmpfs"]["/tmp"] and "size=256m" in host["tmpfs"]["/tmp"]
    home = host["tmpfs"]["/home/analyst"]
    assert {"noexec", "nosuid", "nodev", "uid=1000", "gid=1000", "mode=0700"} <= set(home.split(","))


def test_environment_labels_and_command(tmp_path: Path) -> None:
    got = spec(tmp_path)
    env = got["environment"]
    assert env["JUPYTERHUB_API_TOKEN"] == "encrun_secret" and env["ENCLAVE_RUN_ID"] == RUN.id
    assert env["ENCLAVE_PROJECT"] == "p-1" and env["ENCLAVE_ACCESS"] == "aggregate"
    assert env["ENCLAVE_GATEWAY_URL"] == f"http://{GATEWAY}:8101/services/gateway/"
    assert env["ENCLAVE_RUNS_URL"] == f"http://{GATEWAY}:8104/services/runs/"
    assert "ENCLAVE_ROWS_DB" not in env and "ENCLAVE_HOME" not in env
    assert got["labels"] == {
        "org.enclave.project": "p-1",
        "org.enclave.user": "bob",
        "org.enclave.role": "run",
        "org.enclave.run": RUN.id,
    }
    assert got["name"] == "enclave-run-" + RUN.id and got["working_dir"] == "/run/enclave/out"
    assert got["command"] == COMMAND
    assert COMMAND[:7] == [
        "papermill",
        "/run/enclave/in/notebook.ipynb",
        "/run/enclave/out/.executed.ipynb",
        "-f",
        "/run/enclave/in/parameters.json",
        "--cwd",
        "/run/enclave/out",
    ]
    assert "--log-output" in COMMAND and "--no-progress-bar" in COMMAND
    assert spec(tmp_path, "rows")["environment"]["ENCLAVE_ROWS_DB"].endswith("rows.duckdb")


def test_the_firewall_asks_for_the_same_ports_as_the_spawner(tmp_path: Path) -> None:
    """Runs and workspaces share a project's firewall chain: different ports would flap it."""
    user = SimpleNamespace(name="alice", escaped_name="alice", url="/user/alice/")
    spawner = EnclaveSpawner(user=user, orm_spawner=orm.Spawner(name="p-1"), enclave_home=str(tmp_path))
    spawner.hub_port = 8081
    spawner.service_ports = {"gateway": 8101, "runs": 8104}
    settings = BatchSettings(hub_port=8081, service_ports={"gateway": 8101, "runs": 8104})
    assert settings.allowed_ports() == spawner.allowed_ports() == [8081, 8101, 8104]
