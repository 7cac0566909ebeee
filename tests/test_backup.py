"""``enclave admin backup`` / ``restore`` (issue #13): back up an enclave with state in it, destroy
it, restore it into a new home and database, and check that the audit chain verifies, the data is
back, and a backup changed by one byte is refused. On SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from enclave.cli import app
from enclave.db.session import dispose_all
from tests.conftest import _fresh_postgres_database, write_yaml
from tests.harness.factories import (
    NO_APPLICATION_ARGS,
    PATIENT_COLUMNS,
    patients_table,
    project_spec,
    write_dataset,
)

runner = CliRunner()
PASSWORD = "Correct-Horse-42-battery"


class Site:
    """Where one enclave lives: a home and a state database URL (empty: SQLite in the home)."""

    def __init__(self, home: Path, url: str = "") -> None:
        self.home = home
        self.url = url

    def run(self, *args: str, code: int = 0, stdin: str | None = None) -> Any:
        result = runner.invoke(
            app, ["--home", str(self.home), *args], env={"ENCLAVE_DATABASE_URL": self.url}, input=stdin
        )
        assert result.exit_code == code, result.output
        return json.loads(result.stdout) if "--json" in args else result.stdout


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sites(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Site, Site, str]]:
    """The enclave to back up, a fresh one to restore into, and the backend."""
    if request.param == "sqlite":
        yield Site(tmp_path / "home"), Site(tmp_path / "restored"), "sqlite"
        dispose_all()
        return
    admin_url = request.getfixturevalue("postgres_admin_url")
    for source_url in _fresh_postgres_database(admin_url):
        for target_url in _fresh_postgres_database(admin_url):
            yield Site(tmp_path / "home", source_url), Site(tmp_path / "restored", target_url), "postgresql"


def make_state(site: Site, tmp_path: Path) -> None:
    site.run("init", "--actor", "steward")
    site.run("user", "add", "bob", "--json", stdin=PASSWORD + "\n")
    source = write_dataset(tmp_path / "src", "patients", patients_table(), PATIENT_COLUMNS)
    site.run("dataset", "register", str(source), "--json")
    spec = project_spec(datasets={"patients": ["pid", "zip", "age", "sex", "dx", "income"]})
    site.run(
        "project",
        "create",
        str(write_yaml(tmp_path / "project.yaml", spec)),
        *NO_APPLICATION_ARGS,
        "--no-prepare",
        "--json",
    )
    assert site.run("audit", "verify", "--json")["ok"] is True


def destroy(site: Site, backend: str) -> None:
    dispose_all()
    shutil.rmtree(site.home)
    if backend == "postgresql":  # drop every table: the database as good as gone
        engine = create_engine(site.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_backup_destroy_restore(sites: tuple[Site, Site, str], tmp_path: Path) -> None:
    source, target, backend = sites
    make_state(source, tmp_path)
    before = source.run("audit", "tail", "-n", "100", "--json")
    certificate = source.home / "certificates" / "old-2025-destruction.json"
    certificate.parent.mkdir(mode=0o700)
    certificate.write_text('{"project": "old-2025"}')  # stands for a destruction certificate
    out = tmp_path / "backups" / "one"

    taken = source.run("admin", "backup", "--out", str(out), "--actor", "steward", "--json")
    manifest = taken["manifest"]
    assert manifest["database"]["backend"] == backend
    assert manifest["audit_head"]["seq"] == len(before) + 1  # the backup itself is audited first
    assert mode(out) == 0o700
    assert {p.name for p in out.iterdir()} == {"manifest.json", *manifest["parts"]}
    assert all(mode(p) == 0o600 for p in out.iterdir())
    public_key = source.run("audit", "public-key", "--json")["public_key"]
    assert manifest["public_key"] == public_key
    assert source.run("admin", "verify-backup", "--from", str(out), "--expect-key", public_key, "--json")[
        "ok"
    ]

    destroy(source, backend)
    restored = target.run("admin", "restore", "--from", str(out), "--expect-key", public_key, "--json")
    assert restored["ok"] is True and restored["audit"]["ok"] is True
    assert restored["audit"]["checked"] == manifest["audit_head"]["seq"]
    assert restored["audit_head"] == manifest["audit_head"]

    # The data and the chain are back, and the restored enclave keeps appending to the same chain.
    assert [u["name"] for u in target.run("user", "list", "--json")] == ["bob"]
    assert target.run("dataset", "show", "patients", "--json")["rows"] == 50
    assert target.run("project", "show", "cardio-2026", "--json")["spec"]["id"] == "cardio-2026"
    events = target.run("audit", "tail", "-n", "100", "--json")
    assert events[: len(before)] == before
    assert [e["action"] for e in events[len(before) :]] == ["enclave.backup", "enclave.restore"]
    verified = target.run("audit", "verify", "--json")
    assert verified["ok"] is True and verified["checked"] == len(before) + 2
    assert mode(target.home) == 0o700 and mode(target.home / "vault") == 0o700
    assert mode(target.home / "vault" / "audit" / "checkpoints.jsonl") == 0o600
    restored_certificate = target.home / "certificates" / certificate.name
    assert restored_certificate.read_text() == '{"project": "old-2025"}'
    assert mode(restored_certificate) == 0o600

    # Restoring over it again is refused, unless forced (the old vault is moved aside, not deleted).
    again = target.run("admin", "restore", "--from", str(out), "--json", code=2)
    assert again["error"]["code"] == "restore_target_not_empty"
    assert again["error"]["message"] and again["error"]["message_zh"]
    forced = target.run("admin", "restore", "--from", str(out), "--force", "--json")
    assert forced["ok"] is True and forced["audit"]["checked"] == manifest["audit_head"]["seq"]
    assert any(".replaced-" in p for p in forced["moved_aside"])
    assert [u["name"] for u in target.run("user", "list", "--json")] == ["bob"]


def flip_one_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("part", "code"),
    [
        ("state", "backup_hash_mismatch"),
        ("vault.tar", "backup_hash_mismatch"),
        ("checkpoints.jsonl", "backup_hash_mismatch"),
        ("manifest.json", "backup_signature_invalid"),
    ],
)
def test_a_backup_changed_by_one_byte_is_refused(
    sites: tuple[Site, Site, str], tmp_path: Path, part: str, code: str
) -> None:
    source, target, _backend = sites
    make_state(source, tmp_path)
    out = tmp_path / "backup"
    manifest = source.run("admin", "backup", "--out", str(out), "--json")["manifest"]
    name = manifest["database"]["part"] if part == "state" else part
    path = out / name
    if name == "manifest.json":  # a byte of the recorded time, so the file still parses
        offset = path.read_bytes().index(manifest["created_at"].encode()) + 3
    else:
        offset = path.stat().st_size // 2
    flip_one_byte(path, offset)

    refused = target.run("admin", "restore", "--from", str(out), "--json", code=2)
    assert refused["error"]["code"] == code
    assert refused["error"]["message"] and refused["error"]["message_zh"]
    assert not (target.home / "vault").exists()  # nothing was restored
    assert source.run("admin", "verify-backup", "--from", str(out), "--json", code=2)["error"]["code"] == code


def test_backup_refuses_a_used_folder_and_a_missing_manifest(tmp_path: Path) -> None:
    site = Site(tmp_path / "home")
    site.run("init")
    used = tmp_path / "used"
    used.mkdir()
    (used / "something").write_text("x")
    assert site.run("admin", "backup", "--out", str(used), "--json", code=2)["error"]["code"] == (
        "backup_out_not_empty"
    )
    inside = site.run("admin", "backup", "--out", str(site.home / "vault" / "b"), "--json", code=2)
    assert inside["error"]["code"] == "backup_out_invalid"
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = Site(tmp_path / "new").run("admin", "restore", "--from", str(empty), "--json", code=2)
    assert missing["error"]["code"] == "backup_manifest_missing"


def test_expect_key_refuses_a_backup_signed_by_another_vault(tmp_path: Path) -> None:
    site = Site(tmp_path / "home")
    site.run("init")
    out = tmp_path / "backup"
    site.run("admin", "backup", "--out", str(out))
    refused = Site(tmp_path / "new").run(
        "admin", "restore", "--from", str(out), "--expect-key", "00" * 32, "--json", code=2
    )
    assert refused["error"]["code"] == "backup_key_mismatch"
