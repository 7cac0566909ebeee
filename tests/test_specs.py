"""Spec validation: every bad field is named, with a stable code and both languages."""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.errors import BadInput
from enclave.specs import (
    DEFAULT_DATE_JITTER_DAYS,
    MAX_SPEC_BYTES,
    ColumnRole,
    load_project_spec,
    load_yaml,
    parse_dataset_spec,
    parse_project_spec,
    parse_stored_project_spec,
)
from tests.harness.factories import PATIENT_COLUMNS, dataset_spec, project_spec


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
        (
            {"columns": {"pid": {"role": "person_key"}, "dx": {"role": "sensitive", "top_code": 9}}},
            "columns.dx",
        ),
        (
            {
                "columns": {
                    "pid": {"role": "person_key"},
                    "x": {"role": "measure", "top_code": 1, "bottom_code": 1},
                }
            },
            "columns.x",
        ),
        (
            {"columns": {"pid": {"role": "person_key"}, "x": {"role": "measure", "top_code": "lots"}}},
            "columns.x",
        ),
        (
            {"columns": {"pid": {"role": "person_key"}, "x": {"role": "measure", "top_code": True}}},
            "columns.x",
        ),
        (
            {"columns": {"pid": {"role": "person_key"}, "x": {"role": "measure", "top_code": "inf"}}},
            "columns.x",
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
        ({"date_jitter_days": 61}, "between 0 (off) and 60"),
        ({"date_jitter_days": -1}, "between 0 (off) and 60"),
        ({"date_jitter_days": True}, "date_jitter_days"),
        ({"date_jitter_days": 3.5}, "date_jitter_days"),
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


def test_measure_bounds_parse_and_a_column_without_them_serialises_as_before() -> None:
    columns = {**PATIENT_COLUMNS, "income": {"role": "measure", "top_code": 500000, "bottom_code": "0"}}
    spec = parse_dataset_spec(dataset_spec("patients", "p.parquet", columns))
    assert (spec.columns["income"].bottom_code, spec.columns["income"].top_code) == (0, 500000)
    dumped = spec.model_dump(mode="json")["columns"]
    assert dumped["income"]["top_code"] == 500000 and dumped["income"]["bottom_code"] == 0
    # a column without bounds has the same stored JSON as before bounds existed
    assert dumped["age"] == {"role": "quasi_id", "generalize": "age_band_5", "description": None}
    assert parse_dataset_spec(spec.model_dump(mode="json")) == spec
    yaml_float = {"pid": {"role": "person_key"}, "x": {"role": "measure", "top_code": "1e6"}}
    assert parse_dataset_spec(dataset_spec("p", "p.parquet", yaml_float)).columns["x"].top_code == 1e6


def test_date_jitter_is_on_for_new_specs_and_off_for_specs_stored_without_it() -> None:
    new = parse_project_spec(project_spec())
    assert new.date_jitter_days == DEFAULT_DATE_JITTER_DAYS == 7
    assert new.model_dump(mode="json")["date_jitter_days"] == 7  # stored explicitly from now on
    assert parse_project_spec(project_spec(date_jitter_days=0)).date_jitter_days == 0
    assert parse_project_spec(project_spec(date_jitter_days=60)).date_jitter_days == 60
    # a spec stored before the field existed was prepared without jitter, and stays so
    stored = project_spec()
    assert "date_jitter_days" not in stored
    assert parse_stored_project_spec(stored).date_jitter_days == 0
    assert parse_stored_project_spec(new.model_dump(mode="json")) == new
