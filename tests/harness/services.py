"""A real JupyterHub for the tests of a hub service (the export service, the console, the runs
service): started from a test hub config on free local ports, with an admin service token, and
stopped on exit.

The config reads its settings from the ``TEST_HUB_*`` variables set here (``hub_base_config.py``)
and the service's own ones: ``hub_with_service`` sets the ``TEST_SERVICE_*`` ones that
``hub_base_config.services_under_test`` registers, ``started_hub``'s caller passes any others.
"""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tests.gateway.conftest import http
from tests.harness.jupyterhub import free_port, proxy_command, running_jupyterhub


@dataclass
class StartedHub:
    api_url: str
    admin_token: str


@contextmanager
def started_hub(
    root: Path, config: Path, proxy_port: int, service_env: Mapping[str, str]
) -> Iterator[StartedHub]:
    """JupyterHub with ``config``, its proxy on ``proxy_port``, its log in ``root/hub.log``; the hub
    answers its API before this yields, and is stopped on exit."""
    hub_port = free_port()
    admin_token = secrets.token_hex(32)
    env = {
        "TEST_HUB_PORT": str(hub_port),
        "TEST_HUB_PROXY_PORT": str(proxy_port),
        "TEST_HUB_PROXY_API_PORT": str(free_port()),
        "TEST_HUB_CHP": proxy_command(),
        "TEST_HUB_DIR": str(root),
        "TEST_ADMIN_TOKEN": admin_token,
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32),
        **service_env,
    }
    with running_jupyterhub(config, root, env, hub_port=hub_port, admin_token=admin_token, stop_timeout_s=20):
        yield StartedHub(f"http://127.0.0.1:{hub_port}/hub/api", admin_token)


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


@dataclass
class ServiceHub:
    """A started hub whose proxy routes ``/services/<name>/`` to the service under test on
    ``service_port`` (OAuth client ``service-<name>``, API token ``service_token``)."""

    api_url: str
    admin_token: str
    name: str
    public_url: str  # the proxy: what a browser opens
    service_port: int
    service_token: str

    @property
    def prefix(self) -> str:
        return f"/services/{self.name}/"

    @property
    def service_url(self) -> str:
        return f"{self.public_url}{self.prefix}"

    @property
    def callback(self) -> str:
        return f"{self.service_url}oauth_callback"

    @property
    def direct_url(self) -> str:
        """The service itself, not behind the proxy."""
        return f"http://127.0.0.1:{self.service_port}{self.prefix}"

    def service_settings(self, enclave_home: Path, database_url: str, **settings: Any) -> dict[str, Any]:
        """The service app's settings (``enclave.services.hub.HubServiceApp``) for this hub, and
        ``settings``."""
        return {
            "ip": "127.0.0.1",
            "port": self.service_port,
            "service_name": self.name,
            "base_url": self.prefix,
            "hub_api_url": self.api_url,
            "api_token": self.service_token,
            "oauth_client_id": f"service-{self.name}",
            "oauth_redirect_uri": self.callback,
            "enclave_home": str(enclave_home),
            "database_url": database_url,
            **settings,
        }

    @contextmanager
    def serving(
        self,
        start: Callable[..., S],
        enclave_home: Path,
        database_url: str,
        ready_path: str,
        **settings: Any,
    ) -> Iterator[S]:
        """The service started in this process with ``start(**service_settings(...))``, stopped on
        exit; the proxy routes to it (``ready_path`` answers 401 without a token) before this yields."""
        service = start(**self.service_settings(enclave_home, database_url, **settings))
        try:
            wait_for_route(f"{self.service_url}{ready_path}")
            yield service
        finally:
            service.stop()

    def user_tokens(self, users: Iterable[str], note: str) -> dict[str, str]:
        """Each user created on the hub, with a token that may reach the service."""
        tokens = {}
        for user in users:
            status, answer = http("POST", f"{self.api_url}/users/{user}", self.admin_token)
            assert status in (201, 409), answer
            scopes = {"scopes": [f"access:services!service={self.name}"], "note": note}
            status, answer = http("POST", f"{self.api_url}/users/{user}/tokens", self.admin_token, scopes)
            assert status == 201, answer
            tokens[user] = answer["token"]
        return tokens


@contextmanager
def hub_with_service(root: Path, config: Path, name: str) -> Iterator[ServiceHub]:
    """``started_hub`` with the hub service ``name`` registered (``TEST_SERVICE_*``, read by
    ``hub_base_config.services_under_test``), expected on a free local port."""
    proxy_port, service_port = free_port(), free_port()
    public_url, service_token = f"http://127.0.0.1:{proxy_port}", secrets.token_hex(32)
    service_env = {
        "TEST_SERVICE_NAME": name,
        "TEST_SERVICE_URL": f"http://127.0.0.1:{service_port}",
        "TEST_SERVICE_TOKEN": service_token,
        "TEST_SERVICE_CALLBACK": f"{public_url}/services/{name}/oauth_callback",
    }
    with started_hub(root, config, proxy_port, service_env) as hub:
        yield ServiceHub(hub.api_url, hub.admin_token, name, public_url, service_port, service_token)


def wait_for_route(url: str) -> None:
    """The hub answers before the proxy routes to a service: wait for the service's own 401."""
    deadline = time.monotonic() + 30
    while _status(url) != 401:
        assert time.monotonic() < deadline, f"the proxy never routed to {url}"
        time.sleep(0.2)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url), timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def multipart_body(fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body: ``fields`` (name, value), repeatable, and ``files`` (field name, file
    name, content)."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(head.encode() + value.encode() + b"\r\n")
    for name, filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
