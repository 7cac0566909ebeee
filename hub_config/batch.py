"""The Docker side of one batch run (issue 12): a fresh, locked-down workspace container that runs
papermill once and ends.

A run container is a workspace (``workspace_policy.plan_workspace`` with ``lockdown``): the same
image, read-only root, every capability dropped, no-new-privileges, PID/memory/CPU limits, the
project's internal network behind the host firewall with the same allowed ports as a workspace
(``EnclaveSpawner.allowed_ports``), DNS at the firewalled gateway, the project's published data
read-only. What differs:

* no home volume: ``/home/analyst`` is a fresh tmpfs (noexec, like ``/tmp``), gone with the run;
* the run's ``in/`` (notebook and parameters) read-only at ``/run/enclave/in``, its ``out/``
  writable at ``/run/enclave/out`` (the working directory): the only writable mounts besides tmpfs;
* the run's own gateway token as ``JUPYTERHUB_API_TOKEN`` and ``ENCLAVE_RUN_ID``; no hub API;
* labels ``org.enclave.role=run`` and ``org.enclave.run=<id>``; the command is papermill.

The executor is synchronous (docker-py's ``APIClient``, as DockerSpawner uses): the worker
(``enclave.runs.worker``) calls it from its own threads.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from dockerspawner import DockerSpawner

from enclave.config import Paths
from hub_config import firewall, lockdown, network, publish
from hub_config.workspace_policy import (
    DEFAULT_CPU_LIMIT,
    DEFAULT_IMAGE,
    DEFAULT_MEM_LIMIT,
    HOME_IN_CONTAINER,
    LABEL_ROLE,
    WORKSPACE_UID,
    Limits,
    WorkspacePlan,
    WorkspaceSettings,
    filter_env,
    plan_workspace,
)

if TYPE_CHECKING:
    from enclave.db.models import Run

IN_DIR = "/run/enclave/in"
OUT_DIR = "/run/enclave/out"
EXECUTED_NAME = ".executed.ipynb"
ROLE_RUN = "run"
LABEL_RUN = "org.enclave.run"
DEFAULT_NAME_PREFIX = "enclave-run-"
DEFAULT_LIMITS = Limits(memory=DEFAULT_MEM_LIMIT, cpu=DEFAULT_CPU_LIMIT)
# papermill as the contract fixes it; -k python3: the image's only kernel, whatever name
# ("python" or "python3") the notebook's kernelspec carries (notebooks.PYTHON_KERNELS).
COMMAND = [
    "papermill",
    f"{IN_DIR}/notebook.ipynb",
    f"{OUT_DIR}/{EXECUTED_NAME}",
    "-f",
    f"{IN_DIR}/parameters.json",
    "--cwd",
    OUT_DIR,
    "-k",
    "python3",
    "--log-output",
    "--no-progress-bar",
]
STOP_GRACE_S = 5
LOG_TRUNCATED = b"\n[enclave] the log was cut here: it reached its size cap\n"


@dataclass(frozen=True)
class BatchSettings:
    """The deployment's choices for run containers (the spawner's, so a run is a workspace)."""

    image: str = DEFAULT_IMAGE
    limits: Limits = DEFAULT_LIMITS
    home_size: str = "256m"  # the /home/analyst tmpfs
    hub_port: int = 8081
    service_ports: Mapping[str, int] = field(default_factory=dict)  # name -> port, as the spawner's
    extra_allowed_ports: tuple[int, ...] = ()
    network_prefix: str = network.NETWORK_PREFIX
    name_prefix: str = DEFAULT_NAME_PREFIX
    uid: int = WORKSPACE_UID

    def allowed_ports(self) -> list[int]:
        """Exactly ``EnclaveSpawner.allowed_ports()``: the firewall of a project network is shared
        by its workspaces and runs, so both must ask for the same ports."""
        return sorted({self.hub_port, *self.service_ports.values(), *self.extra_allowed_ports})


@dataclass(frozen=True)
class ExitStatus:
    """How a run container ended."""

    code: int
    oom_killed: bool = False


class DockerRunExecutor:
    """Starts, follows, stops and removes run containers on this host's Docker."""

    def __init__(self, paths: Paths, settings: BatchSettings, client: Any | None = None) -> None:
        self.paths = paths
        self.settings = settings
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            self._client = docker.APIClient(version="auto", timeout=60)
        return self._client

    def container_name(self, run_id: str) -> str:
        return self.settings.name_prefix + run_id

    # ---- start ----------------------------------------------------------------------------------

    def plan(self, run: Run, access: str, data: publish.PublishedData, gateway: str) -> WorkspacePlan:
        """The workspace plan of the run's analyst and project (no home volume is made from it)."""
        s = self.settings
        return plan_workspace(
            user=run.user,
            user_slug=DockerSpawner._escape(run.user),  # the spawner's own escaping of the name
            project=run.project_id,
            access=access,
            data=data,
            services={name: f"http://{gateway}:{port}" for name, port in s.service_ports.items()},
            settings=WorkspaceSettings(image=run.image or s.image, limits=s.limits, uid=s.uid, gid=s.uid),
        )

    def container_spec(
        self, run: Run, plan: WorkspacePlan, net: network.ProjectNetwork, run_dir: Path, token: str
    ) -> dict[str, Any]:
        """``create_container`` arguments for the run (the host config as a plain dict)."""
        config = lockdown.plan_host_config(plan, dns=[net.gateway])
        tmpfs = dict(config.pop("tmpfs"))  # type: ignore[call-overload]
        uid = self.settings.uid
        tmpfs[HOME_IN_CONTAINER] = (
            f"rw,noexec,nosuid,nodev,size={self.settings.home_size},uid={uid},gid={uid},mode=0700"
        )
        binds = {
            str(run_dir / "in"): {"bind": IN_DIR, "mode": "ro"},
            str(run_dir / "out"): {"bind": OUT_DIR, "mode": "rw"},
            **{path: {"bind": path, "mode": "ro"} for path in plan.read_only_paths},
        }
        host: dict[str, Any] = {**config, "tmpfs": tmpfs, "binds": binds, "network_mode": net.name}
        if plan.limits.memory:
            host["mem_limit"] = plan.limits.memory
        if plan.limits.cpu:
            host["nano_cpus"] = int(plan.limits.cpu * 1e9)
        create = lockdown.plan_create_kwargs(plan)
        labels = {**dict(create.pop("labels")), LABEL_ROLE: ROLE_RUN, LABEL_RUN: run.id}  # type: ignore[call-overload]
        env = filter_env({**plan.env, "JUPYTERHUB_API_TOKEN": token, "ENCLAVE_RUN_ID": run.id})
        return {
            "image": plan.image,
            "command": list(COMMAND),
            "name": self.container_name(run.id),
            "environment": env,
            "labels": labels,
            "user": create["user"],
            "working_dir": OUT_DIR,
            "host_config": host,
        }

    def start(self, run: Run, run_dir: Path, token: str, *, access: str) -> str:
        """Publish the data, make sure of the network and firewall, create and start the container;
        its id. ``access`` is the project's mode, which the caller checked the analyst may use now."""
        s = self.settings
        data = publish.publish(self.paths, run.project_id, rows=access == "rows", uid=s.uid, gid=s.uid)
        net = network.ensure_network(self.client, run.project_id, s.network_prefix)
        firewall.ensure(net.bridge, net.gateway, s.allowed_ports())
        spec = self.container_spec(run, self.plan(run, access, data, net.gateway), net, run_dir, token)
        host = self.client.create_host_config(**spec.pop("host_config"))
        created = self.client.create_container(**spec, host_config=host)
        container_id = str(created["Id"])
        try:
            self.client.start(container_id)
        except BaseException:
            self.remove(container_id)
            raise
        return container_id

    # ---- follow ---------------------------------------------------------------------------------

    def image_digest(self, container_id: str) -> str | None:
        """The ``sha256:`` id of the image the container runs, whatever its tag says now."""
        try:
            return str(self.client.inspect_container(container_id)["Image"])
        except Exception:
            return None

    def poll(self, container_id: str) -> ExitStatus | None:
        """``None`` while the container runs; how it ended otherwise (also when it is gone: 255)."""
        import docker.errors

        try:
            state = self.client.inspect_container(container_id)["State"]
        except docker.errors.NotFound:
            return ExitStatus(code=255)
        if state.get("Running") or state.get("Status") in ("created", "restarting"):
            return None
        return ExitStatus(code=int(state.get("ExitCode", 255)), oom_killed=bool(state.get("OOMKilled")))

    def wait(self, container_id: str, timeout: float) -> ExitStatus | None:
        """Wait at most ``timeout`` seconds for the container to end."""
        import requests

        with suppress(requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            self.client.wait(container_id, timeout=timeout)
        return self.poll(container_id)

    def exists(self, container_id: str) -> bool:
        import docker.errors

        try:
            self.client.inspect_container(container_id)
        except docker.errors.NotFound:
            return False
        return True

    def find(self, run_id: str) -> str | None:
        """The id of the run's container, found by its label (running or not)."""
        found = self.client.containers(all=True, filters={"label": f"{LABEL_RUN}={run_id}"})
        return str(found[0]["Id"]) if found else None

    def stream_logs(self, container_id: str, log_path: Path, *, cap: int) -> threading.Thread:
        """Copy the container's output (stdout and stderr, from its start) into ``log_path`` in a
        thread that ends with the container. At most ``cap`` bytes are written; the rest is read and
        dropped, so a notebook printing without end fills no disk."""

        def copy() -> None:
            with log_path.open("wb") as sink:
                _copy_capped(
                    self.client.logs(container_id, stream=True, follow=True, stdout=True, stderr=True),
                    sink,
                    cap,
                )

        thread = threading.Thread(target=copy, name=f"run-log-{container_id[:12]}", daemon=True)
        thread.start()
        return thread

    # ---- end ------------------------------------------------------------------------------------

    def stop(self, container_id: str, timeout: int = STOP_GRACE_S) -> None:
        """Stop the container (SIGTERM, then SIGKILL after ``timeout`` s); a gone one is fine."""
        import docker.errors

        with suppress(docker.errors.NotFound):
            self.client.stop(container_id, timeout=timeout)

    def remove(self, container_id: str) -> None:
        import docker.errors

        with suppress(docker.errors.NotFound):
            self.client.remove_container(container_id, force=True)


def _copy_capped(chunks: Any, sink: BinaryIO, cap: int) -> None:
    written = 0
    try:
        for chunk in chunks:
            if written < cap:
                part = chunk[: cap - written]
                sink.write(part)
                written += len(part)
                if written >= cap:
                    sink.write(LOG_TRUNCATED)
                sink.flush()
    except Exception:  # the container was removed under the stream: the log ends there
        pass
