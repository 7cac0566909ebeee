"""What a preparation did: the report a version keeps as ``report.json``, and its one reader.

Preparation writes the report (:meth:`PreparationReport.to_dict`); the query path (which datasets
have a person key unique per row), object storage (where a dataset's Parquet is) and destruction
(which objects to delete, and their digests) read it back with :meth:`PreparationReport.load`, as
typed fields. Fields added after the first reports have defaults, so an older report reads as it
always did: no flag, no object, local storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter


@dataclass(frozen=True)
class DatasetReport:
    """One prepared dataset: rows, persons, columns, drops, transforms, k-anonymity, twin and hashes."""

    rows: int
    persons: int
    columns: list[str]
    dropped_columns: dict[str, str]  # column -> not_approved | direct_id | free_text
    transforms: dict[str, str]
    quasi_ids: list[str]
    k_min_class_size: int
    k_classes_below: int
    k_ok: bool
    smallest_classes: list[dict[str, Any]]
    twin_columns: dict[str, str]  # column -> how the twin draws it
    person_key_unique: bool = False  # every row is another person: the guard may count rows
    measure_codes: dict[str, dict[str, Any]] = field(default_factory=dict)  # column -> its bounds
    time_range: dict[str, Any] | None = None  # start, end and the date columns read; None = all rows
    source_sha256: str | None = None
    prepared_sha256: str | None = None
    object: str | None = None  # the URL of the prepared Parquet in the bucket (storage: s3)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; ``time_range`` and ``object`` only when there is one."""
        out: dict[str, Any] = {
            "rows": self.rows,
            "persons": self.persons,
            "person_key_unique": self.person_key_unique,
            "columns": self.columns,
            "dropped_columns": self.dropped_columns,
            "transforms": self.transforms,
            "measure_codes": self.measure_codes,
            "quasi_ids": self.quasi_ids,
            "k_min_class_size": self.k_min_class_size,
            "k_classes_below": self.k_classes_below,
            "k_ok": self.k_ok,
            "smallest_classes": self.smallest_classes,
            "twin_columns": self.twin_columns,
        }
        if self.time_range is not None:
            out["time_range"] = self.time_range
        out["source_sha256"] = self.source_sha256
        out["prepared_sha256"] = self.prepared_sha256
        if self.object is not None:
            out["object"] = self.object
        return out


@dataclass(frozen=True)
class PreparationReport:
    """What preparation did: per dataset rows, columns, drops, hashes and the k-anonymity result."""

    project_id: str
    version: int
    datasets: dict[str, DatasetReport]
    views_db: Path
    twin_db: Path
    k: int
    k_ok: bool
    access: str
    date_shift: str  # "project" | "per_person" (never the offset itself)
    prepared_at: str
    prepared_dir: Path
    ledger_subjects: dict[str, int] = field(default_factory=dict)
    date_jitter_days: int = 0  # N of the per-person jitter in [-N, N] days; 0 = none
    storage: str = "local"  # "local" | "s3": where the prepared Parquet is (datasets[*].object)

    def to_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "version": self.version,
            "datasets": {name: dataset.to_dict() for name, dataset in self.datasets.items()},
            "views_db": str(self.views_db),
            "twin_db": str(self.twin_db),
            "prepared_dir": str(self.prepared_dir),
            "k": self.k,
            "k_ok": self.k_ok,
            "access": self.access,
            "date_shift": self.date_shift,
            "date_jitter_days": self.date_jitter_days,
            "prepared_at": self.prepared_at,
            "ledger_subjects": self.ledger_subjects,
            "storage": self.storage,
        }

    @classmethod
    def load(cls, path: Path) -> PreparationReport:
        """The report stored at ``path`` (a version's ``report.json``), each field checked for its
        type (strictly: ``"true"`` is not a flag). Raises ``OSError`` when it cannot be read and
        ``ValueError`` when it is not a report."""
        return _READER.validate_json(path.read_bytes(), strict=True)


_READER = TypeAdapter(PreparationReport)
