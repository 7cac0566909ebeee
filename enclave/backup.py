"""Backing up an enclave and restoring it (issue #13): the state database, the vault, the audit
checkpoint log, and a signed manifest of them.

A backup is a folder (0700, every file 0600) holding:

* ``checkpoints.jsonl``: the vault's audit checkpoint log, copied **first**, so every checkpoint in
  it is of a record the database dump below already holds;
* ``state.pgdump`` (PostgreSQL: ``pg_dump -Fc`` under an exported snapshot, the same snapshot the
  audit head in the manifest is read from) or ``state.sqlite3`` (SQLite: the online backup API);
* ``vault.tar``: the vault (keys, raw-data copies, prepared data, export archive), taken **after**
  the dump, so every file a database row names is in it; the checkpoint log inside it is left out;
* ``home-files.tar``: the home's top-level settings files (``enclave.yaml``, ``export-review.yaml``)
  and its signed destruction certificates (``certificates/``);
* ``manifest.json``: format, time, database backend and Alembic revision, the audit head
  ``(seq, hash)`` of the dump, the sha256 and size of each part, signed with the vault's audit
  checkpoint key (Ed25519). ``enclave audit public-key`` prints the key to hold it against.

``restore`` checks the signature and every hash before it touches anything, refuses a target that
holds a database or vault files unless forced (then the old files are moved aside, never deleted),
restores the database and the vault, and runs the audit chain's verification on the result.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from enclave import audit, audit_checkpoints, audit_keys, config, db
from enclave.audit import AuditAction, VerifyResult
from enclave.config import Paths
from enclave.db.session import dispose_all
from enclave.errors import EnclaveError
from enclave.files import PRIVATE_FILE, fsync_path, private_dir, sha256_file

FORMAT = "enclave-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PART_CHECKPOINTS = "checkpoints.jsonl"
PART_SQLITE = "state.sqlite3"
PART_POSTGRES = "state.pgdump"
PART_VAULT = "vault.tar"
PART_HOME = "home-files.tar"
VAULT_ARCNAME = "vault"
CERTIFICATES = "certificates"  # enclave.prepare.destroy: signed destruction certificates
# Files written by ``enclave.files.write_private`` before their rename: never complete.
_TEMP_NAME = re.compile(r"^\..+\.[a-z]+-[0-9a-f]{8}$")
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


class BackupError(EnclaveError):
    """A backup cannot be written, or a backup or its target cannot be trusted (exit 2)."""


def _error(code: str, en: str, zh: str, **details: Any) -> BackupError:
    return BackupError(code, en, zh, details=details)


# ---- small helpers --------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _new_private_file(path: Path) -> Path:
    """Create ``path`` empty and 0600 whatever the umask; a tool then writes into it."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    return path


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _backend(url: str) -> str:
    return make_url(url).get_backend_name()


def _redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as ``pg_dump``/``psql`` take it, and the environment that carries its password
    (never the command line, which other accounts can read in the process list)."""
    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return dsn, env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise _error(
            "backup_tool_missing",
            f"`{name}` is not installed: install the PostgreSQL client tools of the server's version",
            f"未安装 `{name}`：请安装与服务器版本一致的 PostgreSQL 客户端工具",
        )
    return found


def _tool_failed(code: str, what: str, stderr: str) -> BackupError:
    return _error(
        code,
        f"{what} failed: {stderr.strip()[-400:]}",
        f"{what} 失败：{stderr.strip()[-400:]}",
    )


def _has_files(directory: Path) -> bool:
    return directory.is_dir() and any(p.is_file() or p.is_symlink() for p in directory.rglob("*"))


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise _error(
            "backup_database_unsupported",
            "An in-memory SQLite database cannot be backed up or restored",
            "内存中的 SQLite 数据库无法备份或恢复",
        )
    return Path(database).expanduser().resolve()


# ---- backup ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseDump:
    """What the dump holds: its part name, the audit head and the Alembic revision it was taken at."""

    part: str
    head_seq: int
    head_hash: str
    revision: str | None


def _copy_checkpoint_log(paths: Paths, target: Path) -> int:
    """Copy the checkpoint log whole lines only (a writer appends under an exclusive lock)."""
    _new_private_file(target)
    source = audit_checkpoints.log_path(paths)
    if not source.exists():
        return 0
    with source.open("rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        data = handle.read()
    data = data[: data.rfind(b"\n") + 1]
    target.write_bytes(data)
    return data.count(b"\n")


def _dump_sqlite(url: str, out: Path) -> DatabaseDump:
    target = _new_private_file(out / PART_SQLITE)
    source = sqlite3.connect(_sqlite_path(url), timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # a consistent copy even while the services write
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        seq, hash_ = copy.execute("SELECT seq, last_hash FROM audit_head WHERE id = 1").fetchone()
        revision = copy.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        copy.close()
        source.close()
    return DatabaseDump(PART_SQLITE, int(seq), str(hash_), revision[0] if revision else None)


def _dump_postgres(url: str, out: Path) -> DatabaseDump:
    pg_dump = _tool("pg_dump")
    target = _new_private_file(out / PART_POSTGRES)
    dsn, env = _libpq(url)
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            # pg_dump reads under this transaction's snapshot: the head read here is the dump's head.
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            head = conn.execute(text("SELECT seq, last_hash FROM audit_head WHERE id = 1")).one()
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            done = subprocess.run(
                [pg_dump, "--format=custom", f"--snapshot={snapshot}", "--file", str(target), dsn],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            conn.rollback()
    finally:
        engine.dispose()
    if done.returncode != 0:
        raise _tool_failed("backup_dump_failed", "pg_dump", done.stderr)
    return DatabaseDump(PART_POSTGRES, int(head.seq), str(head.last_hash), revision)


def _tar_vault(paths: Paths, target: Path) -> None:
    skipped = audit_checkpoints.log_path(paths).relative_to(paths.vault).as_posix()

    def keep(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
        inside = member.name.partition("/")[2]
        if inside == skipped or _TEMP_NAME.match(Path(member.name).name):
            return None
        member.uid = member.gid = 0
        member.uname = member.gname = ""
        return member

    _new_private_file(target)
    with tarfile.open(target, "w") as tar:
        tar.add(paths.vault, arcname=VAULT_ARCNAME, filter=keep)


def _home_files(paths: Paths, database_url: str) -> list[Path]:
    """The home's top-level settings files (not the SQLite state, which the dump holds)."""
    state = {paths.state_db.name, *(paths.state_db.name + side for side in config.SQLITE_SIDE_FILES)}
    if _backend(database_url) == "sqlite":
        sqlite_file = _sqlite_path(database_url)
        state |= {sqlite_file.name, *(sqlite_file.name + side for side in config.SQLITE_SIDE_FILES)}
    return sorted(
        p
        for p in paths.home.iterdir()
        if p.is_file() and not p.is_symlink() and not p.name.startswith(".") and p.name not in state
    )


def _home_folder_files(paths: Paths) -> list[Path]:
    """The files of the home's folders that belong in a backup (destruction certificates)."""
    folder = paths.home / CERTIFICATES
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.is_symlink())


def _tar_home_files(paths: Paths, files: list[Path], target: Path) -> None:
    _new_private_file(target)
    with tarfile.open(target, "w") as tar:
        for path in [*files, *_home_folder_files(paths)]:
            tar.add(path, arcname=path.relative_to(paths.home).as_posix(), recursive=False)


def _check_out(paths: Paths, out: Path) -> Path:
    out = out.expanduser().resolve()
    if out.is_relative_to(paths.vault) or paths.vault.resolve().is_relative_to(out):
        raise _error(
            "backup_out_invalid",
            f"{out} overlaps the vault: write the backup outside {paths.vault}",
            f"{out} 与保险库重叠：请将备份写到 {paths.vault} 之外",
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise _error(
            "backup_out_not_empty",
            f"{out} exists and is not an empty folder: give a new folder for each backup",
            f"{out} 已存在且不是空文件夹：每次备份请指定一个新文件夹",
        )
    return private_dir(out)


def backup(database_url: str, paths: Paths, out: Path, *, actor: str) -> dict[str, Any]:
    """Write a backup of the enclave at ``paths`` and ``database_url`` into the new folder ``out``;
    return its manifest. The backup itself is audited (it holds every byte of the enclave)."""
    audit.use_vault(database_url, paths)
    factory = db.connect(database_url)  # refuses an uninitialised enclave
    out = _check_out(paths, out)
    with db.session_scope(factory) as session:
        audit.record(session, AuditAction.ENCLAVE_BACKUP, actor=actor, obj=f"backup:{out}")
    key = audit_keys.load_checkpoint_key(paths, create=True)  # signs the manifest; in the vault tar
    assert key is not None
    checkpoints = _copy_checkpoint_log(paths, out / PART_CHECKPOINTS)
    if _backend(database_url) == "sqlite":
        dump = _dump_sqlite(database_url, out)
    else:
        dump = _dump_postgres(database_url, out)
    _tar_vault(paths, out / PART_VAULT)
    _tar_home_files(paths, _home_files(paths, database_url), out / PART_HOME)
    parts = {
        name: {"sha256": sha256_file(out / name), "bytes": (out / name).stat().st_size}
        for name in (PART_CHECKPOINTS, dump.part, PART_VAULT, PART_HOME)
    }
    body: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created_at": _now(),
        "created_by": actor,
        "home": str(paths.home),
        "database": {"backend": _backend(database_url), "part": dump.part, "revision": dump.revision},
        "audit_head": {"seq": dump.head_seq, "hash": dump.head_hash},
        "checkpoints": checkpoints,
        "parts": parts,
        "public_key": _public_hex(key),
    }
    manifest = {**body, "signature": key.sign(_canonical(body)).hex()}
    target = _new_private_file(out / MANIFEST)
    target.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for name in (*parts, MANIFEST):
        fsync_path(out / name)
    fsync_path(out)
    return manifest


# ---- checking a backup ----------------------------------------------------------------------------


def _manifest_invalid(source: Path, why: str) -> BackupError:
    return _error(
        "backup_manifest_invalid",
        f"The backup's manifest {source / MANIFEST} is not a valid enclave backup manifest ({why})",
        f"备份清单 {source / MANIFEST} 不是有效的 enclave 备份清单（{why}）",
    )


def _read_manifest(source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _error(
            "backup_manifest_missing",
            f"{source} holds no {MANIFEST}: it is not a complete backup",
            f"{source} 中没有 {MANIFEST}：这不是一个完整的备份",
        ) from None
    except (OSError, ValueError) as error:
        raise _manifest_invalid(source, type(error).__name__) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _manifest_invalid(source, "format")
    if manifest.get("version") != FORMAT_VERSION:
        raise _error(
            "backup_format_unsupported",
            f"The backup's format version {manifest.get('version')!r} is not {FORMAT_VERSION}",
            f"备份格式版本 {manifest.get('version')!r} 不是 {FORMAT_VERSION}",
        )
    return manifest


def _check_signature(source: Path, manifest: dict[str, Any], expect_key: str | None) -> str:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    public_hex = str(manifest.get("public_key", ""))
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(str(manifest.get("signature", ""))), _canonical(body)
        )
    except (InvalidSignature, ValueError, TypeError):
        raise _error(
            "backup_signature_invalid",
            f"The manifest of {source} is not signed by the key it names: the backup was changed",
            f"{source} 的清单签名与其声明的密钥不符：备份已被改动",
        ) from None
    if expect_key is not None and expect_key.strip().lower() != public_hex:
        raise _error(
            "backup_key_mismatch",
            "The backup is signed by another key than the one expected (`enclave audit public-key`)",
            "备份的签名密钥不是预期的密钥（`enclave audit public-key`）",
            public_key=public_hex,
        )
    return public_hex


def _check_parts(source: Path, manifest: dict[str, Any]) -> None:
    parts = manifest.get("parts")
    database = manifest.get("database")
    if not isinstance(parts, dict) or not isinstance(database, dict):
        raise _manifest_invalid(source, "parts")
    expected = {PART_CHECKPOINTS, PART_VAULT, PART_HOME, database.get("part")}
    if set(parts) != expected or database.get("part") not in (PART_SQLITE, PART_POSTGRES):
        raise _manifest_invalid(source, "parts")
    for name, entry in sorted(parts.items()):
        path = source / name
        if not path.is_file():
            raise _error(
                "backup_part_missing",
                f"The backup part {name} is missing from {source}",
                f"{source} 中缺少备份部分 {name}",
                part=name,
            )
        if path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
            raise _error(
                "backup_hash_mismatch",
                f"The backup part {name} does not match its sha256 in the manifest: changed or damaged",
                f"备份部分 {name} 与清单中的 sha256 不符：它已被改动或损坏",
                part=name,
            )


def _check_vault_key(source: Path, public_hex: str) -> None:
    """The vault in the backup holds the key the manifest is signed with."""
    probe = Paths(Path("/"))
    member = f"{VAULT_ARCNAME}/{audit_keys.checkpoint_key_path(probe).relative_to(probe.vault).as_posix()}"
    try:
        with tarfile.open(source / PART_VAULT) as tar:
            handle = tar.extractfile(member)
            raw = handle.read() if handle is not None else b""
        found = _public_hex(Ed25519PrivateKey.from_private_bytes(raw))
    except (KeyError, ValueError, tarfile.TarError):
        found = None
    if found != public_hex:
        raise _error(
            "backup_key_mismatch",
            "The vault in the backup does not hold the key its manifest is signed with",
            "备份中的保险库不包含签署清单所用的密钥",
        )


def verify_backup(source: Path, *, expect_key: str | None = None) -> dict[str, Any]:
    """The manifest of the backup in ``source`` once its signature, every part's sha256 and the
    vault's key have been checked; a stable error code otherwise."""
    source = source.expanduser().resolve()
    manifest = _read_manifest(source)
    public_hex = _check_signature(source, manifest, expect_key)
    _check_parts(source, manifest)
    _check_vault_key(source, public_hex)
    return manifest


# ---- restore --------------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    """What ``restore`` did, and the verification of the restored audit chain."""

    home: str
    database: str
    audit_head: dict[str, Any]
    audit: VerifyResult
    moved_aside: list[str] = field(default_factory=list)
    kept_home_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.audit.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "home": self.home,
            "database": self.database,
            "audit_head": self.audit_head,
            "audit": self.audit.to_dict(),
            "moved_aside": self.moved_aside,
            "kept_home_files": self.kept_home_files,
        }


def _postgres_tables(url: str) -> list[tuple[str, str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema <> ALL(:system) ORDER BY 1, 2"
                ),
                {"system": list(_SYSTEM_SCHEMAS)},
            ).all()
    except OperationalError as error:
        raise _error(
            "restore_database_unreachable",
            f"The target database {_redact(url)} cannot be reached: create it (empty) first",
            f"无法连接目标数据库 {_redact(url)}：请先创建该（空）数据库",
            reason=type(error.orig).__name__,
        ) from None
    finally:
        engine.dispose()
    return [(str(schema), str(name)) for schema, name in rows]


def _sqlite_has_tables(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    except sqlite3.DatabaseError:
        return True  # something is there, and it is not ours to judge
    finally:
        conn.close()


def _target_contents(database_url: str, paths: Paths) -> list[str]:
    found = []
    if _backend(database_url) == "sqlite":
        if _sqlite_has_tables(_sqlite_path(database_url)):
            found.append("database")
    elif _postgres_tables(database_url):
        found.append("database")
    if _has_files(paths.vault):
        found.append("vault")
    return found


def _move_aside(path: Path, stamp: str) -> Path | None:
    if not path.exists():
        return None
    aside = path.with_name(f"{path.name}.replaced-{stamp}")
    path.rename(aside)
    return aside


def _check_revision(source: Path, manifest: dict[str, Any]) -> None:
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    from enclave.db.session import alembic_config

    revision = manifest["database"].get("revision")
    if revision is None:
        return
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    try:
        known = scripts.get_revision(revision) is not None
    except (CommandError, RevisionError):
        known = False
    if not known:
        raise _error(
            "backup_schema_unknown",
            f"The backup's schema revision {revision} is unknown to this version of the enclave: "
            "restore it with the version that wrote it",
            f"此版本的 enclave 不认识备份的数据库结构版本 {revision}：请使用写出它的版本恢复",
        )


def _restore_sqlite(source: Path, database_url: str) -> None:
    target = _sqlite_path(database_url)
    config.private_sqlite_file(target)
    backup_copy = sqlite3.connect(f"file:{source / PART_SQLITE}?mode=ro", uri=True)
    restored = sqlite3.connect(target, timeout=30)
    try:
        backup_copy.backup(restored)
        restored.execute("PRAGMA journal_mode=WAL")
    finally:
        restored.close()
        backup_copy.close()


def _restore_postgres(source: Path, database_url: str, *, force: bool) -> None:
    """Restore the dump in one transaction (``psql --single-transaction``): all of it or nothing.
    Forced, the tables already there are dropped first, in the same transaction."""
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    dsn, env = _libpq(database_url)
    prefix = ""
    if force:
        prefix = "".join(
            f'DROP TABLE IF EXISTS "{schema}"."{name}" CASCADE;\n'
            for schema, name in _postgres_tables(database_url)
        )
    clean = ["--clean", "--if-exists"] if force else []
    with tempfile.TemporaryFile() as restore_err, tempfile.TemporaryFile() as psql_err:
        loader = subprocess.Popen(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", "-", dsn],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=psql_err,
            env=env,
        )
        assert loader.stdin is not None
        try:
            loader.stdin.write(prefix.encode("utf-8"))
            loader.stdin.flush()
            dumper = subprocess.run(
                [pg_restore, "--no-owner", *clean, "--file", "-", str(source / PART_POSTGRES)],
                stdout=loader.stdin,
                stderr=restore_err,
                env=env,
                check=False,
            )
        except BrokenPipeError:  # psql stopped at an error; its message says which
            dumper = None
        finally:
            with contextlib.suppress(BrokenPipeError):
                loader.stdin.close()
        loader.wait()
        if loader.returncode != 0:
            psql_err.seek(0)
            raise _tool_failed("restore_failed", "psql", psql_err.read().decode("utf-8", "replace"))
        if dumper is not None and dumper.returncode != 0:
            restore_err.seek(0)
            raise _tool_failed("restore_failed", "pg_restore", restore_err.read().decode("utf-8", "replace"))


def _restore_vault(source: Path, paths: Paths) -> None:
    """Unpack the vault next to its place, put the checkpoint log in, then move it in."""
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=paths.home))
    try:
        with tarfile.open(source / PART_VAULT) as tar:
            tar.extractall(staging, filter="data")  # no absolute paths, no links out, no devices
        vault = staging / VAULT_ARCNAME
        log = vault / audit_checkpoints.log_path(paths).relative_to(paths.vault)
        private_dir(log.parent)
        _new_private_file(log)
        log.write_bytes((source / PART_CHECKPOINTS).read_bytes())
        if paths.vault.exists():
            paths.vault.rmdir()  # only an empty skeleton gets here (or it was moved aside)
        vault.rename(paths.vault)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _restore_home_files(source: Path, paths: Paths) -> list[str]:
    """Put the settings files and certificates back; a file the new home already has is kept (and
    reported)."""
    kept = []
    with tarfile.open(source / PART_HOME) as tar:
        for member in tar.getmembers():
            folder, _, name = member.name.rpartition("/")
            if not member.isfile() or folder not in ("", CERTIFICATES) or not name or name.startswith("."):
                continue
            target = private_dir(paths.home / folder) / name if folder else paths.home / name
            if target.exists():
                kept.append(member.name)
                continue
            handle = tar.extractfile(member)
            assert handle is not None
            _new_private_file(target)
            target.write_bytes(handle.read())
    return kept


def _empty_skeleton(directory: Path) -> None:
    """Remove a vault made only of empty folders (``enclave init`` on a new home makes one)."""
    if directory.is_dir() and not _has_files(directory):
        shutil.rmtree(directory)


def restore(
    database_url: str,
    paths: Paths,
    source: Path,
    *,
    actor: str,
    force: bool = False,
    expect_key: str | None = None,
) -> RestoreResult:
    """Restore the backup in ``source`` into the home ``paths`` and the database ``database_url``.

    Nothing is changed unless the backup verifies; a target that holds a database or vault files
    is refused unless ``force`` (files are moved aside as ``*.replaced-<time>``; PostgreSQL tables
    are dropped in the restore's own transaction). The restored chain is verified; when intact the
    restore is recorded in it.
    """
    source = source.expanduser().resolve()
    manifest = verify_backup(source, expect_key=expect_key)
    _check_revision(source, manifest)
    backend = manifest["database"]["backend"]
    if backend != _backend(database_url):
        raise _error(
            "restore_backend_mismatch",
            f"The backup holds a {backend} database but the target is {_backend(database_url)}",
            f"备份中是 {backend} 数据库，而目标是 {_backend(database_url)}",
        )
    occupied = _target_contents(database_url, paths)
    if occupied and not force:
        occupied_zh = "和".join("数据库" if o == "database" else "保险库" for o in occupied)
        raise _error(
            "restore_target_not_empty",
            f"The target already holds a {' and a '.join(occupied)}: restore into a new home and an empty "
            "database, or pass --force to replace them",
            f"目标中已有{occupied_zh}：请恢复到新的主目录和空数据库，或使用 --force 替换",
            target=occupied,
        )
    dispose_all()  # no pooled connection to the database being replaced
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved: list[Path | None] = []
    if "vault" in occupied:
        moved.append(_move_aside(paths.vault, stamp))
    paths.home.mkdir(parents=True, exist_ok=True, mode=config.HOME_MODE)
    os.chmod(paths.home, config.HOME_MODE)
    if backend == "sqlite":
        if "database" in occupied:
            state = _sqlite_path(database_url)
            for side in ("", *config.SQLITE_SIDE_FILES):
                moved.append(_move_aside(state.with_name(state.name + side), stamp))
        _restore_sqlite(source, database_url)
    else:
        _restore_postgres(source, database_url, force=force)
    _empty_skeleton(paths.vault)
    _restore_vault(source, paths)
    kept = _restore_home_files(source, paths)
    config.secure_home(paths)
    dispose_all()
    db.migrate(database_url)  # a backup of an older version is brought to this version's schema
    audit.use_vault(database_url, paths)
    factory = db.connect(database_url)
    with db.session_scope(factory) as session:
        verified = audit.verify(session, paths=paths)
    if verified.ok:
        with db.session_scope(factory) as session:
            audit.record(
                session,
                AuditAction.ENCLAVE_RESTORE,
                actor=actor,
                obj=f"backup:{source}",
                details={
                    "backup_created_at": manifest.get("created_at"),
                    "audit_head": manifest.get("audit_head"),
                    "forced": force,
                },
            )
    return RestoreResult(
        home=str(paths.home),
        database=_redact(database_url),
        audit_head=manifest["audit_head"],
        audit=verified,
        moved_aside=[str(p) for p in moved if p is not None],
        kept_home_files=kept,
    )
