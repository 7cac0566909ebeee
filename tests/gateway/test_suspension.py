"""Emergency suspension through the real CLI, hub and gateway (R-LIFE-10): the project's servers are
stopped, the services forget cached tokens, and the gateway refuses the project at once."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from enclave import audit
from enclave.cli import app
from tests.gateway.conftest import PROJECT, Enclave, Hub, RunningGateway, http, start_gateway


@pytest.fixture
def strict_gateway(hub: Hub, enclave: Enclave) -> Iterator[RunningGateway]:
    """The gateway with its production token-cache TTL (5 s)."""
    running = start_gateway(hub, enclave)
    yield running
    running.stop()


def test_suspend_stops_servers_clears_token_caches_and_refuses_at_once(
    hub: Hub, enclave: Enclave, strict_gateway: RunningGateway
) -> None:
    views = f"{strict_gateway.url}api/views"
    hub.start_server("mallory", PROJECT)
    token, token_id = hub.server_token("mallory", PROJECT)
    kept, _ = hub.server_token("mallory", PROJECT)
    assert http("GET", views, token)[0] == 200 and http("GET", views, kept)[0] == 200
    hub.revoke("mallory", token_id)  # the hub drops a token; the gateway still has it cached
    assert http("GET", views, token)[0] == 200

    result = CliRunner().invoke(
        app,
        ["--home", str(enclave.home), "project", "suspend", PROJECT, "--reason", "breach", "--json"],
        env={
            "ENCLAVE_DATABASE_URL": enclave.database_url,
            "ENCLAVE_HUB_API_URL": hub.api_url,
            "ENCLAVE_HUB_API_TOKEN": hub.admin_token,
            "ENCLAVE_SERVICE_URLS": strict_gateway.url,
        },
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "suspended"

    assert not hub.server_ready("mallory", PROJECT), "the project's server is stopped"
    status, body = http("GET", views, token)
    assert status == 401 and body["errors"][0]["code"] == "token_invalid", "forgotten at once, not in 5 s"
    status, body = http("GET", views, kept)
    assert status == 403 and body["errors"][0]["code"] == "project_not_active"
    with enclave.session() as s:
        (event,) = audit.tail(s, action="project.suspend", project=PROJECT)
        assert json.loads(event.details_json)["revoked"] == [
            "stop_servers_of_project",
            "clear_service_auth_caches",
        ]
