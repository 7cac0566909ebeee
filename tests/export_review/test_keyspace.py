"""The default key-space provider reads the prepared Parquet files' person-key column."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enclave.errors import NotFound
from enclave.specs import parse_dataset_spec
from export_review import keyspace
from tests.harness.factories import PATIENT_COLUMNS, dataset_spec


def test_reads_pseudonyms_from_the_prepared_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pq.write_table(
        pa.table({"pid": ["p_aa", "p_bb", None], "age": ["<25", "25-29", "<25"]}),
        tmp_path / "patients.parquet",
    )
    pq.write_table(pa.table({"dx": ["I10"]}), tmp_path / "visits.parquet")  # no person key approved
    specs = {
        "patients": parse_dataset_spec(dataset_spec("patients", "p.parquet", PATIENT_COLUMNS)),
        "visits": parse_dataset_spec(dataset_spec("visits", "v.parquet", PATIENT_COLUMNS)),
    }
    monkeypatch.setattr(keyspace, "dataset_specs_for", lambda _session, _project: specs)
    import enclave.prepare.layout as layout

    monkeypatch.setattr(layout, "current_prepared_dir", lambda _paths, _project: tmp_path)
    assert keyspace.prepared_key_space(None, None)("p") == frozenset({"p_aa", "p_bb"})  # type: ignore[arg-type]

    def not_prepared(_paths, project):  # type: ignore[no-untyped-def]
        raise NotFound("workspace_not_prepared", "no", "无")

    monkeypatch.setattr(layout, "current_prepared_dir", not_prepared)
    assert keyspace.prepared_key_space(None, None)("p") is None  # type: ignore[arg-type]
