"""Who may read the enclave's state (issue #14 item 5): the home 0700, the state database and its
SQLite side files 0600, the outbox 0750, secrets private, whatever umask the caller had."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave import config
from enclave.db.session import dispose_all
from tests.harness.cli import enclave_cli

cli = enclave_cli
PASSWORD = "Correct-Horse-9-Battery"
SIDE_FILES = config.SQLITE_SIDE_FILES


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("ENCLAVE_DATABASE_URL", raising=False)
    previous = os.umask(0o022)
    try:
        yield
    finally:
        dispose_all()
        os.umask(previous)


def python_with_umask_022(code: str, *args: str, env: dict[str, str] | None = None) -> None:
    """Run ``python -c code args`` in a child whose umask lets everyone read what it makes."""
    subprocess.run(
        [sys.executable, "-c", code, *args],
        check=True,
        env=env,
        capture_output=True,
        preexec_fn=lambda: os.umask(0o022),
    )


def assert_private_state(home: Path) -> None:
    layout = config.Paths(home)
    assert mode(home) == 0o700
    assert mode(layout.state_db) == 0o600
    for side in SIDE_FILES:
        path = home / f"state.db{side}"
        if path.exists():
            assert mode(path) == 0o600, path
    assert mode(layout.outbox) == 0o750
    for path in [layout.vault, *layout.vault.rglob("*")]:
        assert mode(path) & 0o077 == 0, path  # nothing in the vault for group or others


def test_init_makes_the_state_private_whatever_the_umask(tmp_path: Path, permissive_umask: None) -> None:
    home = tmp_path / "home"
    cli(home, "init", "--actor", "steward")
    cli(home, "user", "add", "alice", "--actor", "steward", stdin=PASSWORD + "\n")
    cli(home, "user", "totp", "alice", "--actor", "steward")  # the TOTP key: vault/keys
    assert (home / "vault" / "keys").is_dir()
    assert any((home / f"state.db{side}").exists() for side in SIDE_FILES)  # the engine is still open
    assert_private_state(home)


def test_init_tightens_a_home_made_before(tmp_path: Path, permissive_umask: None) -> None:
    home = tmp_path / "home"
    cli(home, "init", "--actor", "steward")
    dispose_all()
    for path in (home, home / "vault", home / "vault" / "secrets"):
        path.chmod(0o755)
    for name in ("state.db", *(f"state.db{side}" for side in SIDE_FILES)):
        (home / name).touch()
        (home / name).chmod(0o644)
    (home / "outbox").chmod(0o777)
    cli(home, "init", "--actor", "steward")
    assert_private_state(home)


def test_the_enclave_command_sets_umask_077(tmp_path: Path) -> None:
    """A file no code gives a mode to (the demo data) is private when made by the ``enclave`` command."""
    out = tmp_path / "demo"
    env = {**os.environ, "ENCLAVE_HOME": str(tmp_path / "home"), "ENCLAVE_DATABASE_URL": ""}
    python_with_umask_022(
        "from enclave.cli import main; main()", "demo-data", "--out", str(out), "--patients", "20", env=env
    )
    made = [out, *out.rglob("*")]
    assert len(made) > 1
    for path in made:
        assert mode(path) & 0o077 == 0, (path, oct(mode(path)))


def test_released_files_keep_the_outbox_modes_under_umask_077(tmp_path: Path) -> None:
    from export_review.outbox import LocalOutbox

    outbox = LocalOutbox(tmp_path / "home" / "outbox")
    previous = os.umask(config.PRIVATE_UMASK)
    try:
        outbox.put("req-1/files/table.csv", b"a,b\n1,2\n")
    finally:
        os.umask(previous)
    folders = [outbox.root, outbox.root / "req-1", outbox.root / "req-1" / "files"]
    assert [mode(folder) for folder in folders] == [config.OUTBOX_MODE] * 3
    assert mode(outbox.root / "req-1" / "files" / "table.csv") == 0o640


def test_the_services_set_umask_077_when_they_start(tmp_path: Path) -> None:
    """The gateway and the export review start through ``HubServiceApp.start``."""
    probe = """
import sys
from enclave.services.hub import HubServiceApp

class Probe(HubServiceApp):
    async def serve(self):
        open(sys.argv[1], "w").close()  # stands for whatever the service writes
        raise SystemExit(0)

Probe().start()
"""
    made = tmp_path / "written-by-the-service"
    python_with_umask_022(probe, str(made))
    assert mode(made) == 0o600
