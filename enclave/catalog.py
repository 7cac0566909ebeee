"""The dataset catalog (R-CAT-*): register a dataset spec and its source, list, show.

Registering copies the source into the vault under its sha256, which is the dataset version
(R-PREP-22: versions are immutable). Every column of the source must be declared in the spec with a
role (R-CAT-14), so nothing reaches a project unclassified.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db.models import Dataset, DatasetVersion
from enclave.errors import BadInput, NotFound, Reason
from enclave.files import HASH_CHUNK, sha256_file
from enclave.specs import DatasetSpec, load_dataset_spec, parse_dataset_spec

SOURCE_FORMATS = {".parquet": "parquet", ".csv": "csv"}
Progress = Callable[[str, int, int], None]
"""``progress(step, bytes_done, bytes_total)``: ``step`` is ``hashing`` or ``copying``."""


@dataclass(frozen=True)
class Registration:
    """What ``register`` did: the dataset, its version, and whether anything changed."""

    name: str
    version: str
    row_count: int
    created: bool
    new_version: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "version": self.version,
            "rows": self.row_count,
            "created": self.created,
            "new_version": self.new_version,
        }


def resolve_source(spec: DatasetSpec, spec_path: Path) -> tuple[Path, str]:
    """The local source file and its format, or a clear error."""
    if "://" in spec.source:
        raise BadInput(
            "source_scheme_unsupported",
            f"source: only local Parquet or CSV files can be registered here, not {spec.source!r}",
            f"source：此处只能登记本地 Parquet 或 CSV 文件，不支持 {spec.source!r}",
        )
    source = Path(spec.source)
    if not source.is_absolute():
        source = (spec_path.parent / source).resolve()
    fmt = SOURCE_FORMATS.get(source.suffix.lower())
    if fmt is None:
        raise BadInput(
            "source_format_unsupported",
            f"source: {source.name} is neither .parquet nor .csv",
            f"source：{source.name} 不是 .parquet 或 .csv 文件",
        )
    if not source.is_file():
        raise BadInput(
            "source_not_found", f"source: file not found: {source}", f"source：找不到文件：{source}"
        )
    return source, fmt


def read_source_schema(source: Path, fmt: str) -> tuple[list[str], int]:
    """The source's column names and row count, read with DuckDB."""
    reader = "read_parquet" if fmt == "parquet" else "read_csv_auto"
    con = duckdb.connect()
    try:
        relation = con.sql(f"SELECT * FROM {reader}(?)", params=[str(source)])  # type: ignore[call-overload]
        columns = list(relation.columns)
        (rows,) = con.execute(f"SELECT count(*) FROM {reader}(?)", [str(source)]).fetchone()  # type: ignore[misc]
    except duckdb.Error:
        raise BadInput(
            "source_unreadable",
            f"source: {source.name} could not be read as {fmt}",
            f"source：无法按 {fmt} 格式读取 {source.name}",
        ) from None
    finally:
        con.close()
    return columns, int(rows)


def check_columns(spec: DatasetSpec, source_columns: list[str]) -> None:
    """Every spec column exists in the source and every source column is declared."""
    reasons = [
        Reason(
            "column_missing_in_source",
            f"columns.{name}: not found in the source file",
            f"columns.{name}：源文件中没有该列",
            details={"field": f"columns.{name}"},
        )
        for name in spec.columns
        if name not in source_columns
    ]
    reasons += [
        Reason(
            "column_undeclared",
            f"the source column {name!r} has no role in the spec (every column must be classified, R-CAT-14)",
            f"源文件的列 {name!r} 在规格中没有角色（每一列都必须分类，R-CAT-14）",
            details={"field": f"columns.{name}"},
        )
        for name in source_columns
        if name not in spec.columns
    ]
    if reasons:
        raise BadInput(
            "spec_source_mismatch",
            "The dataset spec does not match its source's columns.",
            "数据集规格与源文件的列不一致。",
            reasons=reasons,
        )


def raw_copy_path(paths: Paths, name: str, sha256: str, fmt: str) -> Path:
    return paths.vault / "raw" / name / f"{sha256}.{fmt}"


def _hash_source(source: Path, progress: Progress | None) -> str:
    """The source's sha256, reporting the bytes read."""
    if progress is None:
        return sha256_file(source)
    total, done = source.stat().st_size, 0
    digest = hashlib.sha256()
    progress("hashing", 0, total)
    with source.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress("hashing", done, total)
    return digest.hexdigest()


def _copy_reporting(source: Path, tmp: str, progress: Progress) -> None:
    total, done = source.stat().st_size, 0
    progress("copying", 0, total)
    with source.open("rb") as reader, open(tmp, "wb") as writer:
        while chunk := reader.read(HASH_CHUNK):
            writer.write(chunk)
            done += len(chunk)
            progress("copying", done, total)


def _copy_into_vault(source: Path, target: Path, progress: Progress | None = None) -> None:
    """Copy under a temporary name, then rename: the vault never holds a half-copied source."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    os.close(fd)
    try:
        if progress is None:
            shutil.copyfile(source, tmp)
        else:
            _copy_reporting(source, tmp, progress)
        os.chmod(tmp, 0o400)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def register(
    session: Session, paths: Paths, spec_path: Path, *, actor: str, progress: Progress | None = None
) -> Registration:
    """Register a dataset spec, or a new version of it when its source changed; ``progress`` is told
    the bytes hashed and copied."""
    spec = load_dataset_spec(spec_path)
    source, fmt = resolve_source(spec, spec_path)
    columns, rows = read_source_schema(source, fmt)
    check_columns(spec, columns)
    sha = _hash_source(source, progress)
    now = audit.now_iso()
    spec_json = audit.canonical_json(spec.model_dump(mode="json"))

    dataset = session.get(Dataset, spec.name)
    if dataset is not None:
        existing = session.scalar(
            select(DatasetVersion).where(
                DatasetVersion.dataset_name == spec.name, DatasetVersion.sha256 == sha
            )
        )
        if existing is not None and existing.spec_json == spec_json:
            return Registration(spec.name, sha, rows, created=False, new_version=False)
        if existing is not None:
            raise BadInput(
                "dataset_version_exists",
                f"{spec.name}: this source version is already registered with a different spec; "
                "register a changed source as a new version instead",
                f"{spec.name}：该源文件版本已以不同规格登记；请以新版本登记修改后的源文件",
            )

    _copy_into_vault(source, raw_copy_path(paths, spec.name, sha, fmt), progress)
    session.add(
        DatasetVersion(
            dataset_name=spec.name,
            sha256=sha,
            source=str(source),
            source_format=fmt,
            row_count=rows,
            spec_json=spec_json,
            registered_at=now,
            registered_by=actor,
        )
    )
    created = dataset is None
    before = _catalog_fields(dataset) if dataset is not None else None
    if dataset is None:
        dataset = Dataset(name=spec.name, registered_at=now)
        session.add(dataset)
    dataset.title = spec.title
    dataset.steward = spec.steward
    dataset.level = int(spec.level)
    dataset.category = spec.category.value
    dataset.share_type = spec.share_type.value
    dataset.current_version = sha
    dataset.updated_at = now
    session.flush()
    details: dict[str, Any] = {
        "version": sha,
        "rows": rows,
        "source": str(source),
        **_catalog_fields(dataset),
    }
    if before is not None:
        details["before"] = before
    audit.record(
        session,
        AuditAction.DATASET_REGISTER if created else AuditAction.DATASET_NEW_VERSION,
        actor=actor,
        obj=f"dataset:{spec.name}",
        details=details,
    )
    return Registration(spec.name, sha, rows, created=created, new_version=not created)


def _catalog_fields(dataset: Dataset) -> dict[str, Any]:
    return {
        "level": dataset.level,
        "category": dataset.category,
        "share_type": dataset.share_type,
        "steward": dataset.steward,
    }


def get(session: Session, name: str) -> Dataset:
    dataset = session.get(Dataset, name)
    if dataset is None:
        raise NotFound("dataset_not_found", f"No dataset named {name!r}", f"没有名为 {name!r} 的数据集")
    return dataset


def current_version(session: Session, name: str) -> DatasetVersion:
    dataset = get(session, name)
    version = session.scalar(
        select(DatasetVersion).where(
            DatasetVersion.dataset_name == name, DatasetVersion.sha256 == dataset.current_version
        )
    )
    assert version is not None, "a dataset always has its current version"
    return version


def current_spec(session: Session, name: str) -> DatasetSpec:
    return parse_dataset_spec(json.loads(current_version(session, name).spec_json))


def list_datasets(session: Session) -> list[Dataset]:
    return list(session.scalars(select(Dataset).order_by(Dataset.name)))


def describe(session: Session, name: str) -> dict[str, Any]:
    """Everything the catalog knows about a dataset, as JSON-safe data."""
    dataset = get(session, name)
    version = current_version(session, name)
    return {
        "name": dataset.name,
        "title": dataset.title,
        "steward": dataset.steward,
        **_catalog_fields(dataset),
        "version": dataset.current_version,
        "rows": version.row_count,
        "registered_at": dataset.registered_at,
        "updated_at": dataset.updated_at,
        "spec": json.loads(version.spec_json),
        "versions": [
            {"sha256": v.sha256, "rows": v.row_count, "registered_at": v.registered_at, "by": v.registered_by}
            for v in dataset.versions
        ],
    }
