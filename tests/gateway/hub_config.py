"""JupyterHub config for the gateway tests: a real hub on 127.0.0.1, its API minting the tokens.

Settings come from environment variables the fixture sets. The spawner starts a tiny HTTP server
(no Jupyter, no Docker): enough for the hub to own a real named server that can be stopped.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

from jupyterhub.spawner import Spawner

c = get_config()  # type: ignore[name-defined]  # noqa: F821 (provided by JupyterHub)
env = os.environ


class TinyHTTPSpawner(Spawner):
    """A named server that is only `python -m http.server` on a free local port."""

    def _free_port(self) -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    async def start(self):  # type: ignore[no-untyped-def]
        port = self._free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return ("127.0.0.1", port)

    async def poll(self):  # type: ignore[no-untyped-def]
        proc = getattr(self, "proc", None)
        if proc is None:
            return 0
        return proc.poll()

    async def stop(self, now=False):  # type: ignore[no-untyped-def]
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(10)


# The settings every test hub shares: ports, proxy, state directory, the dummy authenticator.
load_subconfig(str(Path(__file__).resolve().parents[1] / "harness" / "hub_base_config.py"))  # noqa: F821
c.JupyterHub.spawner_class = TinyHTTPSpawner
c.JupyterHub.allow_named_servers = True
c.JupyterHub.cleanup_servers = True
c.JupyterHub.services = [
    {"name": "enclave-gateway", "api_token": env["TEST_GATEWAY_TOKEN"]},
    {"name": "test-admin", "api_token": env["TEST_ADMIN_TOKEN"]},
]
c.JupyterHub.load_roles = [
    {"name": "enclave-gateway", "scopes": ["admin:servers"], "services": ["enclave-gateway"]},
    {
        "name": "test-admin",
        "scopes": ["admin:users", "admin:servers", "tokens", "read:users"],
        "services": ["test-admin"],
    },
]
# A monitoring user: the only one whose token may read the services' /metrics (read:metrics).
c.JupyterHub.load_groups = {"monitors": {"users": ["mona"]}}
c.JupyterHub.load_roles = [
    *c.JupyterHub.load_roles,
    {"name": "test-monitoring", "scopes": ["read:metrics"], "groups": ["monitors"]},
]
