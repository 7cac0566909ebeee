"""Spec validation: every bad field is named, with a stable code and both languages."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.errors import BadInput
from enclave.specs import (
    MAX_SPEC_BYTES,
    ColumnRole,
    load_project_spec,
    load_yaml,
    parse_dataset_spec,
    parse_project_spec,
)
from tests.factories import PATIENT_COLUMNS, dataset_spec, project_spec


def fields_of(error: BadInput) -> list[str]:
    return [r.details["field"] for r in error.reasons]


def test_valid_specs_parse() -> None:
    spec = parse_dataset_spec(dataset_spec("patients", "p.parquet", PATIENT_COLUMNS))
    assert spec.columns["pid"].role is ColumnRole.PERSON_KEY
    assert spec.columns_with_role(ColumnRole.DIRECT_ID) == ["name"]
    project = parse_project_spec(project_spec())
    assert ("carol", "committee") in project.members()
    assert ("alice", "pi") in project.members()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"level": 6}, "level"),
        ({"level": 0}, "level"),
        ({"category": "finance"}, "category"),
        ({"share_type": "sometimes"}, "share_type"),
        ({"name": "Patients!"}, "name"),
        ({"title": ""}, "title"),
        ({"unexpected": 1}, "unexpected"),
        ({"columns": {"pid": {"role": "person_key"}, "age": {"role": "identifier"}}}, "columns.age.role"),
        (
            {"columns": {"pid": {"role": "person_key"}, "dx": {"role": "sensitive", "generalize": "year"}}},
            "columns.dx",
        ),
    ],
)
def test_dataset_spec_errors_name_the_field(change: dict, field: str) -> None:
    data = {**dataset_spec("patients", "p.parquet", PATIENT_COLUMNS), **change}
    with pytest.raises(BadInput) as info:
        parse_dataset_spec(data)
    assert info.value.code == "spec_invalid"
    assert any(f == field or f.startswith(field) for f in fields_of(info.value)), fields_of(info.value)
    assert all(r.message_zh and r.message for r in info.value.reasons)


def test_dataset_spec_person_key_must_be_a_person_key_column() -> None:
    columns = {"pid": {"role": "quasi_id"}, "x": {"role": "measure"}}
    with pytest.raises(BadInput, match="person_key 'pid' must have role person_key"):
        parse_dataset_spec(dataset_spec("d", "d.parquet", columns))
    with pytest.raises(BadInput, match="not among the columns"):
        parse_dataset_spec(dataset_spec("d", "d.parquet", {"x": {"role": "measure"}}))
    two_keys = {"pid": {"role": "person_key"}, "other": {"role": "person_key"}}
    with pytest.raises(BadInput, match="only the person_key column"):
        parse_dataset_spec(dataset_spec("d", "d.parquet", two_keys))


def test_dataset_spec_missing_fields_are_each_reported() -> None:
    with pytest.raises(BadInput) as info:
        parse_dataset_spec({"name": "x"})
    assert {"title", "steward", "level", "category", "share_type", "source", "person_key", "columns"} <= set(
        fields_of(info.value)
    )


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"committee": ["carol", "dave"]}, "at least 3 voting members"),
        ({"committee": ["carol", "dave", "bob"]}, "separation of duties"),
        ({"committee": ["carol", "dave", "alice"]}, "separation of duties"),
        ({"period": {"start": "2027-01-01", "end": "2026-01-01"}}, "end must be after start"),
        ({"period": {"start": "2027-01-01", "end": "2027-01-01"}}, "end must be after start"),
        ({"min_cell_count": 3}, "at least 5"),
        ({"analysts": ["bob", "bob"]}, "must not repeat"),
        ({"analysts": []}, "analysts"),
        ({"datasets": {}}, "at least one dataset"),
        ({"datasets": {"patients": []}}, "at least one column"),
        ({"id": "Bad ID"}, "id"),
        ({"access": "everything"}, "access"),
    ],
)
def test_project_spec_errors(change: dict, needle: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_project_spec(project_spec(**change))
    assert info.value.code == "spec_invalid"
    assert needle in info.value.message
    assert info.value.message_zh


def test_load_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as info:
        load_yaml(tmp_path / "missing.yaml")
    assert info.value.code == "spec_not_found"

    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(BadInput) as info:
        load_yaml(broken)
    assert info.value.code == "spec_malformed"

    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n", encoding="utf-8")
    with pytest.raises(BadInput) as info:
        load_project_spec(scalar)
    assert info.value.code == "spec_malformed"

    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (MAX_SPEC_BYTES + 1))
    with pytest.raises(BadInput) as info:
        load_yaml(huge)
    assert info.value.code == "spec_too_large"

    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BadInput) as info:
        load_yaml(binary)
    assert info.value.code == "spec_malformed"
