"""``EnclaveSpawner``: one locked-down Docker container per analyst and project (ARCHITECTURE §1, §2).

A workspace is a *named server* whose name is the project id. ``start()`` follows DockerSpawner's
template and only adds steps before it (STYLE §5.2):

1. check the user is an analyst of that project and the project is active and unlocked;
2. publish the project's twin (and, for ``access: rows``, its prepared rows) read-only;
3. make sure the project's internal network exists and the host firewall lets it reach only the
   hub and the enclave services: both are created on the project's first start and checked on
   every later one (the network's flags, the firewall chains rule by rule, one ``iptables-save``),
   repaired when they were changed, and the start refused when they cannot be made right;
4. point the container at that network, its DNS at the firewalled gateway, mount a home volume
   per project and user; then ``super().start()`` with the lock-down settings of ``lockdown.py``.

What a workspace gets is the plan of ``workspace_policy`` (shared with ``kubespawner.py``); the
steps common to both spawners (check, publish, plan, audit) are in ``WorkspaceSpawnerMixin``.

``poll()`` repeats the check of step 1, so a server of a project that expired, was suspended or
locked stops at the next poll even if no revocation hook ran. ``EnclaveSpawner.poll()`` also checks
step 3 again (repairing the firewall if it was changed, stopping the server if it cannot), so a
running workspace never stays without its isolation for longer than a poll interval, and a hub
that restarts checks every running workspace's network at once.

Every start (and refused or failed start), stop and cull is in the audit log with the user, the
project, who asked (a user, a service, or the hub itself), the container id and the digest of the
image the container runs. A start whose record cannot be written is stopped again (fail closed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

from dockerspawner import DockerSpawner
from sqlalchemy.orm import Session
from traitlets import Dict, Int, List, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from enclave import config as enclave_config
from enclave.audit import AuditAction
from hub_config import firewall, lockdown, network, publish, roles, workspace_policy
from hub_config.errors import WorkspaceRefused, not_prepared
from hub_config.workspace_policy import Limits, WorkspacePlan, WorkspaceSettings

AUDIT_SOURCE = "hub"

# Why a server stopped, as written in the audit record's details["cause"].
CAUSE_REQUEST = "request"  # a user or service asked through the hub API
CAUSE_IDLE = "idle_cull"  # the idle-culler service asked: audited as server.cull
CAUSE_ACCESS = "access_revoked"  # poll() found the project or user no longer allowed
CAUSE_HUB = "hub"  # no API request behind it: hub shutdown, clean-up after a failed start


def requester(handler: Any) -> str | None:
    """Who made the hub request ``handler`` serves: a user name or ``service:<name>``."""
    user = getattr(handler, "_jupyterhub_user", None)  # set once the hub authenticated the request
    if user is None:
        return None
    if getattr(user, "kind", "user") == "service":
        return f"service:{user.name}"
    return str(user.name)


def requesting_handler() -> Any | None:
    """The hub request handler behind the running stop, if any.

    JupyterHub does not pass the request to ``Spawner.stop``: the API handler schedules the stop as
    a task whose coroutine is a closure over the handler. Walk that task's await chain for it; when
    it is not found (hub shutdown, a changed hub) the stop is audited with cause "hub", never as a cull.
    """
    from jupyterhub.handlers.base import BaseHandler

    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop: not inside the hub
        return None
    coro: Any = task.get_coro() if task is not None else None
    for _ in range(32):
        frame = getattr(coro, "cr_frame", None)
        if frame is None:
            break
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, BaseHandler):
            return candidate
        coro = getattr(coro, "cr_await", None)
    return None


class WorkspaceSpawnerMixin(LoggingConfigurable):
    """What every enclave spawner does around its runtime's own start, poll and stop.

    The access check, publishing, the plan (``workspace_policy``) and the audit records live here
    once. A spawner lists this class before its runtime's spawner class and implements
    ``prepare_workspace`` (apply the plan), ``user_slug``, ``has_workload`` and ``container_details``.
    """

    enclave_home = Unicode(
        help="The enclave home (state database, vault). Default: $ENCLAVE_HOME or ~/.enclave."
    ).tag(config=True)

    @default("enclave_home")
    def _default_enclave_home(self) -> str:
        return str(enclave_config.enclave_home())

    @default("server_token_scopes")
    def _default_server_token_scopes(self) -> list[str]:
        return list(roles.WORKSPACE_TOKEN_SCOPES)

    pids_limit = Int(256, min=16, help="Most processes a workspace may run (stops fork bombs).").tag(
        config=True
    )

    scratch_size = Unicode("512m", help="Size of the /tmp tmpfs (bytes, or with k/m/g).").tag(config=True)

    workspace_uid = Int(1000, help="The uid the image's analyst user has; files are published to it.").tag(
        config=True
    )

    home_volume_template = Unicode(
        "enclave-home-{project}-{user}",
        help="Name of the home volume, one per project and user; removed when the project ends.",
    ).tag(config=True)

    # ---- state --------------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.name:
            state["enclave_project"] = self.name
        return state

    @property
    def project_id(self) -> str:
        return self.name

    # ---- steps --------------------------------------------------------------------------------

    def _open_session(self) -> AbstractContextManager[Session]:
        from enclave import audit, db

        url = enclave_config.database_url(self.paths.home)  # $ENCLAVE_DATABASE_URL[_FILE] or SQLite
        audit.use_vault(url, self.paths)  # the chain is keyed by this home's vault
        return db.session_scope(db.connect(url))

    @property
    def paths(self) -> enclave_config.Paths:
        return enclave_config.Paths(enclave_config.enclave_home(self.enclave_home))

    def check_access(self) -> str:
        """The project's access mode, or ``WorkspaceRefused``."""
        return workspace_policy.check_access(self._open_session, self.name, self.user.name)

    def user_slug(self) -> str:
        """The user name as it may appear in a volume or claim name."""
        raise NotImplementedError

    def home_volume(self) -> str:
        return self.home_volume_template.format(project=self.name, user=self.user_slug())

    def workspace_settings(self) -> WorkspaceSettings:
        """The policy's inputs from this spawner's configuration."""
        return WorkspaceSettings(
            image=self.image,
            limits=Limits(
                pids=self.pids_limit,
                scratch=self.scratch_size,
                memory=self.mem_limit,
                cpu=self.cpu_limit,
            ),
            home_template=self.home_volume_template,
            uid=self.workspace_uid,
            gid=self.workspace_uid,
        )

    async def publish_data(self, access: str) -> publish.PublishedData:
        """Step 2: the project's read-only data, published for the workspace user."""
        try:
            return await asyncio.to_thread(
                publish.publish,
                self.paths,
                self.name,
                rows=access == "rows",
                uid=self.workspace_uid,
                gid=self.workspace_uid,
            )
        except Exception as error:
            if getattr(error, "code", None) == "workspace_not_prepared":
                raise not_prepared(self.name) from None
            raise

    def make_plan(self, access: str, data: publish.PublishedData, services: dict[str, str]) -> WorkspacePlan:
        """The shared policy's plan for this user and project; ``services``: name -> base URL."""
        return workspace_policy.plan_workspace(
            user=self.user.name,
            user_slug=self.user_slug(),
            project=self.name,
            access=access,
            data=data,
            services=services,
            settings=self.workspace_settings(),
        )

    async def prepare_workspace(self) -> None:
        """Everything the runtime's own ``start()`` needs (check, publish, plan, apply)."""
        raise NotImplementedError

    def has_workload(self) -> bool:
        """Whether a container or pod of this server may still exist."""
        raise NotImplementedError

    async def container_details(self) -> dict[str, Any]:
        """What the audit records say about the running workload."""
        raise NotImplementedError

    # ---- audit --------------------------------------------------------------------------------

    def audit(
        self, action: AuditAction, *, actor: str, details: dict[str, Any], outcome: str = "success"
    ) -> None:
        """Write one server record in a transaction of its own."""
        from enclave import audit

        with self._open_session() as session:
            audit.record(
                session,
                action,
                actor=actor,
                obj=f"server:{self.user.name}/{self.name}",
                project=self.name or None,
                outcome=outcome,
                source=AUDIT_SOURCE,
                details={"user": self.user.name, "server": self.name, **details},
            )

    async def audit_quietly(self, action: AuditAction, **kwargs: Any) -> None:
        """Audit a stop or a failed start: a broken audit database must not keep a server running."""
        try:
            await asyncio.to_thread(self.audit, action, **kwargs)
        except Exception:
            self.log.exception("could not audit %s of %s", action, self._log_name)

    # ---- start / stop -------------------------------------------------------------------------

    _step_ms: dict[str, float] | None = None
    _spawn_notes: dict[str, str] = {}  # noqa: RUF012 (replaced per start, never mutated in place)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Time one step of the running start, for the "workspace prepared" log line."""
        began = time.perf_counter()
        try:
            yield
        finally:
            if self._step_ms is not None:
                self._step_ms[step] = (time.perf_counter() - began) * 1000

    async def start(self) -> Any:
        actor = requester(self.handler) or self.user.name
        self._step_ms = {}
        self._spawn_notes = {}  # what prepare_workspace found worth auditing
        began = time.perf_counter()
        try:
            await self.prepare_workspace()
            with self.timed("runtime"):
                started = await super().start()
        except WorkspaceRefused as refused:
            await self.audit_quietly(
                AuditAction.SERVER_SPAWN, actor=actor, outcome="refused", details={"code": refused.code}
            )
            raise
        except Exception as error:
            await self.audit_quietly(
                AuditAction.SERVER_SPAWN,
                actor=actor,
                outcome="failure",
                details={"error": type(error).__name__, **await self.container_details()},
            )
            raise
        try:
            with self.timed("audit"):
                details = {**await self.container_details(), **self._spawn_notes}
                await asyncio.to_thread(self.audit, AuditAction.SERVER_SPAWN, actor=actor, details=details)
        except Exception:
            self.log.exception("could not audit the start of %s; stopping it", self._log_name)
            self._stop_cause = {"cause": CAUSE_HUB, "reason": "spawn_not_audited"}
            await self.stop(now=True)
            raise
        steps = ", ".join(f"{step} {ms:.0f}" for step, ms in self._step_ms.items())
        self.log.info(
            "workspace prepared in %.0f ms: %s", (time.perf_counter() - began) * 1000, steps
        )  # bench/spawn.py reads this line
        self._step_ms = None
        return started

    def get_env(self) -> dict[str, str]:
        return workspace_policy.filter_env(super().get_env())

    async def poll(self) -> int | None:
        status = await super().poll()
        if status is not None or not self.name:
            return status
        try:
            await asyncio.to_thread(self.check_access)
        except WorkspaceRefused as refused:
            self.log.warning("stopping workspace %s of %s: %s", self.name, self.user.name, refused.code)
            self._stop_cause = {"cause": CAUSE_ACCESS, "code": refused.code}
            await self.stop(now=True)
            return 0
        return None

    _stop_cause: dict[str, str] | None = None

    def stop_cause(self) -> tuple[str, dict[str, str]]:
        """Who stops the server and why: (actor, details)."""
        if self._stop_cause is not None:
            cause, self._stop_cause = self._stop_cause, None
            return "hub", cause
        who = requester(requesting_handler())
        if who is None:
            return "hub", {"cause": CAUSE_HUB}
        if who == f"service:{roles.IDLE_CULLER}":
            return who, {"cause": CAUSE_IDLE, "requested_by": who}
        return who, {"cause": CAUSE_REQUEST, "requested_by": who}

    async def stop(self, now: bool = False) -> None:
        if not self.has_workload():  # already stopped and removed (e.g. by poll); nothing to do
            self._stop_cause = None
            self.clear_state()
            return
        actor, cause = self.stop_cause()
        action = AuditAction.SERVER_CULL if cause["cause"] == CAUSE_IDLE else AuditAction.SERVER_STOP
        details = {**cause, **await self.container_details()}
        try:
            await super().stop(now=now)
        except Exception as error:
            await self.audit_quietly(
                action, actor=actor, outcome="failure", details={**details, "error": type(error).__name__}
            )
            raise
        await self.audit_quietly(action, actor=actor, details=details)


class EnclaveSpawner(WorkspaceSpawnerMixin, DockerSpawner):
    """DockerSpawner with the enclave's access check, per-project network and lock-down."""

    network_prefix = Unicode(
        network.NETWORK_PREFIX, help="Prefix of the per-project Docker network names."
    ).tag(config=True)

    hub_port = Int(
        8081, help="Port of the hub API on the host; workspaces reach it on their network's gateway."
    ).tag(config=True)

    service_ports = Dict(
        value_trait=Int(),
        help="""Enclave services a workspace may reach on its gateway address, name -> port,
        e.g. {"gateway": 8101, "export-review": 8102}. Each becomes ENCLAVE_<NAME>_URL in the
        workspace and an allowed port in the firewall; every other host port is refused.""",
    ).tag(config=True)

    @validate("service_ports")
    def _check_service_ports(self, proposal: Any) -> dict[str, int]:
        for name, port in proposal.value.items():
            if not 0 < port < 65536:
                raise ValueError(f"service_ports[{name!r}] = {port} is not a TCP port (1..65535)")
        return proposal.value

    extra_allowed_ports = List(
        Int(), help="More host ports the workspaces may reach on their gateway (normally none)."
    ).tag(config=True)

    # ---- DockerSpawner defaults: the lock-down --------------------------------------------------

    @default("image")
    def _default_image(self) -> str:
        return "enclave/analyst:latest"

    @default("remove")
    def _default_remove(self) -> bool:
        return True  # the container is disposable; the home volume keeps the analyst's work

    @default("pull_policy")
    def _default_pull_policy(self) -> str:
        return "never"  # no registry: images are built on this host (images/build.sh)

    @default("use_internal_ip")
    def _default_use_internal_ip(self) -> bool:
        return True  # the proxy reaches the container on its network; no host port is published

    @default("mem_limit")
    def _default_mem_limit(self) -> int:
        return workspace_policy.DEFAULT_MEM_LIMIT

    @default("cpu_limit")
    def _default_cpu_limit(self) -> float:
        return workspace_policy.DEFAULT_CPU_LIMIT

    @default("name_template")
    def _default_name_template(self) -> str:
        return "enclave-ws-{servername}-{username}"

    # ---- steps ---------------------------------------------------------------------------------

    def allowed_ports(self) -> list[int]:
        return sorted({self.hub_port, *self.service_ports.values(), *self.extra_allowed_ports})

    def user_slug(self) -> str:
        return self.escaped_name

    def has_workload(self) -> bool:
        return bool(self.object_id)

    def ensure_home_volume(self, plan: WorkspacePlan) -> None:
        """Create the home volume with the project's label, so destruction finds it by label
        (``hub_config.destruction``); an existing volume is kept as it is."""
        self.client.create_volume(plan.home_volume, labels=dict(plan.home_labels))

    def service_bases(self, gateway: str) -> dict[str, str]:
        """Each enclave service's base URL as a workspace on this network reaches it."""
        return {name: f"http://{gateway}:{port}" for name, port in self.service_ports.items()}

    async def prepare_workspace(self) -> None:
        """Steps 1-4 of the module docstring: everything ``super().start()`` needs."""
        with self.timed("access"):
            access = await asyncio.to_thread(self.check_access)
        with self.timed("publish"):
            data = await self.publish_data(access)
        with self.timed("network"):
            net = await asyncio.to_thread(network.ensure_network, self.client, self.name, self.network_prefix)
        plan = self.make_plan(access, data, self.service_bases(net.gateway))
        with self.timed("volume"):
            await asyncio.to_thread(self.ensure_home_volume, plan)
        with self.timed("firewall"):  # checked on every start; installed or repaired only if needed
            await asyncio.to_thread(self.ensure_firewall, net)
        self.apply_plan(plan, net)

    def ensure_firewall(self, net: network.ProjectNetwork) -> str:
        """Step 3's firewall: checked, installed or repaired (``firewall.ensure``); a repair is
        logged and goes into the spawn's audit record."""
        outcome = firewall.ensure(net.bridge, net.gateway, self.allowed_ports())
        if outcome == "repaired":
            self.log.warning("the firewall of %s had been changed or removed; repaired", net.name)
            self._spawn_notes = {**self._spawn_notes, "firewall": "repaired"}
        return outcome

    _net: network.ProjectNetwork | None = None  # the project network last found (start or poll)

    def check_isolation(self) -> str:
        """Step 3 again for a running workspace: its network checked, its firewall checked (and
        repaired if needed). Raises if either cannot be made right; ``OSError`` if Docker did not
        answer and the network was never seen (otherwise its last known bridge is checked)."""
        try:  # found, never made: a network destroyed with its project must stay gone
            net = network.find_network(self.client, self.name, self.network_prefix)
        except OSError as error:
            if self._net is None:
                raise
            self.log.warning("Docker did not answer (%s); checking the firewall of %s", error, self._net.name)
            net = self._net
        if net is None:
            raise RuntimeError(f"the network of project {self.name} is gone")
        self._net = net
        return self.ensure_firewall(net)

    async def poll(self) -> int | None:
        status = await super().poll()
        if status is not None or not self.name:
            return status
        try:
            await asyncio.to_thread(self.check_isolation)
        except OSError as error:  # Docker did not answer: nothing was found wrong; the next poll checks
            self.log.warning("could not check the isolation of %s: %s", self._log_name, error)
            return None
        except Exception as error:  # fail closed: no workspace runs without its isolation
            self.log.error(
                "stopping workspace %s of %s: isolation broken: %s", self.name, self.user.name, error
            )
            self._stop_cause = {"cause": CAUSE_HUB, "reason": "isolation_broken"}
            await self.stop(now=True)
            return 0
        return None

    def apply_plan(self, plan: WorkspacePlan, net: network.ProjectNetwork) -> None:
        """The plan as DockerSpawner settings, on the project's network."""
        self._net = net
        self.network_name = net.name
        self.hub_connect_url = f"http://{net.gateway}:{self.hub_port}"
        self.volumes = {plan.home_volume: plan.home_path}
        self.read_only_volumes = {path: path for path in plan.read_only_paths}
        self.extra_host_config = lockdown.plan_host_config(plan, dns=[net.gateway])
        self.extra_create_kwargs = lockdown.plan_create_kwargs(plan)
        self.environment = dict(plan.env)

    async def container_details(self) -> dict[str, Any]:
        """The container id and name, and the digest of the image it actually runs."""
        details: dict[str, Any] = {"container_id": self.object_id or None, "image": self.image}
        with suppress(Exception):  # gone already: the id from the state is all there is
            # not get_object(): that forgets the id of a vanished container, which stop() still needs
            found = await self.docker("inspect_container", self.object_id or self.object_name)
            if found:
                details.update(
                    container_id=found["Id"],
                    container_name=str(found.get("Name", "")).lstrip("/"),
                    image_digest=found.get("Image"),  # sha256:… of the image, whatever its tag now says
                )
        return details
