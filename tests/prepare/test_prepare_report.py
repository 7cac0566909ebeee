"""A version's report.json is written from, and read back into, one typed report (issue #15 item 5).

Readers (the guard's person-key flag, object storage, destruction) get typed fields from
``PreparationReport.load`` instead of indexing the JSON by string; a report written before a field
existed reads as it always did.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from enclave.prepare import layout
from enclave.prepare.build import prepare_workspace
from enclave.prepare.destroy import _prepared_objects
from enclave.prepare.report import DatasetReport, PreparationReport
from enclave.query_service import unique_person_keys
from tests.harness.planted import project_spec

REPO = Path(__file__).resolve().parents[2]

# A report as the first preparations wrote it: no person-key flag, measure codes, jitter or storage.
OLD_DATASET = {
    "rows": 3,
    "persons": 3,
    "columns": ["pid", "age"],
    "dropped_columns": {"name": "direct_id"},
    "transforms": {"pid": "pseudonym"},
    "quasi_ids": ["age"],
    "source_sha256": "a" * 64,
    "prepared_sha256": "b" * 64,
    "k_min_class_size": 3,
    "k_classes_below": 0,
    "k_ok": True,
    "smallest_classes": [{"values": {"age": "40-44"}, "persons": 3}],
    "twin_columns": {"pid": "person", "age": "category"},
}
OLD_REPORT = {
    "project_id": "cardio-2026",
    "version": 1,
    "datasets": {"patients": OLD_DATASET},
    "views_db": "/vault/views.duckdb",
    "twin_db": "/vault/twin.duckdb",
    "prepared_dir": "/vault",
    "k": 5,
    "k_ok": True,
    "access": "aggregate",
    "date_shift": "project",
    "prepared_at": "2026-11-22T04:00:00Z",
    "ledger_subjects": {"patients": 3},
}


def _build(tmp_path: Path, report: dict[str, Any]) -> Path:
    build = tmp_path / layout.PREPARED / layout.BUILDS / "v1-00000000"
    build.mkdir(parents=True)
    (build / layout.REPORT).write_text(json.dumps(report))
    return build


def test_the_written_report_reads_back_with_its_types(paths, source_files) -> None:
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    stored = report.prepared_dir / layout.REPORT
    loaded = PreparationReport.load(stored)
    assert loaded == report
    assert loaded.to_dict() == json.loads(stored.read_text())
    patients = loaded.datasets["patients"]
    assert isinstance(patients, DatasetReport)
    assert patients.person_key_unique is True and loaded.datasets["visits"].person_key_unique is False
    assert patients.prepared_sha256 == report.datasets["patients"].prepared_sha256
    assert patients.object is None and "object" not in json.loads(stored.read_text())["datasets"]["patients"]
    assert unique_person_keys(report.prepared_dir) == {"patients"}


def test_an_old_report_reads_as_before(tmp_path: Path) -> None:
    build = _build(tmp_path, OLD_REPORT)
    loaded = PreparationReport.load(build / layout.REPORT)
    patients = loaded.datasets["patients"]
    assert (patients.person_key_unique, patients.measure_codes, patients.object) == (False, {}, None)
    assert (loaded.storage, loaded.date_jitter_days) == ("local", 0)
    assert unique_person_keys(build) == set()  # no flag: the guard counts DISTINCT persons
    assert _prepared_objects(tmp_path) == ({}, False)


@pytest.mark.parametrize(
    ("change", "flagged"),
    [
        ({"person_key_unique": True}, {"patients"}),
        ({"person_key_unique": "true"}, set()),  # a string is not the flag
        ({"person_key_unique": 1}, set()),
    ],
)
def test_only_a_true_boolean_is_the_person_key_flag(tmp_path: Path, change: dict, flagged: set) -> None:
    build = _build(tmp_path, {**OLD_REPORT, "datasets": {"patients": {**OLD_DATASET, **change}}})
    assert unique_person_keys(build) == flagged


def test_objects_and_storage_are_read_from_the_typed_report(tmp_path: Path) -> None:
    url = "s3://enclave-data/projects/cardio-2026/builds/v1-00000000/patients.parquet"
    dataset = {**OLD_DATASET, "object": url}
    _build(tmp_path, {**OLD_REPORT, "storage": "s3", "datasets": {"patients": dataset}})
    assert _prepared_objects(tmp_path) == ({url: "b" * 64}, True)


def test_unreadable_reports_give_no_flag(tmp_path: Path) -> None:
    assert unique_person_keys(tmp_path) == set()  # no report.json
    (tmp_path / layout.REPORT).write_text("{not json")
    assert unique_person_keys(tmp_path) == set()
    with pytest.raises(ValueError):
        PreparationReport.load(tmp_path / layout.REPORT)


def test_no_module_reads_report_keys_by_string() -> None:
    """Only enclave/prepare/report.py names the keys that other modules read back."""
    keys = {"person_key_unique", "prepared_sha256", "source_sha256", "measure_codes", "twin_columns"}
    found = []
    for folder in ("enclave", "export_review", "hub_config"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path == REPO / "enclave" / "prepare" / "report.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in keys:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value}")
    assert found == []
