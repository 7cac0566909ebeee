"""The dataset catalog on both databases: register, version, refuse mismatches, audit."""

from __future__ import annotations

import stat
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit, catalog
from enclave.config import Paths
from enclave.db import session_scope
from enclave.errors import BadInput, NotFound
from tests.harness.factories import PATIENT_COLUMNS, patients_table, write_dataset


def register(sessions: sessionmaker[Session], paths: Paths, spec: Path) -> catalog.Registration:
    with session_scope(sessions) as s:
        return catalog.register(s, paths, spec, actor="steward")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_register_records_version_and_copies_source(
    sessions: sessionmaker[Session], paths: Paths, tmp_path: Path, fmt: str
) -> None:
    spec = write_dataset(tmp_path / "src", "patients", patients_table(30), PATIENT_COLUMNS, fmt=fmt)
    result = register(sessions, paths, spec)
    source = spec.with_suffix(f".{fmt}")
    assert result.created and result.row_count == 30
    assert result.version == catalog.sha256_file(source)
    copy = catalog.raw_copy_path(paths, "patients", result.version, fmt)
    assert copy.read_bytes() == source.read_bytes()
    assert not copy.stat().st_mode & (stat.S_IWUSR | stat.S_IRWXG | stat.S_IRWXO)
    with session_scope(sessions) as s:
        info = catalog.describe(s, "patients")
        assert info["version"] == result.version and info["level"] == 3
        assert info["spec"]["columns"]["name"]["role"] == "direct_id"
        (event,) = audit.tail(s, action="dataset.register")
        assert event.actor == "steward" and event.object == "dataset:patients"


def test_register_again_is_a_no_op_and_a_changed_source_is_a_new_version(
    sessions: sessionmaker[Session], paths: Paths, tmp_path: Path
) -> None:
    spec = write_dataset(tmp_path, "patients", patients_table(30), PATIENT_COLUMNS)
    first = register(sessions, paths, spec)
    again = register(sessions, paths, spec)
    assert not again.created and not again.new_version and again.version == first.version

    pq.write_table(patients_table(40), spec.with_suffix(".parquet"))
    second = register(sessions, paths, spec)
    assert second.new_version and second.version != first.version and second.row_count == 40
    with session_scope(sessions) as s:
        info = catalog.describe(s, "patients")
        assert info["version"] == second.version
        assert [v["sha256"] for v in info["versions"]] == [first.version, second.version]
        assert len(audit.tail(s, action="dataset.new_version")) == 1
    # the first version's vault copy is untouched
    assert catalog.raw_copy_path(paths, "patients", first.version, "parquet").exists()


def test_source_columns_must_match_spec(
    sessions: sessionmaker[Session], paths: Paths, tmp_path: Path
) -> None:
    columns = {**PATIENT_COLUMNS, "weight": {"role": "measure"}}
    del columns["income"]
    spec = write_dataset(tmp_path, "patients", patients_table(10), columns)
    with pytest.raises(BadInput) as info:
        register(sessions, paths, spec)
    assert info.value.code == "spec_source_mismatch"
    assert {r.code for r in info.value.reasons} == {"column_missing_in_source", "column_undeclared"}
    with session_scope(sessions) as s:
        assert catalog.list_datasets(s) == []
        assert audit.tail(s) == []
    assert not (paths.vault / "raw" / "patients").exists()


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("missing.parquet", "source_not_found"),
        ("patients.xlsx", "source_format_unsupported"),
        ("s3://bucket/patients.parquet", "source_scheme_unsupported"),
    ],
)
def test_bad_sources(
    sessions: sessionmaker[Session], paths: Paths, tmp_path: Path, source: str, code: str
) -> None:
    spec = write_dataset(tmp_path, "patients", patients_table(5), PATIENT_COLUMNS, source=source)
    with pytest.raises(BadInput) as info:
        register(sessions, paths, spec)
    assert info.value.code == code


def test_unreadable_source(sessions: sessionmaker[Session], paths: Paths, tmp_path: Path) -> None:
    spec = write_dataset(tmp_path, "patients", patients_table(5), PATIENT_COLUMNS)
    spec.with_suffix(".parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(BadInput) as info:
        register(sessions, paths, spec)
    assert info.value.code == "source_unreadable"


def test_show_unknown_dataset(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as s, pytest.raises(NotFound) as info:
        catalog.describe(s, "nope")
    assert info.value.code == "dataset_not_found" and info.value.exit_code == 2


def test_register_reports_the_bytes_hashed_then_copied(
    sessions: sessionmaker[Session], paths: Paths, tmp_path: Path
) -> None:
    spec = write_dataset(tmp_path / "src", "patients", patients_table(30), PATIENT_COLUMNS)
    size = spec.with_suffix(".parquet").stat().st_size
    steps: list[tuple[str, int, int]] = []
    with session_scope(sessions) as s:
        result = catalog.register(s, paths, spec, actor="steward", progress=lambda *step: steps.append(step))
    assert steps == [
        ("hashing", 0, size),
        ("hashing", size, size),
        ("copying", 0, size),
        ("copying", size, size),
    ]
    copy = catalog.raw_copy_path(paths, "patients", result.version, "parquet")
    assert copy.read_bytes() == spec.with_suffix(".parquet").read_bytes()
    assert not copy.stat().st_mode & (stat.S_IWUSR | stat.S_IRWXG | stat.S_IRWXO)
