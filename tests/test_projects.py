"""Project specs against the catalog, immutable versions, share overrides, all-or-nothing creation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit, catalog, projects
from enclave.config import Paths
from enclave.db import session_scope
from enclave.db.models import Project, ProjectMember, ProjectSpecVersion
from enclave.errors import BadInput, Refused
from enclave.specs import parse_project_spec
from tests.harness.factories import (
    NO_APPLICATION,
    PATIENT_COLUMNS,
    VISIT_COLUMNS,
    patients_table,
    project_spec,
    register_patients_and_visits,
    visits_table,
    write_dataset,
)


@pytest.fixture
def catalogued(sessions: sessionmaker[Session], paths: Paths, tmp_path: Path) -> sessionmaker[Session]:
    with session_scope(sessions) as s:
        register_patients_and_visits(s, paths, tmp_path, actor="st")
    return sessions


def create(sessions: sessionmaker[Session], paths: Paths, **fields: Any) -> dict[str, Any]:
    overrides = fields.pop("overrides", None)
    preparer = fields.pop("preparer", None)
    without_application = fields.pop("without_application", NO_APPLICATION)
    with session_scope(sessions) as s:
        return projects.create_project(
            s,
            paths,
            parse_project_spec(project_spec(**fields)),
            actor="steward",
            overrides=overrides,
            preparer=preparer,
            without_application=without_application,
        )


def test_create_stores_spec_members_and_audit(catalogued: sessionmaker[Session], paths: Paths) -> None:
    result = create(catalogued, paths)
    assert result == {"project": "cardio-2026", "state": "approved", "spec_version": 1, "preparation": None}
    with session_scope(catalogued) as s:
        info = projects.describe(s, "cardio-2026")
        assert info["spec"]["datasets"]["visits"] == ["pid", "visit_date", "cost"]
        assert {"user": "carol", "role": "committee"} in info["members"]
        assert set(info["dataset_versions"]) == {"patients", "visits"}
        assert info["dataset_versions"]["patients"] == catalog.get(s, "patients").current_version
        assert projects.roles_of(s, "cardio-2026", "alice") == {"pi", "analyst"}
        (event,) = audit.tail(s, action="project.create")
        assert event.project == "cardio-2026" and '"spec_sha256"' in event.details_json


def test_unknown_datasets_and_columns_and_missing_person_key(
    catalogued: sessionmaker[Session], paths: Paths
) -> None:
    datasets = {"patients": ["zip", "age", "bogus"], "labs": ["pid"], "visits": ["pid", "cost"]}
    with pytest.raises(BadInput) as info:
        create(catalogued, paths, datasets=datasets)
    codes = sorted(r.code for r in info.value.reasons)
    assert codes == ["column_unknown", "dataset_unknown", "person_key_required"]
    assert info.value.code == "project_spec_invalid"
    with session_scope(catalogued) as s:
        assert projects.list_projects(s) == []


def test_duplicate_project_is_refused(catalogued: sessionmaker[Session], paths: Paths) -> None:
    create(catalogued, paths)
    with pytest.raises(BadInput) as info:
        create(catalogued, paths)
    assert info.value.code == "project_exists"


@pytest.mark.parametrize("fields", [{"share_type": "none"}, {"level": 5}])
def test_not_shareable_dataset_needs_an_audited_override(
    sessions: sessionmaker[Session], paths: Paths, tmp_path: Path, fields: dict[str, Any]
) -> None:
    with session_scope(sessions) as s:
        spec = write_dataset(tmp_path, "patients", patients_table(), PATIENT_COLUMNS, **fields)
        catalog.register(s, paths, spec, actor="st")
        catalog.register(
            s, paths, write_dataset(tmp_path, "visits", visits_table(), VISIT_COLUMNS), actor="st"
        )
    with pytest.raises(Refused) as info:
        create(sessions, paths)
    assert info.value.code == "dataset_not_shareable" and info.value.exit_code == 3
    with pytest.raises(Refused):
        create(sessions, paths, overrides={"patients": "   "})
    with pytest.raises(BadInput) as bad:
        create(sessions, paths, overrides={"labs": "x"})
    assert bad.value.code == "override_unknown_dataset"

    create(sessions, paths, overrides={"patients": "Committee decision 2026-17"})
    with session_scope(sessions) as s:
        (event,) = audit.tail(s, action="dataset.share_override")
        assert "Committee decision 2026-17" in event.details_json and event.project == "cardio-2026"


def test_failed_preparation_leaves_nothing(catalogued: sessionmaker[Session], paths: Paths) -> None:
    def broken_preparer(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        raise Refused("k_anonymity_violated", "k violated", "不满足 k 匿名")

    with pytest.raises(Refused):
        create(catalogued, paths, preparer=broken_preparer)
    with session_scope(catalogued) as s:
        for model in (Project, ProjectSpecVersion, ProjectMember):
            assert s.scalars(select(model)).all() == []
        assert audit.tail(s, action="project.create") == []
        assert audit.verify(s).ok


def test_preparation_makes_the_project_active_and_re_preparing_adds_a_version(
    catalogued: sessionmaker[Session], paths: Paths
) -> None:
    calls: list[tuple[str, int, set[str]]] = []

    def recording_preparer(_paths: Paths, spec, datasets, *, version: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        assert all(source.exists() for _, source in datasets.values())
        calls.append((spec.id, version, set(datasets)))
        return {"version": version}

    result = create(catalogued, paths, preparer=recording_preparer)
    assert result["state"] == "active" and result["preparation"] == {"version": 1}
    with session_scope(catalogued) as s:
        again = projects.prepare_project(
            s, paths, "cardio-2026", actor="steward", preparer=recording_preparer
        )
    assert again["spec_version"] == 2
    assert calls == [("cardio-2026", 1, {"patients", "visits"}), ("cardio-2026", 2, {"patients", "visits"})]
    with session_scope(catalogued) as s:
        versions = s.scalars(select(ProjectSpecVersion).order_by(ProjectSpecVersion.version)).all()
        assert [v.version for v in versions] == [1, 2]
        assert versions[0].spec_sha256 == versions[1].spec_sha256
        assert len(audit.tail(s, action="project.prepare")) == 2


def test_direct_identifiers_are_reported_as_dropped(catalogued: sessionmaker[Session], paths: Paths) -> None:
    spec = parse_project_spec(
        project_spec(datasets={"patients": ["pid", "name", "age"], "visits": ["pid", "notes"]})
    )
    with session_scope(catalogued) as s:
        dropped = projects.dropped_at_preparation(spec, projects.validate_against_catalog(s, spec))
    assert dropped == {"patients": ["name"], "visits": ["notes"]}


def test_a_project_stored_before_date_jitter_keeps_its_dates_unjittered(
    catalogued: sessionmaker[Session], paths: Paths
) -> None:
    seen: list[int] = []

    def recording_preparer(_paths: Paths, spec, datasets, *, version: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        seen.append(spec.date_jitter_days)
        return {"version": version}

    create(catalogued, paths, preparer=recording_preparer)
    create(catalogued, paths, id="legacy-1", preparer=recording_preparer)
    with session_scope(catalogued) as s:
        # a new project stores its jitter explicitly; simulate one stored before the field existed
        row = projects.current_spec_row(s, "legacy-1")
        stored = json.loads(row.spec_json)
        assert stored["date_jitter_days"] == 7
        del stored["date_jitter_days"]
        row.spec_json = audit.canonical_json(stored)
    with session_scope(catalogued) as s:
        assert projects.current_spec(s, "cardio-2026").date_jitter_days == 7
        assert projects.current_spec(s, "legacy-1").date_jitter_days == 0
        projects.prepare_project(s, paths, "legacy-1", actor="steward", preparer=recording_preparer)
        assert json.loads(projects.current_spec_row(s, "legacy-1").spec_json)["date_jitter_days"] == 0
    assert seen == [7, 7, 0]
