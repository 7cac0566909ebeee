"""The one way tests and benchmarks start a real JupyterHub: a subprocess with a config file, its
log in a file, free local ports, ready when its REST API answers an admin token, stopped on exit.

The callers differ only in the config they load and the variables that config reads: the service
tests (``tests/hub_base_config.py``), the gateway tests (``tests/gateway/hub_config.py``) and the
Docker end-to-end tests and ``bench/spawn.py`` (``tests/e2e/hub_test_config.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHP = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proxy_command() -> str:
    """configurable-http-proxy: the repository's npm install (made by ``scripts/install-hub.sh`` when
    missing), else one on ``PATH``."""
    if not CHP.exists():
        on_path = shutil.which("configurable-http-proxy")
        if on_path:
            return on_path
        subprocess.run(["bash", str(REPO / "scripts" / "install-hub.sh")], check=True)
    return str(CHP)


def api_status(api_url: str, token: str) -> int:
    """The status of ``GET {api_url}/`` with ``token`` (raises OSError while nothing listens)."""
    request = urllib.request.Request(f"{api_url}/", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            json.loads(response.read() or b"null")
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


@dataclass
class HubProcess:
    """A started hub: its process, its log file, its API URL and an admin token for that API."""

    process: subprocess.Popen[bytes]
    log: Path
    api_url: str
    admin_token: str

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@contextmanager
def running_jupyterhub(
    config: Path,
    workdir: Path,
    env: Mapping[str, str],
    *,
    hub_port: int,
    admin_token: str,
    stop_timeout_s: float = 30.0,
) -> Iterator[HubProcess]:
    """JupyterHub with ``config`` (which reads ``env``, added to this process's environment), run in
    ``workdir`` with its log in ``workdir/hub.log``; yields once ``hub_port`` answers the admin
    token, and stops the hub on exit (killed if it does not stop within ``stop_timeout_s``)."""
    environment = {
        **os.environ,
        "PATH": f"{Path(proxy_command()).parent}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        **env,
    }
    log = workdir / "hub.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=workdir,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    hub = HubProcess(process, log, f"http://127.0.0.1:{hub_port}/hub/api", admin_token)
    try:
        _wait_until_ready(hub)
        yield hub
    finally:
        process.terminate()
        try:
            process.wait(stop_timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(hub: HubProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if api_status(hub.api_url, hub.admin_token) == 200:
                return
        except OSError:
            pass
        if hub.process.poll() is not None:
            raise RuntimeError(f"JupyterHub exited:\n{hub.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"JupyterHub did not start:\n{hub.log_tail()}")
        time.sleep(0.2)
