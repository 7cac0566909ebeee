"""The demo-data generator: reproducible, well-formed, realistic enough for the disclosure rules to bite."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from enclave import catalog
from enclave.config import Paths
from enclave.db import session_scope
from enclave.demo_data import (
    DATASETS,
    MAX_PATIENTS,
    MAX_SEED,
    generate,
    generator,
    identity,
    sampling,
    strings,
)
from enclave.demo_data.reference_clinical import DIAGNOSES, DRUGS, LAB_TESTS
from enclave.demo_data.reference_people import AREAS, MOBILE_PREFIXES, SURNAMES
from enclave.errors import BadInput
from enclave.specs import ColumnRole, Generalize, load_dataset_spec

PATIENTS = 2_000
SEED = 20260101
FILES = [f"{name}.{ext}" for name in DATASETS for ext in ("parquet", "yaml")]
RARE_CODES = [d.code for d in DIAGNOSES if d.rare]
CJK = re.compile(r"^[\u4e00-\u9fff]+$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, PATIENTS, SEED)
    return out


@pytest.fixture(scope="module")
def db(demo: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    for name in DATASETS:
        connection.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{demo / name}.parquet')")
    return connection


def scalar(db: duckdb.DuckDBPyConnection, sql: str) -> object:
    return db.execute(sql).fetchone()[0]


def iso7064_mod11_2(body: str) -> str:
    """The check character computed the recursive way of ISO 7064, independent of the generator's."""
    remainder = 0
    for character in body:
        remainder = ((remainder + int(character)) * 2) % 11
    value = (12 - remainder) % 11
    return "X" if value == 10 else str(value)


# --- determinism ----------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(demo: Path, tmp_path: Path) -> None:
    generate(tmp_path, PATIENTS, SEED)
    for filename in FILES:
        assert (tmp_path / filename).read_bytes() == (demo / filename).read_bytes(), filename


def test_different_seed_gives_different_data(demo: Path, tmp_path: Path) -> None:
    generate(tmp_path, PATIENTS, SEED + 1)
    for name in DATASETS:
        ours, theirs = pq.read_table(demo / f"{name}.parquet"), pq.read_table(tmp_path / f"{name}.parquet")
        assert ours.schema == theirs.schema
        assert not ours.equals(theirs), name
    names = pq.read_table(tmp_path / "patients.parquet").column("id_number").to_pylist()
    assert len(set(names) & set(pq.read_table(demo / "patients.parquet").column("id_number").to_pylist())) < 5


def test_chunked_generation_keeps_keys_unique_and_rare_diagnoses_rare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator, "CHUNK_PATIENTS", 700)  # three chunks, the last one short
    summary = generate(tmp_path, PATIENTS, SEED)
    con = duckdb.connect()
    patients = f"read_parquet('{tmp_path / 'patients.parquet'}')"
    visits = f"read_parquet('{tmp_path / 'visits.parquet'}')"
    assert con.execute(
        f"SELECT count(DISTINCT id_number), count(DISTINCT pid) FROM {patients}"
    ).fetchone() == (
        PATIENTS,
        PATIENTS,
    )
    assert con.execute(f"SELECT min(pid), max(pid) FROM {patients}").fetchone() == ("P0000001", "P0002000")
    numbers = con.execute(f"SELECT CAST(substr(visit_id, 3) AS BIGINT) FROM {visits}").fetchnumpy()
    assert np.array_equal(next(iter(numbers.values())), np.arange(1, summary.rows("visits") + 1))
    rare = con.execute(
        f"SELECT dx, count(DISTINCT pid) FROM {visits} WHERE dx IN {tuple(RARE_CODES)} GROUP BY dx"
    ).fetchall()
    assert sorted(code for code, _ in rare) == sorted(RARE_CODES)
    assert all(1 <= n < 5 for _, n in rare)


# --- shape ----------------------------------------------------------------------------------------

EXPECTED_TYPES = {
    "patients": {
        "pid": "VARCHAR", "name": "VARCHAR", "id_number": "VARCHAR", "sex": "VARCHAR",
        "birth_date": "DATE", "age": "INTEGER", "ethnicity": "VARCHAR", "phone": "VARCHAR",
        "address": "VARCHAR", "postcode": "VARCHAR",
    },
    "visits": {
        "visit_id": "VARCHAR", "pid": "VARCHAR", "visit_type": "VARCHAR", "visit_date": "DATE",
        "discharge_date": "DATE", "department": "VARCHAR", "dx": "VARCHAR", "dx_name": "VARCHAR",
        "cost": "DOUBLE", "notes": "VARCHAR",
    },
    "labs": {
        "pid": "VARCHAR", "test_date": "DATE", "test_code": "VARCHAR", "test_name": "VARCHAR",
        "value": "DOUBLE", "unit": "VARCHAR", "abnormal_flag": "VARCHAR",
    },
    "prescriptions": {
        "pid": "VARCHAR", "rx_date": "DATE", "drug": "VARCHAR", "atc_code": "VARCHAR", "quantity": "INTEGER",
        "cost": "DOUBLE",
    },
}  # fmt: skip


@pytest.mark.parametrize("name", DATASETS)
def test_columns_and_types(db: duckdb.DuckDBPyConnection, name: str) -> None:
    described = {row[0]: row[1] for row in db.execute(f"DESCRIBE {name}").fetchall()}
    assert described == EXPECTED_TYPES[name]


def test_parquet_reads_back_as_plain_strings(demo: Path) -> None:
    schema = pq.read_schema(demo / "visits.parquet")
    assert schema.field("department").type == pa.string()
    assert schema.field("visit_date").type == pa.date32()


def test_row_counts_are_plausible(demo: Path, db: duckdb.DuckDBPyConnection) -> None:
    counts = {name: scalar(db, f"SELECT count(*) FROM {name}") for name in DATASETS}
    assert counts["patients"] == PATIENTS
    assert 7 * PATIENTS <= counts["visits"] <= 13 * PATIENTS
    assert 0.3 * counts["visits"] <= counts["labs"] <= 1.5 * counts["visits"]
    assert 0.4 * counts["visits"] <= counts["prescriptions"] <= 1.5 * counts["visits"]
    assert not db.execute("SELECT * FROM patients WHERE pid NOT IN (SELECT pid FROM visits)").fetchall()


def test_no_nulls_except_outpatient_discharge(db: duckdb.DuckDBPyConnection) -> None:
    for name, types in EXPECTED_TYPES.items():
        for column in types:
            nulls = scalar(db, f"SELECT count(*) FROM {name} WHERE {column} IS NULL")
            if (name, column) == ("visits", "discharge_date"):
                outpatient = scalar(db, "SELECT count(*) FROM visits WHERE visit_type = 'outpatient'")
                assert nulls == outpatient > 0
            else:
                assert nulls == 0, f"{name}.{column}"


def test_keys_are_unique_and_every_reference_resolves(db: duckdb.DuckDBPyConnection) -> None:
    assert scalar(db, "SELECT count(DISTINCT pid) FROM patients") == PATIENTS
    assert scalar(db, "SELECT count(DISTINCT id_number) FROM patients") == PATIENTS
    assert scalar(db, "SELECT count(DISTINCT visit_id) = count(*) FROM visits")
    for name in ("visits", "labs", "prescriptions"):
        assert scalar(db, f"SELECT count(*) FROM {name} WHERE pid NOT IN (SELECT pid FROM patients)") == 0
    assert all(re.fullmatch(r"P\d{7}", p) for (p,) in db.execute("SELECT pid FROM patients").fetchall())
    prefixes = dict(
        db.execute("SELECT visit_type, any_value(left(visit_id, 2)) FROM visits GROUP BY 1").fetchall()
    )
    assert prefixes == {"outpatient": "MZ", "emergency": "JZ", "inpatient": "ZY"}
    assert (
        scalar(db, "SELECT count(DISTINCT left(visit_id, 2)) FROM visits GROUP BY visit_type ORDER BY 1 DESC")
        == 1
    )


def test_dates_lie_in_range_and_after_birth(db: duckdb.DuckDBPyConnection) -> None:
    low, high = db.execute(
        "SELECT min(visit_date), max(coalesce(discharge_date, visit_date)) FROM visits"
    ).fetchone()
    assert date(2018, 1, 1) <= low and high <= date(2025, 12, 31)
    assert scalar(db, "SELECT count(*) FROM visits WHERE discharge_date < visit_date") == 0
    assert (
        scalar(db, "SELECT count(*) FROM visits WHERE visit_type = 'inpatient' AND discharge_date IS NULL")
        == 0
    )
    assert (
        scalar(db, "SELECT avg(discharge_date - visit_date) FROM visits WHERE visit_type = 'inpatient'") > 3
    )
    before_birth = (
        "SELECT count(*) FROM visits v JOIN patients p USING (pid) WHERE v.visit_date < p.birth_date"
    )
    assert scalar(db, before_birth) == 0
    for name, column in (("labs", "test_date"), ("prescriptions", "rx_date")):
        low, high = db.execute(f"SELECT min({column}), max({column}) FROM {name}").fetchone()
        assert date(2018, 1, 1) <= low and high <= date(2025, 12, 31)
        orphans = (
            f"SELECT count(*) FROM {name} x ANTI JOIN visits v ON x.pid = v.pid AND x.{column} = v.visit_date"
        )
        assert scalar(db, orphans) == 0, f"every {name} row belongs to a visit of its patient"
    years = {y for (y,) in db.execute("SELECT DISTINCT year(visit_date) FROM visits").fetchall()}
    assert years == set(range(2018, 2026))


# --- patients: identifiers ------------------------------------------------------------------------


def test_check_character_matches_the_standard_example() -> None:
    assert identity.check_character("11010519491231002") == "X"  # GB 11643-1999's worked example
    assert iso7064_mod11_2("11010519491231002") == "X"
    with pytest.raises(ValueError):
        identity.check_character("1101051949123100")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=17, max_size=17))
def test_check_character_agrees_with_the_recursive_algorithm(body: str) -> None:
    assert identity.check_character(body) == iso7064_mod11_2(body)


def test_id_numbers_are_valid_and_encode_birth_date_sex_and_area(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute("SELECT id_number, birth_date, sex, postcode, address FROM patients").fetchall()
    areas = {str(a.code): a for a in AREAS}
    checks = set()
    for id_number, birth, sex, postcode, address in rows:
        assert re.fullmatch(r"\d{17}[\dX]", id_number), id_number
        assert id_number[17] == iso7064_mod11_2(id_number[:17]), id_number
        assert id_number[6:14] == birth.strftime("%Y%m%d")
        assert int(id_number[16]) % 2 == (1 if sex == "M" else 0)
        assert 1 <= int(id_number[14:17]) <= 998
        area = areas[id_number[:6]]
        assert postcode[:3] == area.postcode[:3] and re.fullmatch(r"\d{6}", postcode)
        assert address.startswith(area.province + area.city + area.county)
        checks.add(id_number[17])
    assert "X" in checks and len(checks) == 11  # all eleven check characters occur


def test_age_is_completed_years_on_the_reference_date(db: duckdb.DuckDBPyConnection) -> None:
    reference = date(2026, 1, 1)
    for birth, age in db.execute("SELECT birth_date, age FROM patients").fetchall():
        expected = reference.year - birth.year - ((reference.month, reference.day) < (birth.month, birth.day))
        assert age == expected
    low, high, mean = db.execute("SELECT min(age), max(age), avg(age) FROM patients").fetchone()
    assert low >= 0 and high <= 105 and 30 < mean < 60


def test_names_phones_and_sex_look_real(db: duckdb.DuckDBPyConnection) -> None:
    surnames = {s for s, _ in SURNAMES}
    rows = db.execute("SELECT name, phone, sex, ethnicity FROM patients").fetchall()
    for name, phone, sex, ethnicity in rows:
        assert CJK.match(name) and 2 <= len(name) <= 4
        assert name[:1] in surnames or name[:2] in surnames
        assert re.fullmatch(r"1\d{10}", phone) and int(phone[:3]) in MOBILE_PREFIXES
        assert sex in ("M", "F")
        assert ethnicity.endswith("族")
    male = sum(1 for r in rows if r[2] == "M") / len(rows)
    assert 0.45 < male < 0.55
    top = db.execute(
        "SELECT left(name, 1) s, count(*) c FROM patients GROUP BY s ORDER BY c DESC LIMIT 5"
    ).fetchall()
    assert {s for s, _ in top} <= {"王", "李", "张", "刘", "陈", "杨", "黄"}  # frequency lists, not uniform
    assert scalar(db, "SELECT count(DISTINCT name) FROM patients") < PATIENTS  # common names repeat


# --- specs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_specs_load_and_match_the_parquet_columns(demo: Path, name: str) -> None:
    spec = load_dataset_spec(demo / f"{name}.yaml")
    assert spec.name == name and spec.source == f"{name}.parquet" and spec.person_key == "pid"
    assert (demo / spec.source).is_file()
    assert list(spec.columns) == pq.read_schema(demo / spec.source).names


def test_specs_classify_columns_as_the_deidentification_rules_need(demo: Path) -> None:
    specs = {name: load_dataset_spec(demo / f"{name}.yaml") for name in DATASETS}
    patients, visits = specs["patients"], specs["visits"]
    assert (patients.level, patients.category.value, patients.share_type.value) == (
        4,
        "personal_attributes",
        "conditional",
    )
    assert set(patients.columns_with_role(ColumnRole.DIRECT_ID)) == {"name", "id_number", "phone", "address"}
    assert patients.columns["age"].generalize is Generalize.AGE_BAND_5
    assert patients.columns["postcode"].generalize is Generalize.POSTCODE_PREFIX_3
    assert patients.columns["sex"].role is ColumnRole.QUASI_ID
    assert patients.columns["birth_date"].role is ColumnRole.DATE
    assert (visits.level, visits.category.value) == (3, "medical_care")
    assert visits.columns["visit_id"].role is ColumnRole.DIRECT_ID
    assert visits.columns["dx"].role is ColumnRole.SENSITIVE
    assert visits.columns["cost"].role is ColumnRole.MEASURE
    assert visits.columns["notes"].role is ColumnRole.TEXT
    assert set(visits.columns_with_role(ColumnRole.DATE)) == {"visit_date", "discharge_date"}
    assert (specs["labs"].level, specs["labs"].category.value) == (3, "health_status")
    assert specs["labs"].columns["value"].role is ColumnRole.MEASURE
    assert (specs["prescriptions"].level, specs["prescriptions"].category.value) == (3, "medical_care")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_demo_datasets_register_in_the_catalog(
    demo: Path, sessions: sessionmaker[Session], paths: Paths
) -> None:
    for name in DATASETS:
        with session_scope(sessions) as session:
            registration = catalog.register(session, paths, demo / f"{name}.yaml", actor="steward")
        assert registration.created and registration.name == name
        assert registration.row_count == pq.read_metadata(demo / f"{name}.parquet").num_rows


# --- clinical content -----------------------------------------------------------------------------


def test_rare_diagnoses_have_fewer_than_five_patients(db: duckdb.DuckDBPyConnection) -> None:
    by_code = dict(db.execute("SELECT dx, count(DISTINCT pid) FROM visits GROUP BY dx").fetchall())
    for code in RARE_CODES:
        assert 1 <= by_code.get(code, 0) < 5, code
    common = {code: n for code, n in by_code.items() if code not in RARE_CODES}
    assert min(common.values()) >= 5 and max(common.values()) > PATIENTS / 10
    women = scalar(db, "SELECT bool_and(sex = 'F') FROM visits JOIN patients USING (pid) WHERE dx = 'C53.9'")
    assert women


def test_common_diagnoses_dominate(db: duckdb.DuckDBPyConnection) -> None:
    top = [
        code
        for (code,) in db.execute(
            "SELECT dx FROM visits GROUP BY dx ORDER BY count(*) DESC LIMIT 6"
        ).fetchall()
    ]
    assert {"I10", "E11.9"} <= set(top)
    names = db.execute(
        "SELECT dx, count(DISTINCT dx_name) FROM visits GROUP BY dx HAVING count(DISTINCT dx_name) > 1"
    )
    assert not names.fetchall()


def test_costs_have_a_heavy_tail_that_dominates_some_cells(db: duckdb.DuckDBPyConnection) -> None:
    costs = np.sort(next(iter(db.execute("SELECT cost FROM visits").fetchnumpy().values())))
    assert costs.min() > 0
    median = np.median(costs)
    assert costs[-1] > 1000 * median
    assert costs[-10:].sum() / costs.sum() > 0.05  # ten visits out of ~20,000 hold over 5% of all cost
    dominated = scalar(
        db,
        """SELECT count(*) FROM (
               SELECT department, year(visit_date) y, max(cost) / sum(cost) top_share
               FROM visits GROUP BY ALL HAVING count(*) >= 5)
           WHERE top_share > 0.5""",
    )
    assert dominated >= 1  # an nk rule (one unit over 50%) has a cell to suppress


def test_visits_are_skewed_and_older_patients_come_more(db: duckdb.DuckDBPyConnection) -> None:
    per_patient = np.array([n for (n,) in db.execute("SELECT count(*) FROM visits GROUP BY pid").fetchall()])
    assert 8 <= per_patient.mean() <= 12
    assert np.median(per_patient) < per_patient.mean()
    assert (per_patient <= 3).mean() > 0.2 and per_patient.max() > 5 * per_patient.mean()
    by_group = dict(
        db.execute(
            """SELECT CASE WHEN age < 14 THEN 'child' WHEN age < 60 THEN 'adult' ELSE 'senior' END, avg(n)
               FROM (SELECT pid, count(*) n FROM visits GROUP BY pid) JOIN patients USING (pid) GROUP BY 1"""
        ).fetchall()
    )
    assert by_group["child"] < by_group["adult"] < by_group["senior"]


def test_departments_follow_visit_type_and_age(db: duckdb.DuckDBPyConnection) -> None:
    assert scalar(db, "SELECT bool_and(department = '急诊科') FROM visits WHERE visit_type = 'emergency'")
    assert (
        scalar(db, "SELECT count(*) FROM visits WHERE visit_type <> 'emergency' AND department = '急诊科'")
        == 0
    )
    adult_paediatrics = """SELECT count(*) FROM visits JOIN patients USING (pid)
                           WHERE department = '儿科' AND visit_date - birth_date > 15 * 366
                             AND dx <> 'E70.0'"""
    assert scalar(db, adult_paediatrics) == 0
    assert scalar(db, "SELECT count(*) FROM visits WHERE department = '儿科'") > 0


def test_notes_are_short_chinese_text(db: duckdb.DuckDBPyConnection) -> None:
    rows = db.execute("SELECT notes, sex FROM visits JOIN patients USING (pid)").fetchall()
    for note, sex in rows:
        assert 10 <= len(note) <= 80 and "{" not in note and note.endswith("。")
        assert ("男" in note.split("，")[0] + note.split("，")[1]) == (sex == "M")
    assert scalar(db, "SELECT count(DISTINCT notes) FROM visits") > 500


def test_lab_values_are_plausible_and_flags_match_reference_ranges(db: duckdb.DuckDBPyConnection) -> None:
    tests = {t.code: t for t in LAB_TESTS}
    rows = db.execute("SELECT test_code, test_name, unit, value, abnormal_flag FROM labs").fetchall()
    for code, name, unit, value, flag in rows:
        test = tests[code]
        assert (name, unit) == (test.name, test.unit)
        assert value > 0
        expected = "H" if value > test.high else "L" if test.low > 0 and value < test.low else "N"
        assert flag == expected
    flags = dict(db.execute("SELECT abnormal_flag, count(*) FROM labs GROUP BY 1").fetchall())
    assert flags["N"] > flags["H"] > 0 and flags.get("L", 0) > 0


def test_diabetes_raises_hba1c_and_brings_metformin(db: duckdb.DuckDBPyConnection) -> None:
    hba1c = dict(
        db.execute(
            """SELECT pid IN (SELECT pid FROM visits WHERE dx = 'E11.9') diabetic, avg(value)
               FROM labs WHERE test_code = '4548-4' GROUP BY 1"""
        ).fetchall()
    )
    assert hba1c[True] > hba1c[False] + 1.0
    metformin = """SELECT avg(CASE WHEN pid IN (SELECT pid FROM visits WHERE dx = 'E11.9') THEN 1 ELSE 0 END)
                   FROM prescriptions WHERE drug = '二甲双胍'"""
    assert scalar(db, metformin) == 1.0
    diabetic_first_line = """SELECT avg(CASE WHEN r.drug = '二甲双胍' THEN 1 ELSE 0 END)
                             FROM visits v JOIN prescriptions r ON r.pid = v.pid AND r.rx_date = v.visit_date
                             WHERE v.dx = 'E11.9'"""
    assert scalar(db, diabetic_first_line) > 0.2


def test_prescriptions_are_consistent(db: duckdb.DuckDBPyConnection) -> None:
    atc = {d.name: d.atc for d in DRUGS}
    for drug, code, quantity, cost in db.execute(
        "SELECT drug, atc_code, quantity, cost FROM prescriptions"
    ).fetchall():
        assert atc[drug] == code and quantity > 0 and cost > 0


# --- arguments and failures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patients", "seed", "code"),
    [
        (0, 1, "demo_patients_out_of_range"),
        (-5, 1, "demo_patients_out_of_range"),
        (MAX_PATIENTS + 1, 1, "demo_patients_out_of_range"),
        (10**12, 1, "demo_patients_out_of_range"),
        (2.5, 1, "demo_patients_invalid"),
        ("100", 1, "demo_patients_invalid"),
        (True, 1, "demo_patients_invalid"),
        (10, -1, "demo_seed_invalid"),
        (10, MAX_SEED + 1, "demo_seed_invalid"),
        (10, "42", "demo_seed_invalid"),
        (10, None, "demo_seed_invalid"),
    ],
)
def test_bad_arguments_are_refused_with_a_stable_code(
    tmp_path: Path, patients: object, seed: object, code: str
) -> None:
    out = tmp_path / "out"
    with pytest.raises(BadInput) as caught:
        generate(out, patients, seed)  # type: ignore[arg-type]
    assert caught.value.code == code and caught.value.exit_code == 2
    assert caught.value.message and re.search(r"[\u4e00-\u9fff]", caught.value.message_zh)
    assert not out.exists()


def test_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(BadInput) as caught:
        generate(target, 10, 1)
    assert caught.value.code == "demo_out_dir_invalid"
    assert target.read_text() == "keep me"


def test_smallest_cohort_works(tmp_path: Path) -> None:
    summary = generate(tmp_path, 1, 0)
    assert summary.rows("patients") == 1 and summary.rows("visits") >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
    for dataset in summary.datasets:
        assert pq.read_table(dataset.parquet).num_rows == dataset.rows
        load_dataset_spec(dataset.spec)


def test_a_failure_leaves_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate(tmp_path, 50, 1)
    before = {f: (tmp_path / f).read_bytes() for f in FILES}

    def broken(*args: object) -> None:
        raise RuntimeError("simulated crash while building labs")

    monkeypatch.setattr(generator.labs, "build_labs", broken)
    with pytest.raises(RuntimeError):
        generate(tmp_path, 50, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)  # no temporary files left
    assert {f: (tmp_path / f).read_bytes() for f in FILES} == before


def test_a_write_error_becomes_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(generator.OutputSet, "commit", full)
    with pytest.raises(BadInput) as caught:
        generate(tmp_path, 20, 1)
    assert caught.value.code == "demo_write_failed" and "No space left" in caught.value.message
    assert list(tmp_path.iterdir()) == []


def test_too_little_disk_space_is_refused_up_front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generator, "BYTES_PER_PATIENT", 10**15)
    with pytest.raises(BadInput) as caught:
        generate(tmp_path, 20, 1)
    assert caught.value.code == "demo_disk_full"
    assert list(tmp_path.iterdir()) == []


def test_progress_reports_rows_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generator, "CHUNK_PATIENTS", 40)
    calls: list[tuple[str, int]] = []
    summary = generate(tmp_path, 100, 3, progress=lambda name, rows: calls.append((name, rows)))
    for name in DATASETS:
        seen = [rows for n, rows in calls if n == name]
        assert len(seen) == 3 and seen == sorted(seen) and seen[-1] == summary.rows(name)
    assert summary.seconds > 0
    assert summary.to_dict()["datasets"][0] == {
        "name": "patients",
        "parquet": str(tmp_path / "patients.parquet"),
        "spec": str(tmp_path / "patients.yaml"),
        "rows": 100,
    }


# --- building blocks ------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**9 - 1), min_size=1, max_size=50), st.integers(9, 12))
def test_digits_pad_like_format(values: list[int], width: int) -> None:
    array = strings.fixed_width(strings.literal("V", len(values)), strings.digits(np.array(values), width))
    assert array.to_pylist() == [f"V{v:0{width}d}" for v in values]


def test_digits_refuse_numbers_that_do_not_fit() -> None:
    with pytest.raises(ValueError):
        strings.digits(np.array([1000]), 3)
    with pytest.raises(ValueError):
        strings.digits(np.array([-1]), 3)


def test_conditional_draws_respect_each_groups_weights() -> None:
    rng = sampling.stream(1, "visits")
    table = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 2.0]])
    group = rng.integers(0, 3, 30_000)
    drawn = sampling.conditional(rng, table, group)
    assert (
        set(drawn[group == 0]) == {1} and set(drawn[group == 1]) == {0, 2} and set(drawn[group == 2]) == {2}
    )
    assert 0.47 < (drawn[group == 1] == 0).mean() < 0.53
    with pytest.raises(ValueError):
        sampling.conditional(rng, np.array([[0.0, 0.0]]), np.zeros(3, dtype=np.int32))


def test_id_registry_never_issues_a_number_twice() -> None:
    rng = sampling.stream(1, "patients")
    registry = identity.IdRegistry()
    area = np.full(300, 420111)
    birth = np.full(300, 7000)
    male = np.ones(300, dtype=bool)
    first = registry.assign_sequences(rng, area, birth, male)
    second = registry.assign_sequences(rng, area[:150], birth[:150], male[:150])
    together = np.concatenate([first, second])
    assert np.unique(together).size == 450 and (together % 2 == 1).all()
    with pytest.raises(RuntimeError):  # only 499 odd sequence numbers exist for one area, day and sex
        registry.assign_sequences(rng, area[:50], birth[:50], male[:50])
