"""The hub config binds the hub API and the services to loopback, and registers a metrics-only
monitoring service when asked (issue 13, items 2 and 6)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from traitlets.config.loader import PyFileConfigLoader

CONFIG = Path(__file__).resolve().parents[2] / "hub_config" / "jupyterhub_config.py"


def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> object:
    for name in [n for n in os.environ if n.startswith("ENCLAVE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ENCLAVE_HUB_STATE", str(tmp_path / "hub"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return PyFileConfigLoader(CONFIG.name, str(CONFIG.parent)).load_config()


def managed_service(c: Any, name: str, port: str, home: Path, command: str) -> dict[str, Any]:
    """The hub service ``name`` as the loaded config ``c`` registers it, checked: the hub starts it with
    ``enclave <command> serve`` on 127.0.0.1:``port`` in the enclave ``home``, with no consent page."""
    (service,) = [s for s in c.JupyterHub.services if s["name"] == name]
    assert service["url"] == f"http://127.0.0.1:{port}" and service["oauth_no_confirm"] is True
    argv = service["command"]
    assert argv[0].endswith("/enclave") and argv[1:3] == [command, "serve"]
    assert argv[argv.index("--ip") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == port
    assert service["environment"]["ENCLAVE_HOME"] == str(home)
    return service


def test_hub_api_and_services_listen_on_loopback_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load(tmp_path, monkeypatch, ENCLAVE_HUB_API_PORT="9081", ENCLAVE_GATEWAY_PORT="9101")
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:9081"
    managed = {s["name"]: s for s in c.JupyterHub.services if "command" in s and "url" in s}
    assert set(managed) == {"gateway", "export-review", "console", "runs"}
    assert managed["gateway"]["url"] == "http://127.0.0.1:9101"
    for service in managed.values():
        assert service["url"].startswith("http://127.0.0.1:")
        command = service["command"]
        assert command[command.index("--ip") + 1] == "127.0.0.1"


def test_monitoring_service_may_read_metrics_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "monitoring.token"
    token_file.write_text("a" * 64 + "\n")
    token_file.chmod(0o600)
    c = load(tmp_path, monkeypatch, ENCLAVE_MONITORING_TOKEN_FILE=str(token_file))
    (monitoring,) = [s for s in c.JupyterHub.services if s["name"] == "monitoring"]
    assert monitoring == {"name": "monitoring", "api_token": "a" * 64}  # no URL, no command
    granted = [r for r in c.JupyterHub.load_roles if "monitoring" in r.get("services", [])]
    assert [r["scopes"] for r in granted] == [["read:metrics"]]
    stewards = [r for r in c.JupyterHub.load_roles if r["name"] == "enclave-steward"]
    assert "read:metrics" in stewards[0]["scopes"]
    # a token file others can read is refused before it is used
    token_file.chmod(0o644)
    with pytest.raises(Exception, match="secret"):
        load(tmp_path, monkeypatch, ENCLAVE_MONITORING_TOKEN_FILE=str(token_file))
