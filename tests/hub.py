"""A real JupyterHub for the tests of a hub service (the export service, the console): started from a
test hub config on free local ports, with an admin service token, and stopped on exit.

The config reads its settings from the ``TEST_HUB_*`` variables set here (``hub_base_config.py``)
and the service's own ones, which the caller passes.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.gateway.conftest import CHP, REPO, free_port, http


@dataclass
class StartedHub:
    api_url: str
    admin_token: str


def wait_for_hub(api_url: str, token: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if http("GET", f"{api_url}/", token)[0] == 200:
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("JupyterHub did not start:\n" + log.read_text()[-4000:])
        time.sleep(0.2)


@contextmanager
def started_hub(
    root: Path, config: Path, proxy_port: int, service_env: Mapping[str, str]
) -> Iterator[StartedHub]:
    """JupyterHub with ``config``, its proxy on ``proxy_port``, its log in ``root/hub.log``; the hub
    answers its API before this yields, and is stopped on exit."""
    if not CHP.exists():
        subprocess.run([str(REPO / "scripts" / "install-hub.sh")], check=True)
    hub_port = free_port()
    admin_token = secrets.token_hex(32)
    env = {
        **os.environ,
        "TEST_HUB_PORT": str(hub_port),
        "TEST_HUB_PROXY_PORT": str(proxy_port),
        "TEST_HUB_PROXY_API_PORT": str(free_port()),
        "TEST_HUB_CHP": str(CHP),
        "TEST_HUB_DIR": str(root),
        "TEST_ADMIN_TOKEN": admin_token,
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32),
        **service_env,
    }
    log_path = root / "hub.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    api_url = f"http://127.0.0.1:{hub_port}/hub/api"
    try:
        wait_for_hub(api_url, admin_token, process, log_path)
        yield StartedHub(api_url, admin_token)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def service_tokens(hub: StartedHub, users: Iterable[str], service: str, note: str) -> dict[str, str]:
    """Each user created on the hub, with a token that may reach ``service``."""
    tokens = {}
    for user in users:
        status, answer = http("POST", f"{hub.api_url}/users/{user}", hub.admin_token)
        assert status in (201, 409), answer
        scopes = {"scopes": [f"access:services!service={service}"], "note": note}
        status, answer = http("POST", f"{hub.api_url}/users/{user}/tokens", hub.admin_token, scopes)
        assert status == 201, answer
        tokens[user] = answer["token"]
    return tokens
