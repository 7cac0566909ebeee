"""JupyterLab in the real analyst image, for the browser tests of its labextensions (tests/e2e): its
own labextensions and the lockdown server extension, as installed there, on the host's loopback
(host networking, so that the browser and a service in the test process share it). The images are
built first; the container is removed afterwards, its logs printed."""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness.docker_objects import sh
from tests.harness.jupyterhub import REPO, free_port

IMAGE = os.environ.get("ANALYST_IMAGE", "enclave/analyst:latest")


@dataclass
class LabServer:
    """A running JupyterLab: its URL (ending in /), its login token and its container's name."""

    url: str
    token: str
    container: str

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A token-authenticated call to the server (no XSRF needed), as a script would make it."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                return error.code, json.loads(payload)
            except ValueError:
                return error.code, payload.decode(errors="replace")

    def status_without_login(self, path: str) -> int:
        """The HTTP status of a GET of ``path`` with neither token nor cookie."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def labextensions(self) -> str:
        """What ``jupyter labextension list`` says in the container (it writes to stderr)."""
        listed = sh("docker", "exec", self.container, "jupyter", "labextension", "list", check=False)
        return listed.stdout + listed.stderr


def _wait_ready(url: str, token: str, container: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url + "api/status")
            request.add_header("Authorization", f"token {token}")
            with urllib.request.urlopen(request, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    logs = sh("docker", "logs", container, check=False)
    pytest.fail(f"JupyterLab did not start in the analyst image:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}")


@contextmanager
def running_lab(prefix: str, env: Mapping[str, str], setup: str) -> Iterator[LabServer]:
    """JupyterLab in the analyst image as uid 1000 (read-only, no capabilities, /tmp and the home on
    tmpfs), in a container named ``prefix`` and a random suffix, with the variables ``env``; the
    Python code ``setup`` runs in it as its user before the server is waited for."""
    built = sh("bash", str(REPO / "images/build.sh"), check=False)
    assert built.returncode == 0, f"building the images failed:\n{built.stderr[-4000:]}"
    name = f"{prefix}{secrets.token_hex(4)}"
    port, token = free_port(), secrets.token_hex(16)
    variables = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    sh(
        "docker", "run", "-d", "--name", name, "--network", "host", "--user", "1000:1000",
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--tmpfs", "/tmp:mode=1777", "--tmpfs", "/home/analyst:uid=1000,gid=1000,mode=0700",
        *variables,
        IMAGE, "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
    )  # fmt: skip
    try:
        written = sh("docker", "exec", name, "python3", "-c", setup, check=False, timeout=60)
        assert written.returncode == 0, written.stderr
        url = f"http://127.0.0.1:{port}/"
        _wait_ready(url, token, name)
        yield LabServer(url, token, name)
    finally:
        logs = sh("docker", "logs", name, check=False)
        print(logs.stdout[-4000:], logs.stderr[-4000:])
        sh("docker", "rm", "-f", name, check=False)
