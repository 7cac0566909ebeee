"""Secrets from 0600 files, never from the environment (deploy/single-host): the state database
URL, the services' hub tokens, the S3 outbox credentials, and the hub's production settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from traitlets.config.loader import PyFileConfigLoader

from enclave import config
from enclave.errors import BadInput
from export_review.outbox import S3Outbox, outbox_for
from export_review.policy import OutboxSettings

REPO = Path(__file__).resolve().parents[2]


def _secret(path: Path, value: str, mode: int = 0o600) -> Path:
    path.write_text(value + "\n")
    path.chmod(mode)
    return path


def test_a_secret_file_is_read_stripped(tmp_path: Path) -> None:
    assert config.read_secret_file(_secret(tmp_path / "s", "  token  ")) == "token"
    assert config.read_secret_file(_secret(tmp_path / "r", "token", 0o400)) == "token"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_secret_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(BadInput) as refused:
        config.read_secret_file(_secret(tmp_path / "s", "token", mode))
    assert refused.value.code == "secret_file_permissions"


def test_missing_empty_linked_and_special_secret_files_are_refused(tmp_path: Path) -> None:
    cases = {"secret_file_missing": tmp_path / "absent", "secret_file_empty": _secret(tmp_path / "e", "")}
    (tmp_path / "link").symlink_to(_secret(tmp_path / "target", "token"))
    cases["secret_file_unreadable"] = tmp_path / "link"  # a link could be swapped for another file
    os.mkfifo(tmp_path / "fifo", 0o600)
    cases["secret_file_permissions"] = tmp_path / "fifo"  # not a regular file; and it must not block
    for code, path in cases.items():
        with pytest.raises(BadInput) as refused:
            config.read_secret_file(path)
        assert refused.value.code == code, path


def test_database_url_comes_from_the_named_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+psycopg://enclave:s3cret@127.0.0.1:5432/enclave"
    monkeypatch.delenv(config.DATABASE_URL_ENV, raising=False)
    monkeypatch.setenv(config.DATABASE_URL_FILE_ENV, str(_secret(tmp_path / "database-url", url)))
    assert config.database_url(tmp_path) == url
    monkeypatch.setenv(config.DATABASE_URL_ENV, url)
    with pytest.raises(BadInput) as refused:
        config.database_url(tmp_path)
    assert refused.value.code == "database_url_ambiguous"
    monkeypatch.delenv(config.DATABASE_URL_FILE_ENV)
    assert config.database_url(tmp_path) == url
    monkeypatch.delenv(config.DATABASE_URL_ENV)
    assert config.database_url(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'state.db'}"


def test_a_database_url_file_others_can_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(config.DATABASE_URL_ENV, raising=False)
    monkeypatch.setenv(config.DATABASE_URL_FILE_ENV, str(_secret(tmp_path / "u", "postgresql://x", 0o644)))
    with pytest.raises(BadInput):
        config.database_url(tmp_path)


def test_a_service_reads_its_hub_token_from_the_named_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from enclave.services.hub import HubServiceApp

    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN_FILE", str(_secret(tmp_path / "gateway.token", "abc123")))
    assert HubServiceApp().api_token == "abc123"
    _secret(tmp_path / "gateway.token", "abc123", 0o644)
    with pytest.raises(BadInput):
        _ = HubServiceApp().api_token


def test_export_review_reads_its_cookie_secret_from_the_named_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fixed login cookie secret keeps reviewers logged in across restarts, without the environment."""
    from export_review.web.app import ExportReviewApp

    monkeypatch.delenv("JUPYTERHUB_COOKIE_SECRET", raising=False)
    monkeypatch.setenv("JUPYTERHUB_COOKIE_SECRET_FILE", str(_secret(tmp_path / "cookie", "c0ffee" * 8)))
    assert ExportReviewApp().cookie_secret == "c0ffee" * 8
    _secret(tmp_path / "cookie", "c0ffee" * 8, 0o640)
    with pytest.raises(BadInput) as refused:
        _ = ExportReviewApp().cookie_secret
    assert refused.value.code == "secret_file_permissions"


def test_the_console_reads_its_hub_token_and_cookie_secret_from_the_named_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As an external service (deploy/single-host) the steward console holds no secret in its environment."""
    from enclave.console.app import ConsoleApp

    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    monkeypatch.delenv("JUPYTERHUB_COOKIE_SECRET", raising=False)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN_FILE", str(_secret(tmp_path / "console.token", "t0ken" * 8)))
    monkeypatch.setenv("JUPYTERHUB_COOKIE_SECRET_FILE", str(_secret(tmp_path / "cookie", "c0ffee" * 8)))
    console = ConsoleApp()
    assert (console.api_token, console.cookie_secret) == ("t0ken" * 8, "c0ffee" * 8)
    _secret(tmp_path / "cookie", "c0ffee" * 8, 0o644)
    with pytest.raises(BadInput) as refused:
        _ = ConsoleApp().cookie_secret
    assert refused.value.code == "secret_file_permissions"


def test_s3_outbox_credentials_come_from_the_named_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENCLAVE_S3_ACCESS_KEY", raising=False)
    monkeypatch.delenv("ENCLAVE_S3_SECRET_KEY", raising=False)
    credentials = _secret(tmp_path / "s3.yaml", "access_key: AKIDEXAMPLE\nsecret_key: wJalrXUtnFEMIEXAMPLE")
    settings = OutboxSettings(
        url="s3://exports/site", endpoint="127.0.0.1:9000", credentials_file=str(credentials)
    )
    outbox = outbox_for(settings, config.paths(tmp_path))  # builds the client; sends nothing
    assert isinstance(outbox, S3Outbox)
    assert outbox.location("x.csv").startswith("s3://exports/")
    credentials.chmod(0o644)
    with pytest.raises(BadInput) as refused:
        outbox_for(settings, config.paths(tmp_path))
    assert refused.value.code == "secret_file_permissions"
    _secret(credentials, "- not a mapping")
    with pytest.raises(BadInput) as refused:
        outbox_for(settings, config.paths(tmp_path))
    assert refused.value.code == "outbox_credentials_invalid"


def _load_hub_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **environment: str) -> object:
    for name, value in {"ENCLAVE_HOME": str(tmp_path / "home"), **environment}.items():
        monkeypatch.setenv(name, value)
    loader = PyFileConfigLoader("jupyterhub_config.py", path=str(REPO / "hub_config"))
    return loader.load_config()


def test_hub_production_settings_read_secret_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    for name in ("gateway", "export-review", "console", "idle-culler"):
        _secret(tokens / f"{name}.token", f"token-of-{name}")
    hub = _load_hub_config(
        monkeypatch,
        tmp_path,
        ENCLAVE_HUB_SERVICES="none",
        ENCLAVE_HUB_EXTERNAL_SERVICES="gateway,export-review,console,idle-culler",
        ENCLAVE_CONSOLE_PORT="8103",
        ENCLAVE_SERVICE_TOKEN_DIR=str(tokens),
        ENCLAVE_PROXY_API_URL="http://127.0.0.1:8001",
        ENCLAVE_PROXY_AUTH_TOKEN_FILE=str(_secret(tmp_path / "proxy-token", "proxy-token-value")),
        ENCLAVE_HUB_SSL_CERT="/etc/enclave/proxy/tls.crt",
        ENCLAVE_HUB_SSL_KEY="/etc/enclave/proxy/tls.key",
    )
    services = {service["name"]: service for service in hub.JupyterHub.services}
    assert services["gateway"]["api_token"] == "token-of-gateway"
    assert services["export-review"]["url"] == "http://127.0.0.1:8102"
    assert "command" not in services["gateway"]  # external: the hub starts nothing
    assert services["console"] == {
        "name": "console",
        "api_token": "token-of-console",
        "url": "http://127.0.0.1:8103",
        "oauth_no_confirm": True,
    }
    assert set(services["idle-culler"]) == {"name", "api_token"}
    assert hub.ConfigurableHTTPProxy.should_start is False
    assert hub.ConfigurableHTTPProxy.auth_token == "proxy-token-value"
    assert hub.JupyterHub.ssl_cert == "/etc/enclave/proxy/tls.crt"
    roles = {role["name"]: role for role in hub.JupyterHub.load_roles}
    assert roles["enclave-idle-culler"]["services"] == ["idle-culler"]
    assert set(roles["enclave-service"]["services"]) == {"gateway", "export-review", "console"}
    # Its own token stops a suspended project's servers, and nothing more.
    assert roles["enclave-console"]["services"] == ["console"]
    assert set(roles["enclave-console"]["scopes"]) == {"list:users", "read:servers", "delete:servers"}
    # Browsers (applicants, stewards) may log in to it through the hub.
    assert "access:services!service=console" in roles["user"]["scopes"]


def test_hub_refuses_an_external_token_file_others_can_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    _secret(tokens / "gateway.token", "token", 0o644)
    with pytest.raises(BadInput):
        _load_hub_config(
            monkeypatch,
            tmp_path,
            ENCLAVE_HUB_SERVICES="none",
            ENCLAVE_HUB_EXTERNAL_SERVICES="gateway",
            ENCLAVE_SERVICE_TOKEN_DIR=str(tokens),
        )


def test_hub_config_without_production_settings_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ENCLAVE_HUB_EXTERNAL_SERVICES", "ENCLAVE_PROXY_API_URL", "ENCLAVE_HUB_SSL_CERT"):
        monkeypatch.delenv(name, raising=False)
    hub = _load_hub_config(monkeypatch, tmp_path, ENCLAVE_HUB_SERVICES="all")
    assert "should_start" not in hub.ConfigurableHTTPProxy
    assert "ssl_cert" not in hub.JupyterHub
    assert all("command" in service for service in hub.JupyterHub.services)
