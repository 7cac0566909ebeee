"""The streamed preparation path: prepared rows are written straight from the source, and k-anonymity,
counts, the ledger and the twin come from aggregated facts and a person sample. Each test pins one
assumption that this path relies on, against the prepared data itself."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from enclave import ledger
from enclave.deid.dates import person_jitter, person_offset
from enclave.deid.kanon import k_anonymity
from enclave.deid.pseudonym import derive_key, hmac_hex, pseudonym
from enclave.errors import Refused
from enclave.prepare.build import prepare_workspace
from enclave.prepare.hashing import BackgroundHasher
from enclave.prepare.secrets import load_secrets
from enclave.specs import parse_dataset_spec
from tests.harness.planted import (
    PATIENTS_SPEC,
    VISITS_SPEC,
    patients_frame,
    project_spec,
    sources,
    visits_frame,
)


def rows_of(path: Path, sql: str = "SELECT * FROM t") -> list[tuple]:
    con = duckdb.connect()
    try:
        con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}')")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def columns_of(path: Path) -> list[str]:
    return [r[0] for r in duckdb.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]


def with_extra_visits(tmp_path: Path, extra: list[dict]) -> dict:
    """The fixture sources, with ``extra`` visit rows appended (pid may be None)."""
    files = sources(tmp_path / "src")
    visits = pd.concat([visits_frame(), pd.DataFrame(extra)], ignore_index=True)
    visits["pid"] = visits["pid"].astype("Int64")
    path = tmp_path / "visits-extra.parquet"
    visits.to_parquet(path, index=False)
    files["visits"] = (parse_dataset_spec(VISITS_SPEC), path)
    return files


def extra_visit(visit_id: int, pid: int | None) -> dict:
    day = date(2019, 5, 5)
    return {
        "visit_id": visit_id,
        "pid": pid,
        "visit_date": day,
        "discharge_date": day,
        "visit_month": day,
        "department": "endo",
        "dx": "I10",
        "cost": 120.0,
        "visit_type": 1,
        "notes": "x",
    }


def test_no_working_column_or_raw_key_reaches_any_written_file(paths, source_files):
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    for name, facts in report.datasets.items():
        for path in (
            report.prepared_dir / f"{name}.parquet",
            report.prepared_dir / "twin" / f"{name}.parquet",
        ):
            assert columns_of(path) == facts.columns, path
            pids = {r[0] for r in rows_of(path, "SELECT DISTINCT pid FROM t")}
            assert pids and all(isinstance(p, str) and p.startswith("p_") and len(p) == 18 for p in pids)


def test_counts_and_ledger_agree_with_the_prepared_rows_when_keys_are_missing(paths, tmp_path):
    # Three rows without a person key and one person who has visits but no patient record.
    extra = [
        extra_visit(9001, None),
        extra_visit(9002, None),
        extra_visit(9003, None),
        extra_visit(9004, 777),
    ]
    files = with_extra_visits(tmp_path, extra)
    report = prepare_workspace(paths, project_spec(), files, version=1)
    visits = report.prepared_dir / "visits.parquet"
    (rows, persons, nulls) = rows_of(
        visits, "SELECT count(*), count(DISTINCT pid), count(*) - count(pid) FROM t"
    )[0]
    assert (rows, nulls) == (len(visits_frame()) + 4, 3)
    assert report.datasets["visits"].rows == rows
    assert report.datasets["visits"].persons == persons == 61
    assert report.datasets["visits"].person_key_unique is False
    key = ledger.ledger_key(paths)
    staged = next((paths.vault / "ledger").rglob("visits.parquet"))
    subjects = {r[0] for r in rows_of(staged, "SELECT subject FROM t")}
    assert subjects == {ledger.subject_hash(key, pid) for pid in [*range(1, 61), 777]}
    assert report.ledger_subjects["visits"] == 61


def test_rows_without_a_person_key_each_count_as_a_person_after_aggregation(paths, tmp_path):
    # One real person plus four identical key-less rows share one class. Aggregated facts collapse
    # the four rows into one fact, so they must be weighted back to four persons: class size 5.
    frame = patients_frame()
    lone = {**frame.iloc[0].to_dict(), "postcode": "555000", "age": 40, "sex": "F"}
    keyless = [{**lone, "pid": None} for _ in range(4)]
    frame = pd.concat([frame, pd.DataFrame([{**lone, "pid": 500}, *keyless])], ignore_index=True)
    frame["pid"] = frame["pid"].astype("Int64")
    path = tmp_path / "patients-keyless.parquet"
    frame.to_parquet(path, index=False)
    files = {"patients": (parse_dataset_spec(PATIENTS_SPEC), path)}
    spec = project_spec(datasets={"patients": ["pid", "postcode", "age", "sex"]}, access="rows")
    report = prepare_workspace(paths, spec, files, version=1)  # k = 5 holds: 1 person + 4 rows
    patients = report.datasets["patients"]
    assert patients.k_ok and patients.k_min_class_size == 5
    assert patients.rows == len(frame) and patients.persons == len(frame) - 4
    assert patients.person_key_unique is False
    # One key-less row fewer and the same class holds only 4: refused.
    frame.drop(index=len(frame) - 1).to_parquet(path, index=False)
    with pytest.raises(Refused):
        prepare_workspace(paths, spec, files, version=2)


def test_person_key_unique_only_when_every_row_is_another_person(paths, source_files):
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    assert report.datasets["patients"].person_key_unique is True
    assert report.datasets["visits"].person_key_unique is False  # three visits per person
    (rows, distinct) = rows_of(
        report.prepared_dir / "patients.parquet", "SELECT count(*), count(DISTINCT pid) FROM t"
    )[0]
    assert rows == distinct


def test_weighted_k_anonymity_equals_the_row_level_result():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE r AS SELECT * FROM (VALUES (1, 'a'), (1, 'a'), (2, 'a'), (NULL, 'a'), (NULL, 'a'), "
        "(3, 'b'), (NULL, 'b'), (4, 'c'), (4, 'c')) t(p, q)"
    )
    con.execute("CREATE TABLE g AS SELECT p, q, count(*) AS n FROM r GROUP BY ALL")
    for k in (1, 2, 3, 4, 5):
        plain = k_anonymity(con, "r", ["q"], k, person_key="p")
        weighted = k_anonymity(con, "g", ["q"], k, person_key="p", rows="n")
        assert weighted == plain
    assert k_anonymity(con, "g", ["q"], 2, person_key="p", rows="n").smallest_classes[0]["persons"] == 1
    assert k_anonymity(con, "g", [], 9, rows="n").min_class_size == 9  # no person key: rows


def test_report_hashes_are_the_files_sha256(paths, source_files):
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    for name, facts in report.datasets.items():
        source = source_files[name][1]
        assert facts.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
        prepared = report.prepared_dir / f"{name}.parquet"
        assert facts.prepared_sha256 == hashlib.sha256(prepared.read_bytes()).hexdigest()


def test_background_hasher_reports_errors_and_refuses_duplicates(tmp_path):
    present = tmp_path / "a.bin"
    present.write_bytes(b"abc")
    with BackgroundHasher() as hashes:
        hashes.submit("a", present)
        with pytest.raises(ValueError):
            hashes.submit("a", present)
        assert hashes.results() == {"a": hashlib.sha256(b"abc").hexdigest()}
        hashes.submit("missing", tmp_path / "missing.bin")
        with pytest.raises(FileNotFoundError):
            hashes.results()


def test_per_person_offsets_from_the_person_map_match_the_keyed_hash_of_each_row(paths, tmp_path):
    # The shift is looked up once per person; every row must still move by the person's offset,
    # HMAC(offset key, pid), plus the person's jitter, HMAC(jitter key, pid), within ±7 days.
    files = with_extra_visits(tmp_path, [extra_visit(9001, None), extra_visit(9002, 777)])
    report = prepare_workspace(paths, project_spec(), files, version=1, per_person_offset=True)
    assert report.datasets["visits"].transforms["visit_date"] == "date_shift_per_person+jitter"
    offset_key = derive_key(load_secrets(paths, "cardio-2026").pseudonym_key, "date_offset")
    jitter_key = derive_key(load_secrets(paths, "cardio-2026").pseudonym_key, "date_jitter")
    pseudonym_key = derive_key(load_secrets(paths, "cardio-2026").pseudonym_key, "pseudonym")
    source = duckdb.execute(
        "SELECT visit_id, pid, visit_date, discharge_date FROM read_parquet(?)", [str(files["visits"][1])]
    ).fetchall()
    prepared = {
        r[0]: r[1:]
        for r in rows_of(
            report.prepared_dir / "visits.parquet", "SELECT visit_id, pid, visit_date, discharge_date FROM t"
        )
    }
    assert len(prepared) == len(source)
    for visit_id, pid, visit_date, discharge_date in source:
        if pid is None:
            assert prepared[visit_id] == (None, None, None)  # no person, no offset, no date
            continue
        jitter = person_jitter(hmac_hex(jitter_key, str(pid)), 7)
        days = timedelta(days=person_offset(hmac_hex(offset_key, str(pid))) + jitter)
        assert prepared[visit_id] == (pseudonym(pseudonym_key, pid), visit_date + days, discharge_date + days)
