"""The disclosure ledger: subject look-back without raw ids (R-AUD-9)."""

from __future__ import annotations

import stat

import duckdb

from enclave import ledger
from enclave.prepare.build import prepare_workspace
from enclave.prepare.destroy import destroy_workspace
from tests.harness.planted import PERSONS, project_spec


def test_subject_look_back_across_projects_and_versions(paths, source_files):
    prepare_workspace(paths, project_spec("alpha-1"), source_files, version=1)
    prepare_workspace(paths, project_spec("alpha-1"), source_files, version=2)
    only_patients = project_spec("beta-1", datasets={"patients": ["pid", "age"]})
    prepare_workspace(paths, only_patients, {"patients": source_files["patients"]}, version=1)
    hits = ledger.projects_for_subject(paths, "7")
    assert {(h["project"], h["dataset"], h["version"]) for h in hits} == {
        ("alpha-1", "patients", 1),
        ("alpha-1", "visits", 1),
        ("alpha-1", "patients", 2),
        ("alpha-1", "visits", 2),
        ("beta-1", "patients", 1),
    }
    assert all(h["prepared_at"] for h in hits)
    assert ledger.projects_for_subject(paths, "9999") == []
    assert ledger.projects_for_subject(paths, "07") == []  # exact ids only


def test_empty_ledger(paths):
    assert ledger.projects_for_subject(paths, "1") == []


def test_ledger_stores_keyed_hashes_never_raw_ids(paths, source_files):
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    assert report.ledger_subjects == {"patients": PERSONS, "visits": PERSONS}
    files = list((paths.vault / "ledger").rglob("*.parquet"))
    assert len(files) == 2
    key = ledger.ledger_key(paths)
    for path in files:
        rows = duckdb.execute("SELECT subject FROM read_parquet(?)", [str(path)]).fetchall()
        subjects = [r[0] for r in rows]
        assert len(subjects) == PERSONS and all(len(s) == 16 for s in subjects)
        assert set(subjects) == {ledger.subject_hash(key, i) for i in range(1, PERSONS + 1)}
        columns = duckdb.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
        assert [c[0] for c in columns] == ["subject", "project", "version", "dataset", "prepared_at"]
    key_file = paths.vault / "keys" / ledger.LEDGER_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_ledger_outlives_destruction(paths, source_files):
    prepare_workspace(paths, project_spec(), source_files, version=1)
    destroy_workspace(paths, "cardio-2026", actor="steward")
    assert {h["dataset"] for h in ledger.projects_for_subject(paths, "1")} == {"patients", "visits"}
