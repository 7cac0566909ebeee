"""End-to-end preparation: golden values, views, twin, k-anonymity, secrets hygiene, atomicity."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta

import duckdb
import pytest

from enclave import ledger
from enclave.deid.pseudonym import derive_key, key_params, pseudonym
from enclave.errors import BadInput, NotFound, Refused
from enclave.prepare import layout
from enclave.prepare import secrets as project_secrets
from enclave.prepare.build import (
    current_prepared_dir,
    current_twin_db,
    current_views_db,
    prepare_workspace,
)
from enclave.prepare.secrets import load_secrets
from tests.harness.planted import (
    OUTLIER_COST,
    PERSONS,
    RARE_DX,
    patient_name,
    project_spec,
    query,
    sources,
)


@pytest.fixture
def offset_100(monkeypatch):
    monkeypatch.setattr(project_secrets, "_random_offset", lambda: 100)


def test_golden_values_end_to_end(paths, source_files, offset_100):
    # The standard's worked example: one project offset (+100 days) and no per-person jitter.
    report = prepare_workspace(paths, project_spec(date_jitter_days=0), source_files, version=1)
    assert report.datasets["visits"].transforms["visit_date"] == "date_shift"
    key = derive_key(load_secrets(paths, "cardio-2026").pseudonym_key, "pseudonym")
    p1 = pseudonym(key, 1)
    visit_date, discharge, month = query(
        report.views_db,
        f"SELECT visit_date, discharge_date, visit_month FROM visits WHERE pid = '{p1}' AND visit_id = 10",
    )[0]
    assert (visit_date, discharge) == (date(2018, 4, 11), date(2018, 7, 10))
    assert (discharge - visit_date).days == 90
    assert month == "2018-04"  # generalised after the shift, so it does not reveal the offset
    ages = dict(query(report.views_db, "SELECT age, count(*) FROM patients GROUP BY age"))
    assert ages[">89"] == 10 and ages["35-39"] == 10 and "93" not in ages
    assert {r[0] for r in query(report.views_db, "SELECT DISTINCT postcode FROM patients")} == {
        "100",
        "200",
        "300",
    }


def test_every_date_is_shifted_by_the_project_offset(paths, source_files, offset_100):
    report = prepare_workspace(paths, project_spec(date_jitter_days=0), source_files, version=1)
    prepared = query(report.views_db, "SELECT visit_id, visit_date, discharge_date FROM visits")
    raw = duckdb.execute(
        "SELECT visit_id, visit_date, discharge_date FROM read_parquet(?)", [str(source_files["visits"][1])]
    ).fetchall()
    raw_by_id = {v: (a, b) for v, a, b in raw}
    assert len(prepared) == len(raw) == PERSONS * 3
    for visit_id, a, b in prepared:
        assert a - raw_by_id[visit_id][0] == timedelta(days=100)
        assert b - raw_by_id[visit_id][1] == timedelta(days=100)


def test_direct_identifiers_and_free_text_never_survive(paths, source_files):
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    assert report.datasets["patients"].columns == ["pid", "postcode", "age", "sex"]
    assert report.datasets["patients"].dropped_columns == {
        "birth_date": "not_approved",
        "id_number": "not_approved",
        "name": "direct_id",
        "phone": "not_approved",
    }
    assert report.datasets["visits"].dropped_columns == {"notes": "free_text"}
    names = [patient_name(p).encode() for p in range(1, PERSONS + 1)]
    files = [p for p in paths.projects.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    for path in files:
        data = path.read_bytes()
        assert not any(name in data for name in names), path
        assert b"Sanfeng" not in data and b"1101081900" not in data, path


def test_person_key_is_pseudonymised_and_joins_across_datasets(paths, source_files):
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    pids = {r[0] for r in query(report.views_db, "SELECT pid FROM patients")}
    assert len(pids) == PERSONS and all(p.startswith("p_") and len(p) == 18 for p in pids)
    assert not pids & {str(i) for i in range(1, PERSONS + 1)}
    joined = query(
        report.views_db, "SELECT count(*), count(DISTINCT v.pid) FROM visits v JOIN patients p USING (pid)"
    )[0]
    assert joined == (PERSONS * 3, PERSONS)


def test_two_projects_get_different_pseudonyms_and_offsets(paths, source_files):
    a = prepare_workspace(paths, project_spec("alpha-1", date_jitter_days=0), source_files, version=1)
    b = prepare_workspace(paths, project_spec("beta-1", date_jitter_days=0), source_files, version=1)
    sql = "SELECT pid, visit_date FROM visits WHERE visit_id = 10"
    (pa, da), (pb, db) = query(a.views_db, sql)[0], query(b.views_db, sql)[0]
    assert pa != pb
    sa, sb = load_secrets(paths, "alpha-1"), load_secrets(paths, "beta-1")
    assert sa.pseudonym_key != sb.pseudonym_key
    if sa.date_offset_days != sb.date_offset_days:  # equal by chance with probability 1/672
        assert da != db
    # unlinkable: no pseudonym of one project appears in the other
    pids_a = {r[0] for r in query(a.views_db, "SELECT pid FROM patients")}
    pids_b = {r[0] for r in query(b.views_db, "SELECT pid FROM patients")}
    assert not pids_a & pids_b


def test_pseudonyms_are_stable_across_versions(paths, source_files):
    first = prepare_workspace(paths, project_spec(), source_files, version=1)
    before = query(first.views_db, "SELECT visit_id, pid, visit_date FROM visits ORDER BY visit_id")
    second = prepare_workspace(paths, project_spec(), source_files, version=2)
    assert current_views_db(paths, "cardio-2026") == second.views_db
    assert query(second.views_db, "SELECT visit_id, pid, visit_date FROM visits ORDER BY visit_id") == before
    assert first.views_db.exists()  # earlier versions are kept (R-PREP-22)


def test_no_secret_appears_in_any_prepared_file(paths, source_files):
    prepare_workspace(paths, project_spec(), source_files, version=1)
    secret = load_secrets(paths, "cardio-2026")
    needles = [secret.pseudonym_key, secret.pseudonym_key.hex().encode()]
    for purpose in ("pseudonym", "date_offset", "date_jitter", "twin"):
        sub = derive_key(secret.pseudonym_key, purpose)
        needles += [sub, sub.hex().encode(), *key_params("k", sub).values()]
    needles += [ledger.ledger_key(paths), ledger.ledger_key(paths).hex().encode()]
    files = [p for p in paths.projects.rglob("*") if p.is_file()] + list((paths.vault / "ledger").rglob("*"))
    assert len(files) >= 8
    for path in files:
        if path.is_file():
            data = path.read_bytes()
            assert not any(needle in data for needle in needles), path
    report = json.loads((current_prepared_dir(paths, "cardio-2026") / "report.json").read_text())
    assert str(secret.date_offset_days) not in json.dumps(report.get("date_shift"))


def test_views_database_holds_only_views_over_the_prepared_parquet(paths, source_files):
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    con = duckdb.connect(str(report.views_db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0] == 0
        views = dict(con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())
        with pytest.raises(duckdb.Error):
            con.execute("CREATE TABLE x (a INT)")
    finally:
        con.close()
    assert set(views) == {"patients", "visits"}
    for name, sql in views.items():
        assert f"read_parquet('{report.prepared_dir / name}.parquet')" in sql
    assert oct(report.views_db.stat().st_mode & 0o777) == oct(0o440)


def test_twin_has_the_same_schema_and_no_rare_or_extreme_values(paths, source_files):
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    for name in ("patients", "visits"):
        real = query(report.views_db, f"DESCRIBE {name}")
        fake = query(report.twin_db, f"DESCRIBE {name}")
        assert [(r[0], r[1]) for r in real] == [(r[0], r[1]) for r in fake]
    dx = {r[0] for r in query(report.twin_db, "SELECT DISTINCT dx FROM visits")}
    assert RARE_DX not in dx and dx <= {"I10", "E11", "J45"} and dx
    low, high = query(report.twin_db, "SELECT min(cost), max(cost) FROM visits")[0]
    assert high < OUTLIER_COST / 100 and low >= 0
    real_pids = {r[0] for r in query(report.views_db, "SELECT pid FROM patients")}
    twin_pids = {r[0] for r in query(report.twin_db, "SELECT pid FROM visits")}
    assert twin_pids and not twin_pids & real_pids
    assert query(report.twin_db, "SELECT count(*) FROM visits JOIN patients USING (pid)")[0][0] > 0
    # no real row is copied whole into the twin
    real_rows = set(query(report.views_db, "SELECT * EXCLUDE (pid) FROM visits"))
    assert not real_rows & set(query(report.twin_db, "SELECT * EXCLUDE (pid) FROM visits"))


def test_twin_drops_columns_with_fewer_than_k_persons(paths, tmp_path):
    files = sources(tmp_path / "src")
    spec = project_spec(min_cell_count=61)  # more than the 60 persons: nothing may appear
    report = prepare_workspace(paths, spec, files, version=1)
    row = query(report.twin_db, "SELECT count(dx), count(cost), count(visit_date), count(pid) FROM visits")[0]
    assert row[:3] == (0, 0, 0) and row[3] > 0


def test_twin_is_reproducible_for_the_same_secrets_and_data(paths, source_files):
    a = prepare_workspace(paths, project_spec(), source_files, version=1)
    b = prepare_workspace(paths, project_spec(), source_files, version=2)
    sql = "SELECT * FROM visits ORDER BY ALL"
    assert query(a.twin_db, sql) == query(b.twin_db, sql)


def test_current_pointers_and_not_prepared(paths, source_files):
    with pytest.raises(NotFound) as error:
        current_views_db(paths, "cardio-2026")
    assert error.value.code == "workspace_not_prepared"
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    assert current_views_db(paths, "cardio-2026") == report.views_db
    assert current_twin_db(paths, "cardio-2026") == report.twin_db
    assert (layout.prepared_root(paths, "cardio-2026") / "v1").resolve() == report.prepared_dir
    assert layout.current_version(paths, "cardio-2026") == 1
    saved = json.loads((report.prepared_dir / "report.json").read_text())
    assert saved == json.loads(json.dumps(report.to_dict()))


def test_csv_sources_work(paths, tmp_path, offset_100):
    files = sources(tmp_path / "csv", fmt="csv")
    report = prepare_workspace(paths, project_spec(date_jitter_days=0), files, version=1)
    row = query(report.views_db, "SELECT visit_date, discharge_date FROM visits WHERE visit_id = 10")[0]
    assert row == (date(2018, 4, 11), date(2018, 7, 10))


def test_per_person_offsets_keep_intervals_within_each_person(paths, source_files):
    spec = project_spec(date_jitter_days=0)
    report = prepare_workspace(paths, spec, source_files, version=1, per_person_offset=True)
    assert report.date_shift == "per_person" and load_secrets(paths, "cardio-2026").per_person_offset
    prepared = query(report.views_db, "SELECT visit_id, pid, visit_date, discharge_date FROM visits")
    raw = duckdb.execute(
        "SELECT visit_id, visit_date, discharge_date FROM read_parquet(?)", [str(source_files["visits"][1])]
    ).fetchall()
    raw_by_id = {v: (a, b) for v, a, b in raw}
    offsets: dict[str, set[int]] = {}
    for visit_id, pid, a, b in prepared:
        shift = (a - raw_by_id[visit_id][0]).days
        assert (b - raw_by_id[visit_id][1]).days == shift and 30 <= abs(shift) <= 365
        offsets.setdefault(pid, set()).add(shift)
    assert all(len(s) == 1 for s in offsets.values())  # one offset per person
    assert len({next(iter(s)) for s in offsets.values()}) > 10  # but not one for everybody


def test_year_generalisation_of_a_quasi_identifier(paths, source_files):
    spec = project_spec(datasets={"patients": ["pid", "birth_date", "sex"]})
    report = prepare_workspace(paths, spec, {"patients": source_files["patients"]}, version=1)
    years = {r[0] for r in query(report.views_db, "SELECT DISTINCT birth_date FROM patients")}
    assert years and all(isinstance(y, int) and 1920 < y < 2000 for y in years)
    assert report.datasets["patients"].quasi_ids == ["birth_date", "sex"]


# --- k-anonymity -----------------------------------------------------------------------------------


def test_rows_mode_fails_closed_when_k_is_violated(paths, rare_source_files):
    with pytest.raises(Refused) as error:
        prepare_workspace(paths, project_spec(access="rows"), rare_source_files, version=1)
    assert error.value.code == "k_anonymity_violated" and error.value.exit_code == 3
    [reason] = error.value.reasons
    assert reason.details["min_class_size"] == 1 and reason.message_zh
    assert reason.details["smallest_classes"][0] == {
        "values": {"postcode": "999", "age": "35-39", "sex": "F"},
        "persons": 1,
    }
    assert_nothing_visible(paths, "cardio-2026")


def test_aggregate_mode_reports_small_classes_but_prepares(paths, rare_source_files):
    report = prepare_workspace(paths, project_spec(), rare_source_files, version=1)
    assert not report.k_ok
    patients = report.datasets["patients"]
    assert patients.k_min_class_size == 1 and patients.k_classes_below == 1
    assert patients.smallest_classes[0]["persons"] == 1
    assert report.datasets["visits"].k_ok


def test_rows_mode_prepares_k_anonymous_data(paths, source_files):
    report = prepare_workspace(paths, project_spec(access="rows"), source_files, version=1)
    assert report.k_ok and report.datasets["patients"].k_min_class_size == 10


# --- failure paths and atomicity -------------------------------------------------------------------


def assert_nothing_visible(paths, project_id, *, version: int | None = None):
    root = layout.prepared_root(paths, project_id)
    if version is None:
        with pytest.raises(NotFound):
            current_views_db(paths, project_id)
        assert not (root / "builds").exists() or not any((root / "builds").iterdir())
        assert not (paths.vault / "ledger" / project_id).exists() or not any(
            (paths.vault / "ledger" / project_id).iterdir()
        )
    else:
        assert layout.current_version(paths, project_id) == version


def test_missing_column_is_bad_input_naming_it(paths, tmp_path):
    files = sources(tmp_path / "src")
    frame = duckdb.execute(
        "SELECT * EXCLUDE (sex) FROM read_parquet(?)", [str(files["patients"][1])]
    ).fetchdf()
    broken = tmp_path / "broken.parquet"
    frame.to_parquet(broken)
    files["patients"] = (files["patients"][0], broken)
    with pytest.raises(BadInput) as error:
        prepare_workspace(paths, project_spec(), files, version=1)
    codes = {(r.code, r.details.get("field")) for r in error.value.reasons}
    assert codes == {("column_missing", "patients.sex")}
    assert_nothing_visible(paths, "cardio-2026")


def test_unknown_column_missing_source_and_bad_format_are_all_reported(paths, tmp_path):
    files = sources(tmp_path / "src")
    spec = project_spec(datasets={"patients": ["pid", "weight"], "visits": ["pid"], "labs": ["pid"]})
    text = tmp_path / "visits.txt"
    text.write_text("pid\n1\n")
    files["visits"] = (files["visits"][0], text)
    with pytest.raises(BadInput) as error:
        prepare_workspace(paths, spec, files, version=1)
    codes = sorted(r.code for r in error.value.reasons)
    assert codes == ["column_unknown", "dataset_source_missing", "source_format_unsupported"]
    assert error.value.message_zh


def test_unreadable_and_missing_source_files(paths, tmp_path):
    files = sources(tmp_path / "src")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    files["patients"] = (files["patients"][0], garbage)
    files["visits"] = (files["visits"][0], tmp_path / "absent.parquet")
    with pytest.raises(BadInput) as error:
        prepare_workspace(paths, project_spec(), files, version=1)
    assert sorted(r.code for r in error.value.reasons) == ["source_not_found", "source_unreadable"]


def test_a_date_that_is_not_a_date_fails_without_quoting_the_value(paths, tmp_path):
    files = sources(tmp_path / "src")
    frame = duckdb.execute("SELECT * FROM read_parquet(?)", [str(files["visits"][1])]).fetchdf()
    frame["visit_date"] = frame["visit_date"].astype(str)
    frame.loc[3, "visit_date"] = "secret-value-zz"
    bad = tmp_path / "visits.parquet"
    frame.to_parquet(bad)
    files["visits"] = (files["visits"][0], bad)
    with pytest.raises(BadInput) as error:
        prepare_workspace(paths, project_spec(), files, version=1)
    assert error.value.code == "source_invalid"
    assert "secret-value-zz" not in str(error.value.to_dict())
    assert_nothing_visible(paths, "cardio-2026")


def test_invalid_version_and_project_id(paths, source_files):
    with pytest.raises(BadInput):
        prepare_workspace(paths, project_spec(), source_files, version=0)
    with pytest.raises(BadInput):
        layout.prepared_root(paths, "../escape")


@pytest.mark.parametrize(
    "step",
    ["patients: de-identifying", "visits: synthesising the twin", "building views", "switching"],
)
def test_interrupt_leaves_the_previous_version_visible(paths, source_files, step):
    first = prepare_workspace(paths, project_spec(), source_files, version=1)
    before = query(first.views_db, "SELECT * FROM visits ORDER BY visit_id")

    def interrupt(message: str) -> None:
        if message.startswith(step):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_workspace(paths, project_spec(), source_files, version=2, progress=interrupt)
    root = layout.prepared_root(paths, "cardio-2026")
    assert layout.current_version(paths, "cardio-2026") == 1
    assert current_views_db(paths, "cardio-2026") == first.views_db
    assert query(first.views_db, "SELECT * FROM visits ORDER BY visit_id") == before
    assert not (root / "v2").exists()
    assert [p.name for p in (root / "builds").iterdir()] == [first.prepared_dir.name]
    if step != "switching":  # the ledger is committed just before the switch (over-reporting is safe)
        assert not (paths.vault / "ledger" / "cardio-2026" / "v2").exists()
    # and the next attempt succeeds
    prepare_workspace(paths, project_spec(), source_files, version=2)
    assert layout.current_version(paths, "cardio-2026") == 2


def test_interrupt_of_a_first_preparation_leaves_nothing(paths, source_files):
    def interrupt(message: str) -> None:
        if message.startswith("visits: checking"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_workspace(paths, project_spec(), source_files, version=1, progress=interrupt)
    assert_nothing_visible(paths, "cardio-2026")


def test_leftover_builds_from_a_crash_are_cleaned_up(paths, source_files):
    root = layout.prepared_root(paths, "cardio-2026")
    crashed = layout.new_build_dir(root, 1)
    (crashed / "patients.parquet").write_bytes(b"half")
    prepare_workspace(paths, project_spec(), source_files, version=1)
    assert not crashed.exists()


def test_prepared_files_are_read_only_and_private_folders(paths, source_files):
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    for path in report.prepared_dir.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o222 == 0, path
    assert (paths.projects / "cardio-2026" / "prepared").stat().st_mode & 0o077 == 0
    assert os.stat(paths.secrets).st_mode & 0o077 == 0


def test_twin_drawn_from_a_person_sample_still_obeys_k(paths, source_files, monkeypatch):
    from enclave.prepare import build as prepare_module

    monkeypatch.setattr(prepare_module, "TWIN_SAMPLE_PERSONS", 20)  # sample ~1 person in 3
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    dx = {r[0] for r in query(report.twin_db, "SELECT DISTINCT dx FROM visits WHERE dx IS NOT NULL")}
    assert RARE_DX not in dx and dx <= {"I10", "E11", "J45"}
    assert query(report.twin_db, "SELECT count(*) FROM visits")[0][0] == prepare_module.TWIN_ROWS
    # the real data is complete: sampling concerns the twin only
    assert query(report.views_db, "SELECT count(*) FROM visits")[0][0] == PERSONS * 3
