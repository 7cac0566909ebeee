"""The batch-run worker put together (issue 12), once, for ``enclave run worker``,
``enclave run submit --wait`` and the runs service: the worker (``enclave.runs.worker``), the Docker
executor (``hub_config.batch``) with the same ports, image and limits as the workspaces, and the
finish hooks (``export_review.reproduction.record``, the export review's reproducibility check).

This is a composition root: ``hub_config`` and ``export_review`` are imported here lazily, inside the
functions, and nowhere else in ``enclave.runs`` (the domain never depends on them).

The settings come from the same environment variables as the hub's config
(``hub_config/jupyterhub_config.py``), so a run container asks the project's firewall for exactly
the ports a workspace asks for: the firewall of a project network is shared by both.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from enclave import db
from enclave.config import Paths
from enclave.errors import BadInput
from enclave.runs import queue, service

if TYPE_CHECKING:
    from enclave.runs.worker import OnFinished, Worker

log = logging.getLogger(__name__)

OpenSession = Callable[[], AbstractContextManager[Session]]
# The services a workspace (and so a run) may reach, their port variables and defaults: as the hub's.
SERVICE_PORT_ENV = {
    "gateway": ("ENCLAVE_GATEWAY_PORT", 8101),
    "export-review": ("ENCLAVE_EXPORT_REVIEW_PORT", 8102),
    "runs": ("ENCLAVE_RUNS_PORT", 8104),
}
DEFAULT_HOST_CAP = 2


@dataclass(frozen=True)
class WorkerSettings:
    """What the worker and its executor need from the deployment."""

    host_cap: int = DEFAULT_HOST_CAP
    image: str = service.DEFAULT_IMAGE
    hub_port: int = 8081
    service_ports: Mapping[str, int] = field(
        default_factory=lambda: {name: port for name, (_, port) in SERVICE_PORT_ENV.items()}
    )
    memory: int | None = None  # bytes; None: the workspace default
    cpu: float | None = None
    pids: int | None = None
    network_prefix: str | None = None  # None: the spawner's default
    name_prefix: str | None = None  # None: the executor's default
    poll_s: float = 1.0


def parse_bytes(value: str) -> int:
    """``2G``, ``512M`` as bytes, read by JupyterHub's own ``ByteSpecification``: the hub reads
    ``$ENCLAVE_WORKSPACE_MEMORY`` into the spawner's ``mem_limit`` with it, so a run and a workspace
    get the same limit, and a value the hub refuses is refused here too."""
    from jupyterhub.traitlets import ByteSpecification
    from traitlets import TraitError

    try:
        return int(ByteSpecification().validate(None, value))
    except TraitError:
        raise BadInput(
            "setting_invalid",
            f"{value!r} is not a size such as 2G or 512M",
            f"{value!r} 不是有效的大小（例如 2G 或 512M）",
        ) from None


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadInput(
            "setting_invalid", f"${name} = {raw!r} is not a number", f"${name} = {raw!r} 不是数字"
        ) from None


def settings_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> WorkerSettings:
    """The settings the hub's environment gives (``ENCLAVE_ANALYST_IMAGE``, ``ENCLAVE_HUB_API_PORT``,
    the service ports, ``ENCLAVE_WORKSPACE_MEMORY``/``_CPUS``/``_PIDS``, ``ENCLAVE_RUN_HOST_CAP``,
    ``ENCLAVE_RUN_NETWORK_PREFIX``, ``ENCLAVE_RUN_CONTAINER_PREFIX``), then ``overrides`` (those not
    ``None``)."""
    env = os.environ if environ is None else environ
    memory = env.get("ENCLAVE_WORKSPACE_MEMORY", "").strip()
    cpus = env.get("ENCLAVE_WORKSPACE_CPUS", "").strip()
    try:
        cpu = float(cpus) if cpus else None
    except ValueError:
        raise BadInput(
            "setting_invalid",
            f"$ENCLAVE_WORKSPACE_CPUS = {cpus!r} is not a number",
            f"$ENCLAVE_WORKSPACE_CPUS = {cpus!r} 不是数字",
        ) from None
    values: dict[str, Any] = {
        "host_cap": _int(env, "ENCLAVE_RUN_HOST_CAP", DEFAULT_HOST_CAP),
        "image": env.get("ENCLAVE_ANALYST_IMAGE", "").strip() or service.DEFAULT_IMAGE,
        "hub_port": _int(env, "ENCLAVE_HUB_API_PORT", 8081),
        "service_ports": {
            name: _int(env, variable, port) for name, (variable, port) in SERVICE_PORT_ENV.items()
        },
        "memory": parse_bytes(memory) if memory else None,
        "cpu": cpu,
        "pids": _int(env, "ENCLAVE_WORKSPACE_PIDS", 0) or None,
    }
    # The spawner's network prefix when a site changed it (the firewall rules are the network's).
    if env.get("ENCLAVE_RUN_NETWORK_PREFIX", "").strip():
        values["network_prefix"] = env["ENCLAVE_RUN_NETWORK_PREFIX"].strip()
    if env.get("ENCLAVE_RUN_CONTAINER_PREFIX", "").strip():
        values["name_prefix"] = env["ENCLAVE_RUN_CONTAINER_PREFIX"].strip()
    values.update({key: value for key, value in overrides.items() if value is not None})
    return WorkerSettings(**values)


def session_opener(sessions: sessionmaker[Session]) -> OpenSession:
    """One committed transaction per call, as the worker wants it."""

    @contextmanager
    def open_session() -> Iterator[Session]:
        with db.session_scope(sessions) as session:
            yield session

    return open_session


def finish_hooks() -> list[OnFinished]:
    """What runs when a run ends: the export review's reproducibility check of a rerun."""
    try:
        from export_review.reproduction import record
    except ImportError:  # an install without the export review: nothing to check
        log.warning("export_review.reproduction is not available: reruns are not compared")
        return []
    return [record]


def make_worker(open_session: OpenSession, paths: Paths, settings: WorkerSettings) -> Worker:
    """The worker with its Docker executor and the finish hooks."""
    from enclave.runs.worker import Worker
    from hub_config.batch import DEFAULT_LIMITS, BatchSettings, DockerRunExecutor
    from hub_config.workspace_policy import Limits

    limits = Limits(
        pids=settings.pids or DEFAULT_LIMITS.pids,
        scratch=DEFAULT_LIMITS.scratch,
        memory=settings.memory or DEFAULT_LIMITS.memory,
        cpu=settings.cpu or DEFAULT_LIMITS.cpu,
    )
    batch: dict[str, Any] = {
        "image": settings.image,
        "limits": limits,
        "hub_port": settings.hub_port,
        "service_ports": dict(settings.service_ports),
    }
    if settings.network_prefix:
        batch["network_prefix"] = settings.network_prefix
    if settings.name_prefix:
        batch["name_prefix"] = settings.name_prefix
    return Worker(
        open_session,
        paths,
        DockerRunExecutor(paths, BatchSettings(**batch)),
        host_cap=settings.host_cap,
        poll_s=settings.poll_s,
        on_finished=finish_hooks(),
        memory_limit=limits.memory,
    )


def claim_run(open_session: OpenSession, run_id: str, *, host_cap: int) -> bool:
    """Claim this one run (``submit --wait``) under the queue's caps and lock; whether it is now
    this caller's to execute (``Worker.execute``)."""
    with open_session() as session:
        return queue.claim(session, host_cap=host_cap, run_id=run_id) is not None
