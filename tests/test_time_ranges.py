"""The approved time range reaches the prepared data (R-APP-4, minimum necessary).

A spec's ``time_ranges`` keeps only the records dated within each range: every date a row holds is
within it (NULLs aside) and the row holds at least one, judged on the ORIGINAL dates before the
secret shift. Provisioning copies the approved ranges and may only shorten them; a spec that names
its application and leaves a range out, or widens one, is refused (``time_range_widened``).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit, projects, provisioning
from enclave.config import Paths
from enclave.console import forms
from enclave.db.models import ProjectSpecVersion
from enclave.deid.plan import plan_dataset
from enclave.errors import BadInput, EnclaveError, Forbidden, NotFound, Refused
from enclave.prepare import secrets as project_secrets
from enclave.prepare.build import PreparationReport, prepare_workspace
from enclave.prepare.layout import current_views_db
from enclave.specs import DatasetSpec, ProjectSpec, TimeRange, parse_dataset_spec, parse_project_spec
from tests.harness.factories import dataset_spec, visits_table
from tests.harness.planted import query
from tests.test_agreements import STEWARD, Gov, make_gov, refused

START, END = date(2019, 3, 1), date(2019, 8, 31)
RANGE = {"start": START.isoformat(), "end": END.isoformat()}
OFFSET = 100
PERSONS = 40
RARE_WARD = "Z"  # two persons, only in rows dated after the range: breaks k unless the range applies

STAYS_SPEC: dict[str, Any] = dataset_spec(
    "stays",
    "stays.parquet",
    {
        "pid": {"role": "person_key"},
        "stay_id": {"role": "attribute"},
        "ward": {"role": "quasi_id"},
        "admit_date": {"role": "date"},
        "discharge_date": {"role": "date"},
        "cost": {"role": "measure"},
    },
    title="Hospital stays",
    category="medical_care",
)
LABS_SPEC: dict[str, Any] = {
    **STAYS_SPEC,
    "name": "labs",
    "title": "Lab results",
    "source": "labs.parquet",
    "columns": {"pid": {"role": "person_key"}, "lab_date": {"role": "date"}, "value": {"role": "measure"}},
}
PEOPLE_SPEC: dict[str, Any] = {
    **STAYS_SPEC,
    "name": "people",
    "title": "People",
    "source": "people.parquet",
    "columns": {"pid": {"role": "person_key"}, "sex": {"role": "quasi_id"}},
}
STAY_COLUMNS = ["pid", "stay_id", "ward", "admit_date", "discharge_date", "cost"]
DATE_COLUMNS = ["admit_date", "discharge_date"]
# Rows placed on purpose (pid, stay) -> (admit, discharge)
EDGES: dict[tuple[int, int], tuple[date | None, date | None]] = {
    (3, 2): (None, None),  # no date at all: dropped
    (4, 2): (None, date(2019, 5, 10)),  # no admission date, discharged in range: kept
    (5, 2): (date(2019, 5, 10), None),  # not discharged yet: kept
    (6, 2): (END, END + timedelta(days=3)),  # admitted on the last day, discharged after: dropped
    (7, 2): (START, START),  # both ends are included
    (8, 2): (END, END),
    (9, 2): (START - timedelta(days=1), START),  # admitted the day before: dropped
    (10, 2): (date(2019, 6, 1), date(2019, 6, 3)),
}


def stays_frame() -> pd.DataFrame:
    rows = []
    for pid in range(1, PERSONS + 1):
        for stay in range(3):
            admit: date | None = date(2019, 1, 1) + timedelta(days=(pid * 11 + stay * 97) % 360)
            assert admit is not None
            discharge: date | None = admit + timedelta(days=(pid + stay) % 10)
            ward = "ABC"[(pid + stay) % 3]
            if pid in (1, 2) and stay == 0:
                admit, discharge, ward = date(2019, 12, 20), date(2019, 12, 22), RARE_WARD
            admit, discharge = EDGES.get((pid, stay), (admit, discharge))
            rows.append(
                {
                    "pid": pid,
                    "stay_id": pid * 10 + stay,
                    "ward": ward,
                    "admit_date": admit,
                    "discharge_date": discharge,
                    "cost": 100.0 + (pid * 7 + stay) % 300,
                }
            )
    return pd.DataFrame(rows)


def labs_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "pid": pid,
                "lab_date": date(2019, 1, 1) + timedelta(days=(pid * 29 + n * 131) % 365),
                "value": n,
            }
            for pid in range(1, PERSONS + 1)
            for n in range(2)
        ]
    )


def people_frame() -> pd.DataFrame:
    return pd.DataFrame([{"pid": pid, "sex": "MF"[pid % 2]} for pid in range(1, PERSONS + 1)])


def write_sources(folder: Path, fmt: str = "parquet") -> dict[str, tuple[DatasetSpec, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for spec, frame in (
        (STAYS_SPEC, stays_frame()),
        (LABS_SPEC, labs_frame()),
        (PEOPLE_SPEC, people_frame()),
    ):
        path = folder / f"{spec['name']}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        # as the catalog stores it: canonical JSON, sorted keys (column order is not kept)
        stored = json.loads(audit.canonical_json(parse_dataset_spec(spec).model_dump(mode="json")))
        out[spec["name"]] = (parse_dataset_spec(stored), path)
    return out


def spec(**fields: Any) -> ProjectSpec:
    data: dict[str, Any] = {
        "id": "stays-2026",
        "title": "Stays",
        "purpose": "testing",
        "pi": "alice",
        "analysts": ["alice", "bob"],
        "committee": ["carol", "dave", "erin"],
        "datasets": {"stays": STAY_COLUMNS, "labs": ["pid", "lab_date", "value"], "people": ["pid", "sex"]},
        "period": {"start": "2026-11-01", "end": "2027-10-31"},
        "date_jitter_days": 0,
    }
    data.update(fields)
    return parse_project_spec(data)


def expected(source: Path, start: date = START, end: date = END) -> dict[str, Any]:
    """The rows in range by plain DuckDB over the source: least/greatest skip NULLs, and are NULL
    (so the row is dropped) when the row holds no date."""
    reader = "read_csv" if source.suffix == ".csv" else "read_parquet"
    sql = (
        f"SELECT stay_id, pid, admit_date FROM {reader}(?) WHERE least(admit_date, discharge_date) >= ? "
        "AND greatest(admit_date, discharge_date) <= ?"
    )
    rows = duckdb.execute(sql, [str(source), start, end]).fetchall()
    admits = [a for _, _, a in rows if a is not None]
    return {
        "ids": {s for s, _, _ in rows},
        "persons": len({p for _, p, _ in rows}),
        "min": min(admits),
        "max": max(admits),
    }


@pytest.fixture
def offset_100(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(project_secrets, "_random_offset", lambda: OFFSET)


def prepare(paths: Paths, project: ProjectSpec, sources: dict, version: int = 1) -> PreparationReport:
    return prepare_workspace(paths, project, sources, version=version)


# ---- the spec ---------------------------------------------------------------------------------------


def test_a_spec_without_time_ranges_is_stored_as_before() -> None:
    assert "time_ranges" not in spec().model_dump(mode="json")
    assert spec().time_ranges == {}
    with_range = spec(time_ranges={"stays": RANGE}).model_dump(mode="json")
    assert with_range["time_ranges"] == {"stays": RANGE}
    assert parse_project_spec(with_range).time_ranges["stays"] == TimeRange(start=START, end=END)


def test_the_spec_hash_changes_with_the_range() -> None:
    def sha(project: ProjectSpec) -> str:
        return projects.sha256_text(audit.canonical_json(project.model_dump(mode="json")))

    shorter = {"stays": {"start": RANGE["start"], "end": "2019-06-30"}}
    assert len({sha(spec()), sha(spec(time_ranges={"stays": RANGE})), sha(spec(time_ranges=shorter))}) == 3


@pytest.mark.parametrize(
    ("ranges", "field"),
    [
        ({"wards": RANGE}, "(spec)"),  # not a dataset of the spec
        ({"stays": {"start": "2019-09-01", "end": "2019-08-31"}}, "time_ranges.stays"),
        ({"stays": {"start": "2019-03-01"}}, "time_ranges.stays.end"),
        ({"stays": {"start": "2019-03-01", "end": "2019-08-31", "column": "x"}}, "time_ranges.stays.column"),
    ],
)
def test_a_bad_time_range_is_refused(ranges: dict[str, Any], field: str) -> None:
    with pytest.raises(BadInput) as info:
        spec(time_ranges=ranges)
    assert info.value.code == "spec_invalid"
    assert field in [r.details["field"] for r in info.value.reasons]
    assert all(r.message_zh for r in info.value.reasons)


def test_a_one_day_range_is_allowed() -> None:
    one_day = spec(time_ranges={"stays": {"start": "2019-05-10", "end": "2019-05-10"}})
    assert one_day.time_ranges["stays"].start == one_day.time_ranges["stays"].end


# ---- preparation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_only_the_rows_in_range_are_prepared(
    paths: Paths, tmp_path: Path, offset_100: None, fmt: str
) -> None:
    sources = write_sources(tmp_path / "src", fmt)
    want = expected(sources["stays"][1])
    report = prepare(paths, spec(time_ranges={"stays": RANGE}), sources)
    views = report.views_db
    ids = {row[0] for row in query(views, "SELECT stay_id FROM stays")}
    assert ids == want["ids"]
    # the placed rows (stay_id = pid * 10 + stay), one by one
    assert {42, 52, 102} <= ids  # admission missing; discharge missing; both in range
    assert {72, 82} <= ids  # both ends of the range are included
    assert not {32, 62, 92, 10, 20} & ids  # no date; discharged after the end; the day before; rare ward
    (count, low, high) = query(views, "SELECT count(*), min(admit_date), max(admit_date) FROM stays")[0]
    assert count == len(want["ids"])
    assert (low - timedelta(days=OFFSET), high - timedelta(days=OFFSET)) == (want["min"], want["max"])
    stays = report.datasets["stays"]
    assert (stays.rows, stays.persons) == (len(want["ids"]), want["persons"])
    assert stays.time_range == {**RANGE, "date_columns": ["admit_date", "discharge_date"]}
    assert report.ledger_subjects["stays"] == want["persons"]


def test_the_dates_of_the_kept_rows_are_still_shifted(paths: Paths, tmp_path: Path, offset_100: None) -> None:
    sources = write_sources(tmp_path / "src")
    report = prepare(paths, spec(time_ranges={"stays": RANGE}), sources)
    original = {
        row.stay_id: (row.admit_date, row.discharge_date)
        for row in stays_frame().itertuples()
        if row.stay_id in expected(sources["stays"][1])["ids"]
    }
    prepared = query(report.views_db, "SELECT stay_id, admit_date, discharge_date FROM stays")
    assert len(prepared) == len(original)
    shift = timedelta(days=OFFSET)
    for stay_id, admit, discharge in prepared:
        was_admit, was_discharge = original[stay_id]
        assert admit == (was_admit + shift if was_admit is not None else None)
        assert discharge == (was_discharge + shift if was_discharge is not None else None)


def test_the_range_is_judged_on_the_original_dates_with_jitter(
    paths: Paths, tmp_path: Path, offset_100: None
) -> None:
    """Per-person jitter on top of the offset: the rows kept are still those whose true dates are in
    range (a filter on shifted dates would keep other rows, and would depend on the secret)."""
    sources = write_sources(tmp_path / "src")
    report = prepare(paths, spec(time_ranges={"stays": RANGE}, date_jitter_days=7), sources)
    ids = {row[0] for row in query(report.views_db, "SELECT stay_id FROM stays")}
    assert ids == expected(sources["stays"][1])["ids"]
    frame = stays_frame().set_index("stay_id")
    for stay_id, admit in query(report.views_db, "SELECT stay_id, admit_date FROM stays"):
        if admit is not None:
            assert OFFSET - 7 <= (admit - frame.loc[stay_id, "admit_date"]).days <= OFFSET + 7


def test_other_datasets_are_not_filtered(paths: Paths, tmp_path: Path, offset_100: None) -> None:
    sources = write_sources(tmp_path / "src")
    report = prepare(paths, spec(time_ranges={"stays": RANGE}), sources)
    assert report.datasets["labs"].rows == len(labs_frame())
    assert report.datasets["people"].rows == PERSONS
    assert report.datasets["labs"].time_range is None
    # the same person has the same pseudonym in every dataset, filtered or not
    (unmatched,) = query(
        report.views_db, "SELECT count(*) FROM stays WHERE pid NOT IN (SELECT pid FROM people)"
    )[0]
    assert unmatched == 0


def test_k_anonymity_is_checked_on_the_rows_in_range(paths: Paths, tmp_path: Path, offset_100: None) -> None:
    """The rare ward is held by two persons, only in stays after the range: a row-level project
    without the range is refused; with it, the class is gone from the data and from the report."""
    sources = write_sources(tmp_path / "src")
    with pytest.raises(Refused) as info:
        prepare(paths, spec(access="rows"), sources)
    assert info.value.code == "k_anonymity_violated"
    report = prepare(paths, spec(access="rows", time_ranges={"stays": RANGE}), sources, version=2)
    stays = report.datasets["stays"]
    assert stays.k_ok and stays.k_min_class_size >= 5
    assert query(report.views_db, f"SELECT count(*) FROM stays WHERE ward = '{RARE_WARD}'")[0][0] == 0
    wards = dict(query(report.views_db, "SELECT ward, count(DISTINCT pid) FROM stays GROUP BY ward"))
    assert stays.k_min_class_size == min(wards.values())


def test_a_new_range_makes_a_new_prepared_version(paths: Paths, tmp_path: Path, offset_100: None) -> None:
    sources = write_sources(tmp_path / "src")
    first = prepare(paths, spec(time_ranges={"stays": RANGE}), sources)
    shorter = {"start": RANGE["start"], "end": "2019-05-31"}
    second = prepare(paths, spec(time_ranges={"stays": shorter}), sources, version=2)
    assert (
        first.prepared_dir != second.prepared_dir and current_views_db(paths, "stays-2026") == second.views_db
    )
    assert second.datasets["stays"].time_range["end"] == "2019-05-31"
    assert second.datasets["stays"].rows < first.datasets["stays"].rows
    assert second.datasets["stays"].prepared_sha256 != first.datasets["stays"].prepared_sha256
    assert second.datasets["stays"].rows == len(expected(sources["stays"][1], end=date(2019, 5, 31))["ids"])


def test_without_a_range_every_row_is_prepared_as_before(
    paths: Paths, tmp_path: Path, offset_100: None
) -> None:
    sources = write_sources(tmp_path / "src")
    report = prepare(paths, spec(), sources)
    assert report.datasets["stays"].rows == len(stays_frame())
    assert all(d.time_range is None for d in report.datasets.values())
    stays_spec, path = sources["stays"]
    plan = plan_dataset(stays_spec, STAY_COLUMNS, {c: "DATE" for c in STAY_COLUMNS}, per_person_offset=False)
    relation = f"read_parquet('{path}')"
    assert (plan.row_filter, plan.time_range, plan.rows_sql(relation)) == (None, None, relation)


def test_a_range_on_a_dataset_without_dates_is_refused(paths: Paths, tmp_path: Path) -> None:
    sources = write_sources(tmp_path / "src")
    with pytest.raises(BadInput) as info:
        prepare(paths, spec(time_ranges={"people": RANGE}), sources)
    assert info.value.code == "preparation_input_invalid"
    assert [r.code for r in info.value.reasons] == ["time_range_without_dates"]
    with pytest.raises(NotFound):
        current_views_db(paths, "stays-2026")


def test_a_timestamp_counts_by_its_day() -> None:
    events = parse_dataset_spec(
        {**STAYS_SPEC, "name": "events", "columns": {"pid": {"role": "person_key"}, "seen": {"role": "date"}}}
    )
    plan = plan_dataset(
        events,
        ["pid", "seen"],
        {"pid": "INTEGER", "seen": "TIMESTAMP"},
        per_person_offset=False,
        time_range=TimeRange(start=START, end=END),
    )
    source = (
        "(SELECT * FROM (VALUES (1, TIMESTAMP '2019-08-31 23:59:59'), (2, TIMESTAMP '2019-09-01 00:00:00'), "
        "(3, TIMESTAMP '2019-03-01 00:00:00'), (4, TIMESTAMP '2019-02-28 23:59:59'), (5, NULL)) "
        "t(pid, seen))"
    )
    kept = duckdb.execute(f"SELECT pid FROM {plan.rows_sql(source)} ORDER BY pid").fetchall()
    assert kept == [(1,), (3,)]


# ---- provisioning (SQLite and PostgreSQL) -----------------------------------------------------------

PROJECT = "htn-2026"
VISITS_RANGE = {"start": "2020-02-01", "end": "2020-02-29"}
SHORTER = {"start": "2020-02-05", "end": "2020-02-20"}


@pytest.fixture
def gov(sessions: sessionmaker[Session], paths: Paths, tmp_path: Path) -> Gov:
    return make_gov(sessions, paths, tmp_path / "src")


def ranged_application(gov: Gov, span: dict[str, str] | None = VISITS_RANGE) -> str:
    visits: dict[str, Any] = {"columns": ["pid", "visit_date", "cost"]}
    if span is not None:
        visits["time_range"] = span
    datasets = {"patients": {"columns": ["pid", "age", "sex", "dx"]}, "visits": visits}
    return gov.approved_with_dua(datasets=datasets)


def generated(gov: Gov, app_id: str, narrowing: dict[str, Any] | None = None) -> dict[str, Any]:
    with gov.session() as s:
        made = provisioning.spec_from_application(
            s, gov.paths, app_id, project_id=PROJECT, narrowing=narrowing
        )
    return made.model_dump(mode="json")


def provision(gov: Gov, app_id: str, **kw: Any) -> None:
    with gov.session() as s:
        provisioning.provision_from_application(s, gov.paths, app_id, project_id=PROJECT, actor=STEWARD, **kw)


def create(gov: Gov, data: dict[str, Any]) -> None:
    with gov.session() as s:
        projects.create_project(s, gov.paths, parse_project_spec(data), actor=STEWARD, preparer=None)


def stored_spec(gov: Gov) -> ProjectSpec:
    with gov.session() as s:
        return projects.current_spec(s, PROJECT)


def no_project(gov: Gov) -> bool:
    with gov.session() as s:
        return projects.list_projects(s) == []


def widened(error: EnclaveError) -> list[str]:
    assert isinstance(error, Forbidden) and error.code == "application_widened", error
    return [r.code for r in error.reasons]


def test_the_generated_spec_carries_the_approved_range(gov: Gov) -> None:
    app_id = ranged_application(gov)
    assert generated(gov, app_id)["time_ranges"] == {"visits": VISITS_RANGE}
    provision(gov, app_id)
    assert stored_spec(gov).time_ranges["visits"] == TimeRange.model_validate(VISITS_RANGE)


def test_an_application_without_ranges_gives_a_spec_without_them(gov: Gov) -> None:
    app_id = ranged_application(gov, None)
    assert "time_ranges" not in generated(gov, app_id)
    create(gov, {**generated(gov, app_id), "time_ranges": {"visits": SHORTER}})  # adding one narrows
    assert stored_spec(gov).time_ranges["visits"].end == date(2020, 2, 20)


def test_narrowing_may_shorten_the_range(gov: Gov) -> None:
    app_id = ranged_application(gov)
    provision(gov, app_id, narrowing={"time_ranges": {"visits": SHORTER}})
    assert stored_spec(gov).time_ranges == {"visits": TimeRange.model_validate(SHORTER)}


def test_a_hand_written_spec_with_a_shorter_range_is_accepted(gov: Gov) -> None:
    app_id = ranged_application(gov)
    create(gov, {**generated(gov, app_id), "time_ranges": {"visits": SHORTER}})
    assert stored_spec(gov).application == app_id


@pytest.mark.parametrize(
    "span",
    [
        {"start": VISITS_RANGE["start"], "end": "2020-03-01"},  # one day later
        {"start": "2020-01-31", "end": VISITS_RANGE["end"]},  # one day earlier
        {"start": "2019-01-01", "end": "2021-12-31"},  # around it
        {"start": "2020-03-01", "end": "2020-03-31"},  # elsewhere, not longer
    ],
)
def test_a_wider_range_is_refused(gov: Gov, span: dict[str, str]) -> None:
    app_id = ranged_application(gov)
    assert widened(
        refused(Forbidden, create, gov, {**generated(gov, app_id), "time_ranges": {"visits": span}})
    ) == ["time_range_widened"]
    narrowing = {"time_ranges": {"visits": span}}
    error = refused(Forbidden, provision, gov, app_id, narrowing=narrowing)
    assert widened(error) == ["time_range_widened"]
    assert error.reasons[0].details["field"] == "time_ranges.visits" and error.reasons[0].message_zh
    assert no_project(gov)


def test_a_spec_that_leaves_the_range_out_is_refused(gov: Gov) -> None:
    app_id = ranged_application(gov)
    data = generated(gov, app_id)
    del data["time_ranges"]
    assert widened(refused(Forbidden, create, gov, data)) == ["time_range_widened"]
    with pytest.raises(BadInput):  # nor can a narrowing drop it
        provision(gov, app_id, narrowing={"time_ranges": {"visits": None}})
    with pytest.raises(BadInput) as info:
        provision(gov, app_id, narrowing={"time_ranges": [VISITS_RANGE]})
    assert info.value.code == "narrowing_invalid"
    assert no_project(gov)


def test_dropping_the_dataset_drops_its_range(gov: Gov) -> None:
    app_id = ranged_application(gov)
    provision(gov, app_id, narrowing={"datasets": {"patients": ["pid", "age", "sex"]}})
    assert (list(stored_spec(gov).datasets), stored_spec(gov).time_ranges) == (["patients"], {})


def test_the_console_narrowing_keeps_the_range(gov: Gov) -> None:
    """The steward's form narrows columns and analysts only: the approved range passes through."""
    app_id = ranged_application(gov)
    ticked = {
        "narrowing": ["yes"],
        "ds.patients.columns": ["pid", "age"],
        "ds.visits.columns": ["pid", "cost"],
    }
    ticked["analysts"] = ["alice", "bob"]
    approved = {"patients": ["pid", "age", "sex", "dx"], "visits": ["pid", "visit_date", "cost"]}
    narrowing = forms.narrowing(lambda name: ticked.get(name, []), approved, ["alice", "bob"])
    assert narrowing == {"datasets": {"patients": ["pid", "age"], "visits": ["pid", "cost"]}}
    provision(gov, app_id, narrowing=narrowing)
    assert stored_spec(gov).time_ranges == {"visits": TimeRange.model_validate(VISITS_RANGE)}


def test_a_later_version_cannot_drop_the_range(gov: Gov) -> None:
    app_id = ranged_application(gov)
    provision(gov, app_id)
    with gov.session() as s:  # the stored spec edited to prepare every record
        row = s.scalar(select(ProjectSpecVersion).where(ProjectSpecVersion.project_id == PROJECT))
        assert row is not None
        data = json.loads(row.spec_json)
        del data["time_ranges"]
        row.spec_json = audit.canonical_json(data)
    with gov.session() as s:
        error = refused(Forbidden, projects.prepare_project, s, gov.paths, PROJECT, actor=STEWARD)
    assert widened(error) == ["time_range_widened"]


def test_the_provisioned_project_holds_only_the_records_in_range(gov: Gov, offset_100: None) -> None:
    app_id = ranged_application(gov)
    provision(
        gov, app_id, narrowing={"time_ranges": {"visits": SHORTER}}, preparer=projects.workspace_preparer
    )
    source = visits_table()  # the catalog's visits, as registered
    count, low, high, persons = duckdb.sql(
        "SELECT count(*), min(visit_date), max(visit_date), count(DISTINCT pid) FROM source "
        f"WHERE visit_date BETWEEN DATE '{SHORTER['start']}' AND DATE '{SHORTER['end']}'"
    ).fetchone()  # type: ignore[misc]
    assert 0 < count < source.num_rows
    views = current_views_db(gov.paths, PROJECT)
    (got, got_low, got_high) = query(views, "SELECT count(*), min(visit_date), max(visit_date) FROM visits")[
        0
    ]
    assert got == count
    jitter = stored_spec(gov).date_jitter_days  # the generated spec's default
    assert low + timedelta(days=OFFSET - jitter) <= got_low <= low + timedelta(days=OFFSET + jitter)
    assert high + timedelta(days=OFFSET - jitter) <= got_high <= high + timedelta(days=OFFSET + jitter)
    assert query(views, "SELECT count(*) FROM patients")[0][0] == 50  # not filtered by the visits range
    with gov.session() as s:
        (event,) = audit.tail(s, action="project.prepare")
    visits = json.loads(event.details_json)["report"]["datasets"]["visits"]
    assert (visits["rows"], visits["persons"]) == (count, persons)
    assert visits["time_range"] == {**SHORTER, "date_columns": ["visit_date"]}
