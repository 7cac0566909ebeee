"""The disclosure ledger: which projects received data about a given subject (R-AUD-9, GB/T 39725 §7 g).

For each dataset version prepared for a project, the ledger keeps the set of subjects it contained,
as a keyed hash of the *source* subject id (HMAC-SHA256 under one enclave-wide ledger key kept in
the vault, mode 0600, truncated to 128 bits); raw ids are never stored. A steward who knows a
subject's source id can ask which projects, datasets and versions included them; released exports
are then found through those projects. Ledger files live in ``vault/ledger/<project>/v<version>/``
and are audit data: they outlive project destruction (six-year look-back).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import duckdb

from enclave.config import Paths
from enclave.deid.pseudonym import hmac_hex_sql, key_params
from enclave.deid.sql import quote_literal
from enclave.errors import BadInput
from enclave.files import (
    check_project_id,
    fsync_path,
    fsync_tree,
    private_dir,
    write_private,
)

LEDGER_KEY_FILE = "ledger.key"
LEDGER_KEY_BYTES = 32
SUBJECT_BYTES = 16
SUBJECT_HEX = SUBJECT_BYTES * 2
KEY_PARAM = "ledger_key"


def ledger_root(paths: Paths) -> Path:
    return paths.vault / "ledger"


def ledger_key(paths: Paths) -> bytes:
    """The enclave-wide ledger key, created on first use (vault/keys/ledger.key, 0600)."""
    keys = private_dir(paths.vault / "keys")
    path = keys / LEDGER_KEY_FILE
    if not path.exists():
        write_private(path, secrets.token_bytes(LEDGER_KEY_BYTES), replace=False)
    key = path.read_bytes()
    if len(key) != LEDGER_KEY_BYTES:
        raise BadInput("ledger_key_corrupt", "The disclosure ledger key is corrupt", "披露台账密钥已损坏")
    return key


def subject_hash(key: bytes, source_id: object) -> bytes:
    """The ledger's form of a source subject id (the Python twin of the SQL in :func:`stage_subjects`)."""
    return hmac.new(key, str(source_id).encode("utf-8"), hashlib.sha256).digest()[:SUBJECT_BYTES]


def subject_sql(value_sql: str) -> str:
    """SQL for the ledger form of a source id; needs :func:`subject_params` bound."""
    return f"unhex(left({hmac_hex_sql(value_sql, KEY_PARAM)}, {SUBJECT_HEX}))"


def subject_params(key: bytes) -> dict[str, bytes]:
    return key_params(KEY_PARAM, key)


def stage_subjects(
    con: duckdb.DuckDBPyConnection,
    stage_dir: Path,
    *,
    project_id: str,
    version: int,
    dataset: str,
    subjects_sql: str,
    params: dict[str, Any],
    prepared_at: str,
) -> int:
    """Write the distinct subjects that ``subjects_sql`` selects (one BLOB column, ``subject``, made
    with :func:`subject_sql`) to ``stage_dir/<dataset>.parquet``; returns how many.

    Nothing is visible in the ledger until :func:`commit_stage`.
    """
    private_dir(stage_dir)
    target = stage_dir / f"{dataset}.parquet"
    con.execute(
        f"COPY (SELECT DISTINCT subject, $project AS project, CAST($version AS INTEGER) AS version, "
        f"$dataset AS dataset, $prepared_at AS prepared_at FROM ({subjects_sql}) WHERE subject IS NOT NULL) "
        f"TO {quote_literal(str(target))} (FORMAT parquet)",
        {**params, "project": project_id, "version": version, "dataset": dataset, "prepared_at": prepared_at},
    )
    os.chmod(target, 0o600)
    (count,) = con.execute(f"SELECT count(*) FROM read_parquet({quote_literal(str(target))})").fetchone()  # type: ignore[misc]
    return int(count)


def commit_stage(paths: Paths, stage_dir: Path, project_id: str, version: int) -> Path:
    """Move staged entries into the ledger as one rename, replacing an earlier attempt's entries."""
    root = private_dir(ledger_root(paths))
    project_dir = private_dir(root / check_project_id(project_id))
    target = project_dir / f"v{int(version)}"
    fsync_tree(stage_dir)
    old = None
    if target.exists():
        old = root / f".trash-{project_id}-v{version}-{secrets.token_hex(4)}"
        os.replace(target, old)
    os.replace(stage_dir, target)
    fsync_path(project_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def projects_for_subject(paths: Paths, source_id: str) -> list[dict[str, Any]]:
    """Every (project, dataset, version) whose prepared data included the subject, oldest first."""
    root = ledger_root(paths)
    if not any(root.glob("*/v*/*.parquet")):
        return []
    pattern = quote_literal(str(root / "*" / "v*" / "*.parquet"))
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT project, dataset, version, min(prepared_at) AS prepared_at "
            f"FROM read_parquet({pattern}) WHERE subject = $subject "
            f"GROUP BY project, dataset, version ORDER BY prepared_at, project, dataset, version",
            {"subject": subject_hash(ledger_key(paths), source_id)},
        ).fetchall()
    finally:
        con.close()
    return [{"project": p, "dataset": d, "version": int(v), "prepared_at": t} for p, d, v, t in rows]
