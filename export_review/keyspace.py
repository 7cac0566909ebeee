"""The project's pseudonym key space, for the person-key check.

A provider maps a project id to its set of pseudonyms, or ``None`` when they cannot be read; the
check then fails closed. The default reads the person-key column of each prepared Parquet file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from enclave.config import Paths
from enclave.projects import dataset_specs_for

KeySpaceProvider = Callable[[str], frozenset[str] | None]


def _read_keys(source: Path, column: str) -> set[str]:
    try:
        values = pq.read_table(source, columns=[column]).column(0).to_pylist()
    except Exception:  # the person key is not among this dataset's approved columns
        return set()
    return {str(v) for v in values if v is not None}


def _read_object_keys(paths: Paths, project_id: str, build: Path, dataset: str, column: str) -> set[str]:
    try:
        from enclave.prepare.storage import prepared_object_values

        return prepared_object_values(paths, project_id, build, dataset, column)
    except Exception:  # unreadable: as with a local file, the check then fails closed
        return set()


def prepared_key_space(session: Session, paths: Paths) -> KeySpaceProvider:
    """Pseudonyms from the person-key column of each ``<dataset>.parquet`` of the current
    prepared version; ``None`` when the project has no prepared data or none could be read."""

    def provide(project_id: str) -> frozenset[str] | None:
        try:
            from enclave.prepare.layout import current_prepared_dir

            directory = Path(current_prepared_dir(paths, project_id))
            specs = dataset_specs_for(session, project_id)
        except Exception:
            return None
        keys: set[str] = set()
        for name, spec in specs.items():
            source = directory / f"{name}.parquet"
            if source.is_file():
                keys |= _read_keys(source, spec.person_key)
            else:  # storage: s3 keeps the prepared file in a bucket
                keys |= _read_object_keys(paths, project_id, directory, name, spec.person_key)
        return frozenset(keys) if keys else None

    return provide
