"""Per-person date jitter on top of the project offset (R-PREP-10, R-PREP-15): one keyed number of
days in [-N, N] per person, the same for every date of the person in every dataset of the project."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from enclave.deid.dates import JITTER_DAYS_PARAM, person_jitter, person_jitter_sql, person_shift_sql
from enclave.deid.pseudonym import derive_key, hmac_hex, key_params, pseudonym
from enclave.prepare import secrets as project_secrets
from enclave.prepare.build import prepare_workspace
from enclave.prepare.secrets import load_secrets
from enclave.specs import DEFAULT_DATE_JITTER_DAYS, parse_dataset_spec
from tests.harness.factories import dataset_spec
from tests.harness.planted import PERSONS, project_spec, query, sources

OFFSET = 100
PUBLIC_EVENT = date(2020, 1, 25)  # a public holiday: every person of the cohort has a visit that day
LABS_SPEC = dataset_spec(
    "labs",
    "labs.parquet",
    {
        "pid": {"role": "person_key"},
        "lab_date": {"role": "date"},
        "taken_at": {"role": "date"},
        "value": {"role": "measure"},
    },
    title="Labs",
    level=4,
    category="medical_care",
)


@pytest.fixture
def offset_100(monkeypatch):
    monkeypatch.setattr(project_secrets, "_random_offset", lambda: OFFSET)


def raw(path: Path, sql: str) -> list[tuple]:
    return duckdb.execute(sql.replace("SRC", f"read_parquet('{path}')")).fetchall()


def with_labs(folder: Path) -> dict:
    """The fixture sources plus a third dataset with a DATE and a TIMESTAMP per lab."""
    files = sources(folder)
    rows = [
        {
            "pid": pid,
            "lab_date": date(2019, 3, 1) + timedelta(days=pid * 3 + j),
            "taken_at": datetime(2019, 3, 1, 7, 45) + timedelta(days=pid * 3 + j),
            "value": float(pid + j),
        }
        for pid in range(1, PERSONS + 1)
        for j in range(2)
    ]
    path = folder / "labs.parquet"
    pd.DataFrame(rows).to_parquet(path, index=False)
    files["labs"] = (parse_dataset_spec(LABS_SPEC), path)
    return files


def labs_project(**overrides):
    datasets = {
        "patients": ["pid", "age", "sex"],
        "visits": ["pid", "visit_id", "visit_date", "discharge_date", "visit_month"],
        "labs": ["pid", "lab_date", "taken_at", "value"],
    }
    return project_spec(datasets=datasets, **overrides)


def shifts(report, files, dataset: str, key: str, columns: list[str]) -> dict[str, set[int]]:
    """Per pseudonym, every shift in days seen across ``columns`` (matched to the source by ``key``)."""
    cols = ", ".join([key, *columns])
    source = {r[0]: r[1:] for r in raw(files[dataset][1], f"SELECT {cols} FROM SRC")}
    out: dict[str, set[int]] = {}
    for row in query(report.views_db, f"SELECT pid, {cols} FROM {dataset}"):
        pid, ident, *values = row
        for value, original in zip(values, source[ident], strict=True):
            out.setdefault(pid, set()).add((value - original).days)
    return out


# --- the SQL builder and its Python twin ------------------------------------------------------------


def test_jitter_sql_is_within_n_covers_every_value_and_matches_python():
    key = bytes(range(32))
    params = {**key_params("k", key), JITTER_DAYS_PARAM: 7}
    rows = duckdb.execute(f"SELECT x, {person_jitter_sql('x', 'k')} FROM range(3000) t(x)", params).fetchall()
    jitters = [j for _, j in rows]
    assert all(-7 <= j <= 7 for j in jitters)
    counts = Counter(jitters)
    assert set(counts) == set(range(-7, 8)) and min(counts.values()) > 100  # about uniform: 200 each
    assert all(j == person_jitter(hmac_hex(key, str(x)), 7) for x, j in rows)
    null = duckdb.execute(f"SELECT {person_jitter_sql('NULL', 'k')}", params).fetchone()[0]
    assert null is None  # no person, no jitter: never the bare project offset


def test_jitter_is_deterministic_per_person_and_differs_between_persons_and_keys():
    a, b = bytes(32), bytes([1]) + bytes(31)
    assert person_jitter(hmac_hex(a, "42"), 7) == person_jitter(hmac_hex(a, "42"), 7)
    assert len({person_jitter(hmac_hex(a, str(p)), 7) for p in range(100)}) == 15
    assert [person_jitter(hmac_hex(a, str(p)), 7) for p in range(50)] != [
        person_jitter(hmac_hex(b, str(p)), 7) for p in range(50)
    ]


def test_jitter_key_and_days_are_bound_parameters_never_sql_text():
    key = b"\xcd" * 32
    sql = person_shift_sql('"pid"', per_person_offset=False, jitter=True, offset_key="o", jitter_key="j")
    assert "$date_offset" in sql and f"${JITTER_DAYS_PARAM}" in sql and "$j_ipad" in sql
    assert key.hex() not in sql and "cd" * 8 not in sql


def test_no_jitter_is_the_bare_offset():
    sql = person_shift_sql('"pid"', per_person_offset=False, jitter=False, offset_key="o", jitter_key="j")
    assert sql == "CAST($date_offset AS INTEGER)"


# --- end to end ------------------------------------------------------------------------------------


def test_new_projects_jitter_by_default():
    assert project_spec().date_jitter_days == DEFAULT_DATE_JITTER_DAYS == 7


def test_jitter_keeps_every_interval_of_a_person_and_stays_within_n(paths, source_files, offset_100):
    report = prepare_workspace(paths, project_spec(), source_files, version=1)
    assert report.date_jitter_days == 7 and report.date_shift == "project"
    transforms = report.datasets["visits"].transforms
    assert transforms["visit_date"] == transforms["discharge_date"] == "date_shift+jitter"
    assert transforms["visit_month"] == "date_shift+jitter+year_month"
    source = {
        r[0]: r[1:]
        for r in raw(source_files["visits"][1], "SELECT visit_id, visit_date, discharge_date FROM SRC")
    }
    prepared = query(report.views_db, "SELECT visit_id, pid, visit_date, discharge_date FROM visits")
    assert len(prepared) == PERSONS * 3
    jitter_key = derive_key(load_secrets(paths, "cardio-2026").pseudonym_key, "date_jitter")
    pseudonym_key = derive_key(load_secrets(paths, "cardio-2026").pseudonym_key, "pseudonym")
    expected = {
        pseudonym(pseudonym_key, p): person_jitter(hmac_hex(jitter_key, str(p)), 7) for p in range(1, 61)
    }
    per_person: dict[str, set[int]] = {}
    for visit_id, pid, visit_date, discharge in prepared:
        true_visit, true_discharge = source[visit_id]
        assert discharge - visit_date == true_discharge - true_visit  # the interval is exact, every row
        shift = (visit_date - true_visit).days
        assert shift - OFFSET == expected[pid] and -7 <= expected[pid] <= 7
        per_person.setdefault(pid, set()).add(shift)
    assert all(len(s) == 1 for s in per_person.values())  # one shift per person, across all their rows
    assert len({next(iter(s)) for s in per_person.values()}) >= 8  # but not one shift for everybody
    # the 90-day stay of the golden example is still 90 days
    (stay,) = query(report.views_db, "SELECT discharge_date - visit_date FROM visits WHERE visit_id = 10")[0]
    assert stay == 90


def test_jitter_is_the_same_in_every_dataset_and_every_date_column(paths, tmp_path):
    files = with_labs(tmp_path / "src")
    report = prepare_workspace(paths, labs_project(), files, version=1)
    assert report.datasets["labs"].transforms["taken_at"] == "date_shift+jitter"
    visits = shifts(report, files, "visits", "visit_id", ["visit_date", "discharge_date"])
    labs_source = {
        (r[0], r[1]): r[2] for r in raw(files["labs"][1], "SELECT pid, lab_date, taken_at FROM SRC")
    }
    key = derive_key(load_secrets(paths, "cardio-2026").pseudonym_key, "pseudonym")
    by_source = {pseudonym(key, pid): pid for pid in range(1, PERSONS + 1)}
    secrets = load_secrets(paths, "cardio-2026")
    for pid, lab_date, taken_at in query(report.views_db, "SELECT pid, lab_date, taken_at FROM labs"):
        (shift,) = visits[pid]
        true_date = lab_date - timedelta(days=shift)
        assert (by_source[pid], true_date) in labs_source  # the lab moved by the visits' shift
        assert taken_at - labs_source[(by_source[pid], true_date)] == timedelta(days=shift)
        assert -7 <= shift - secrets.date_offset_days <= 7


def test_jitter_is_stable_across_versions(paths, source_files):
    first = prepare_workspace(paths, project_spec(), source_files, version=1)
    second = prepare_workspace(paths, project_spec(), source_files, version=2)
    sql = "SELECT visit_id, pid, visit_date, discharge_date FROM visits ORDER BY visit_id"
    assert query(first.views_db, sql) == query(second.views_db, sql)


def test_zero_turns_jitter_off(paths, source_files, offset_100):
    report = prepare_workspace(paths, project_spec(date_jitter_days=0), source_files, version=1)
    assert report.date_jitter_days == 0 and report.to_dict()["date_jitter_days"] == 0
    assert report.datasets["visits"].transforms["visit_date"] == "date_shift"
    per_person = shifts(report, source_files, "visits", "visit_id", ["visit_date", "discharge_date"])
    assert {shift for s in per_person.values() for shift in s} == {OFFSET}


def test_the_jitter_key_is_in_no_prepared_file(paths, source_files):
    report = prepare_workspace(paths, project_spec(date_jitter_days=13), source_files, version=1)
    key = derive_key(load_secrets(paths, "cardio-2026").pseudonym_key, "date_jitter")
    files = [p for p in report.prepared_dir.rglob("*") if p.is_file()]
    assert len(files) >= 5
    for path in files:
        data = path.read_bytes()
        assert key not in data and key.hex().encode() not in data, path
        assert not any(v in data for v in key_params("k", key).values()), path
    assert report.to_dict()["date_jitter_days"] == 13  # N is recorded, never a person's jitter


# --- the attack: offset = earliest released date - a public event's date ---------------------------


def public_event_cohort(folder: Path) -> dict:
    """The fixture sources with one extra visit per person on the same public holiday."""
    files = sources(folder)
    visits = pd.read_parquet(files["visits"][1])
    extra = visits.groupby("pid", as_index=False).first()
    extra["visit_id"] = 100_000 + extra["pid"]
    extra["visit_date"] = PUBLIC_EVENT
    extra["discharge_date"] = PUBLIC_EVENT + timedelta(days=2)
    extra["visit_month"] = PUBLIC_EVENT
    path = folder / "visits-holiday.parquet"
    pd.concat([visits, extra], ignore_index=True).to_parquet(path, index=False)
    files["visits"] = (files["visits"][0], path)
    return files


def holiday_shifts(report) -> list[int]:
    rows = query(report.views_db, "SELECT visit_date FROM visits WHERE visit_id >= 100000")
    assert len(rows) == PERSONS
    return [(released - PUBLIC_EVENT).days for (released,) in rows]


def test_without_jitter_the_earliest_released_date_gives_the_offset_away(paths, tmp_path, offset_100):
    # The standard's one project offset: every person of the cohort moves by the same secret number.
    report = prepare_workspace(
        paths, project_spec(date_jitter_days=0), public_event_cohort(tmp_path), version=1
    )
    assert set(holiday_shifts(report)) == {OFFSET}


def test_with_jitter_the_earliest_released_date_no_longer_gives_the_offset(paths, tmp_path, offset_100):
    report = prepare_workspace(paths, project_spec(), public_event_cohort(tmp_path), version=1)
    recovered = holiday_shifts(report)  # released date of the holiday visit - the holiday, per person
    # The holiday is spread over up to 15 released dates, so the earliest one minus the holiday is
    # not the offset (the chance that no person's jitter is negative is (8/15)^60, about 1e-16) ...
    assert min(recovered) != OFFSET and min(recovered) >= OFFSET - 7
    assert max(recovered) - min(recovered) >= 7 and len(set(recovered)) >= 8
    # ... and even knowing the offset, most persons' true dates are not recovered.
    assert sum(r != OFFSET for r in recovered) >= PERSONS // 2
