"""``EnclaveSpawner``: one locked-down Docker container per analyst and project (ARCHITECTURE §1, §2).

A workspace is a *named server* whose name is the project id. ``start()`` follows DockerSpawner's
template and only adds steps before it (STYLE §5.2):

1. check the user is an analyst of that project and the project is active and unlocked;
2. publish the project's twin (and, for ``access: rows``, its prepared rows) read-only;
3. make sure the project's internal network exists and the host firewall lets it reach only the
   hub and the enclave services;
4. point the container at that network, its DNS at the firewalled gateway, mount a home volume
   per project and user; then ``super().start()`` with the lock-down settings of ``lockdown.py``.

``poll()`` repeats the check of step 1, so a server of a project that expired, was suspended or
locked stops at the next poll even if no revocation hook ran.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import AbstractContextManager
from typing import Any

from dockerspawner import DockerSpawner
from sqlalchemy.orm import Session
from traitlets import Dict, Int, List, Unicode, default, validate

from enclave import config as enclave_config
from hub_config import firewall, lockdown, network, publish
from hub_config.access import check_workspace_access
from hub_config.errors import WorkspaceRefused, named_server_required, not_prepared

DATA_IN_CONTAINER = "/data"


class EnclaveSpawner(DockerSpawner):
    """DockerSpawner with the enclave's access check, per-project network and lock-down."""

    enclave_home = Unicode(
        help="The enclave home (state database, vault). Default: $ENCLAVE_HOME or ~/.enclave."
    ).tag(config=True)

    @default("enclave_home")
    def _default_enclave_home(self) -> str:
        return str(enclave_config.enclave_home())

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
        return "never"  # no registry: images are built on this host (scripts/docker/build-images.sh)

    @default("use_internal_ip")
    def _default_use_internal_ip(self) -> bool:
        return True  # the proxy reaches the container on its network; no host port is published

    @default("mem_limit")
    def _default_mem_limit(self) -> int:
        return 2 * 1024**3

    @default("cpu_limit")
    def _default_cpu_limit(self) -> float:
        return 1.0

    @default("name_template")
    def _default_name_template(self) -> str:
        return "enclave-ws-{servername}-{username}"

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
        from enclave import db

        url = os.environ.get(enclave_config.DATABASE_URL_ENV) or f"sqlite:///{self.paths.state_db}"
        return db.session_scope(db.connect(url))

    @property
    def paths(self) -> enclave_config.Paths:
        return enclave_config.Paths(enclave_config.enclave_home(self.enclave_home))

    def check_access(self) -> str:
        """The project's access mode, or ``WorkspaceRefused``."""
        if not self.name:
            raise named_server_required()
        with self._open_session() as session:
            return check_workspace_access(session, self.name, self.user.name)

    def allowed_ports(self) -> list[int]:
        return sorted({self.hub_port, *self.service_ports.values(), *self.extra_allowed_ports})

    def home_volume(self) -> str:
        return self.home_volume_template.format(project=self.name, user=self.escaped_name)

    def ensure_home_volume(self) -> None:
        """Create the home volume with the project's label, so destruction finds it by label
        (``hub_config.destruction``); an existing volume is kept as it is."""
        self.client.create_volume(
            self.home_volume(),
            labels={
                network.LABEL_PROJECT: self.name,
                "org.enclave.user": self.user.name,
                "org.enclave.role": "home",
            },
        )

    async def prepare_workspace(self) -> None:
        """Steps 1-4 of the module docstring: everything ``super().start()`` needs."""
        access = await asyncio.to_thread(self.check_access)
        try:
            data = await asyncio.to_thread(
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
        await asyncio.to_thread(self.ensure_home_volume)
        net = await asyncio.to_thread(network.ensure_network, self.client, self.name, self.network_prefix)
        await asyncio.to_thread(firewall.apply, net.bridge, net.gateway, self.allowed_ports())

        self.network_name = net.name
        self.hub_connect_url = f"http://{net.gateway}:{self.hub_port}"
        self.volumes = {self.home_volume(): lockdown.HOME_IN_CONTAINER}
        self.read_only_volumes = {str(data.root): str(data.root)}
        self.extra_host_config = lockdown.host_config(
            lockdown.Limits(pids=self.pids_limit, scratch=self.scratch_size, memory=self.mem_limit),
            dns=[net.gateway],
        )
        self.extra_create_kwargs = lockdown.create_kwargs(self.name, self.user.name)
        self.environment = {
            "ENCLAVE_PROJECT": self.name,
            "ENCLAVE_ACCESS": access,
            "ENCLAVE_TWIN_DB": str(data.twin_db),
            **({"ENCLAVE_ROWS_DB": str(data.rows_db)} if data.rows_db else {}),
            **{
                # hub-managed services serve their routes under the hub's /services/<name>/ prefix
                f"ENCLAVE_{name.upper().replace('-', '_')}_URL": f"http://{net.gateway}:{port}/services/{name}/"
                for name, port in self.service_ports.items()
            },
        }

    async def start(self) -> Any:
        await self.prepare_workspace()
        return await super().start()

    def get_env(self) -> dict[str, str]:
        return lockdown.filter_env(super().get_env())

    async def poll(self) -> int | None:
        status = await super().poll()
        if status is not None or not self.name:
            return status
        try:
            await asyncio.to_thread(self.check_access)
        except WorkspaceRefused as refused:
            self.log.warning("stopping workspace %s of %s: %s", self.name, self.user.name, refused.code)
            await self.stop(now=True)
            return 0
        return None

    async def stop(self, now: bool = False) -> None:
        if not self.object_id:  # already stopped and removed (e.g. by poll); nothing to do
            self.clear_state()
            return
        await super().stop(now=now)
