"""Top- and bottom-coding of measures in row-level projects: the one income above 900,000 cannot
single out its owner; aggregate projects keep exact measures."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from enclave.deid.coding import MeasureBounds, coding_sql, measure_bounds
from enclave.deid.pseudonym import derive_key, pseudonym
from enclave.errors import BadInput
from enclave.prepare.build import prepare_workspace
from enclave.prepare.secrets import load_secrets
from enclave.specs import parse_dataset_spec
from tests.harness.factories import dataset_spec
from tests.harness.planted import project_spec, query

PLANTED = 61  # the person with the extreme income
EXTREME = 1_000_000


def people_spec(**income: Any) -> dict[str, Any]:
    columns = {
        "pid": {"role": "person_key"},
        "sex": {"role": "quasi_id"},
        "income": {"role": "measure", **income},
        "visits": {"role": "measure"},
        "grade": {"role": "measure"},
    }
    return dataset_spec("people", "people.parquet", columns, title="People", level=4, category="payment")


def people(folder: Path, *, extra: list[dict] | None = None, **income: Any) -> dict:
    """60 persons with incomes 1,000..1,490, the planted person with 1,000,000, one with no income."""
    rows = [
        {"pid": p, "sex": "FM"[p % 2], "income": 1000 + (p - 1) * 500 // 59, "visits": p % 7, "grade": "A"}
        for p in range(1, 61)
    ]
    rows += [
        {"pid": PLANTED, "sex": "F", "income": EXTREME, "visits": 3, "grade": "B"},
        {"pid": 62, "sex": "M", "income": None, "visits": None, "grade": "A"},
        *(extra or []),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "people.parquet"
    frame = pd.DataFrame(rows)
    frame["income"] = frame["income"].astype("Int32")
    frame["visits"] = frame["visits"].astype("Int64")
    frame.to_parquet(path, index=False)
    return {"people": (parse_dataset_spec(people_spec(**income)), path)}


def spec(access: str, columns: tuple[str, ...] = ("pid", "sex", "income", "visits")):
    return project_spec(datasets={"people": list(columns)}, access=access)


def incomes(report) -> list:
    return [r[0] for r in query(report.views_db, "SELECT income FROM people ORDER BY income NULLS LAST")]


def test_rows_project_top_codes_the_planted_extreme_income(paths, tmp_path):
    report = prepare_workspace(paths, spec("rows"), people(tmp_path / "src"), version=1)
    values = incomes(report)
    top = max(v for v in values if v is not None)
    assert EXTREME not in values and 1000 <= top <= 1500
    # the planted person is now one of at least k = 5 persons at the top bound
    assert sum(v == top for v in values) >= 5
    key = derive_key(load_secrets(paths, "cardio-2026").pseudonym_key, "pseudonym")
    planted = query(report.views_db, f"SELECT income FROM people WHERE pid = '{pseudonym(key, PLANTED)}'")
    assert planted == [(top,)]
    people_report = report.datasets["people"]
    assert people_report.transforms["income"] == "top_bottom_code"
    codes = people_report.measure_codes["income"]
    assert codes["top"] == top and codes["top_from"] == "percentile" and codes["persons"] == 61
    assert codes["persons_above"] >= 1 and codes["bottom_from"] == "percentile"
    saved = (report.prepared_dir / "report.json").read_text()
    assert str(EXTREME) not in saved
    assert json.loads(saved)["datasets"]["people"]["measure_codes"] == people_report.measure_codes
    # the type is kept
    types = dict(query(report.views_db, "SELECT column_name, column_type FROM (DESCRIBE people)"))
    assert types["income"] == "INTEGER" and types["visits"] == "BIGINT"


def test_aggregate_project_keeps_the_exact_measures(paths, tmp_path):
    report = prepare_workspace(paths, spec("aggregate"), people(tmp_path / "src"), version=1)
    assert max(v for v in incomes(report) if v is not None) == EXTREME
    assert "income" not in report.datasets["people"].transforms
    assert report.datasets["people"].measure_codes == {}


def test_declared_bounds_win_over_percentiles(paths, tmp_path):
    files = people(tmp_path / "src", top_code=1200, bottom_code=1100)
    report = prepare_workspace(paths, spec("rows"), files, version=1)
    values = [v for v in incomes(report) if v is not None]
    assert min(values) == 1100 and max(values) == 1200
    codes = report.datasets["people"].measure_codes["income"]
    assert (codes["bottom"], codes["top"], codes["bottom_from"], codes["top_from"]) == (
        1100,
        1200,
        "declared",
        "declared",
    )
    # an undeclared measure of the same dataset still gets percentile bounds
    assert report.datasets["people"].measure_codes["visits"]["top_from"] == "percentile"


def test_one_declared_bound_the_other_from_the_persons(paths, tmp_path):
    report = prepare_workspace(paths, spec("rows"), people(tmp_path / "src", bottom_code=1250), version=1)
    values = [v for v in incomes(report) if v is not None]
    assert min(values) == 1250 and max(values) < EXTREME
    codes = report.datasets["people"].measure_codes["income"]
    assert codes["bottom_from"] == "declared" and codes["top_from"] == "percentile"


def test_nulls_stay_null(paths, tmp_path):
    report = prepare_workspace(paths, spec("rows"), people(tmp_path / "src"), version=1)
    assert query(
        report.views_db, "SELECT count(*) - count(income), count(*) - count(visits) FROM people"
    ) == [(1, 1)]


def test_an_extreme_low_value_is_bottom_coded(paths, tmp_path):
    low = {"pid": 63, "sex": "F", "income": -500_000, "visits": 1, "grade": "A"}
    report = prepare_workspace(paths, spec("rows"), people(tmp_path / "src", extra=[low]), version=1)
    values = [v for v in incomes(report) if v is not None]
    assert -500_000 not in values and min(values) >= 1000
    assert sum(v == min(values) for v in values) >= 5


def test_bounds_count_persons_not_rows(paths, tmp_path):
    # The planted person has 100 rows at 1,000,000: counted per row, they would be the 99th
    # percentile themselves; counted per person, they are one person in 61 and are top-coded.
    extra = [{"pid": PLANTED, "sex": "F", "income": EXTREME, "visits": 3, "grade": "B"}] * 99
    report = prepare_workspace(paths, spec("rows"), people(tmp_path / "src", extra=extra), version=1)
    assert EXTREME not in incomes(report)
    assert report.datasets["people"].measure_codes["income"]["persons"] == 61


def test_a_measure_that_is_not_a_number_is_refused_in_rows_projects(paths, tmp_path):
    files = people(tmp_path / "src")
    with pytest.raises(BadInput) as error:
        prepare_workspace(paths, spec("rows", ("pid", "income", "grade")), files, version=1)
    [reason] = error.value.reasons
    assert reason.code == "measure_type_unsupported" and reason.details["field"] == "people.grade"
    assert reason.message_zh
    # aggregate projects do not code, so they take it as it is
    prepare_workspace(paths, spec("aggregate", ("pid", "income", "grade")), files, version=1)


# --- the SQL builders ------------------------------------------------------------------------------


def bounds(bottom, top) -> MeasureBounds:
    return MeasureBounds(bottom=bottom, top=top, bottom_from="declared", top_from="declared")


def same(got, expected) -> bool:
    if expected == "nan":
        return isinstance(got, float) and math.isnan(got)
    return got == expected


@pytest.mark.parametrize(
    ("kind", "values", "expected"),
    [
        ("INTEGER", [-5, 7, 900_001, None], [0, 7, 500, None]),
        ("DOUBLE", [-0.5, 7.25, 1e9, None, float("nan")], [0.0, 7.25, 500.0, None, "nan"]),
        (
            "DECIMAL(10,2)",
            [Decimal("-1.50"), Decimal("7.25"), Decimal("9999.99"), None],
            [0, Decimal("7.25"), 500, None],
        ),
    ],
)
def test_coding_sql_clips_keeps_the_type_and_leaves_null_and_nan(kind, values, expected):
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t (i INTEGER, x {kind})")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    coded = coding_sql("x", kind, bounds(0, 500))
    got = [r[0] for r in con.execute(f"SELECT {coded} FROM t ORDER BY i").fetchall()]
    assert all(same(g, e) for g, e in zip(got, expected, strict=True)), got
    assert con.execute(f"SELECT DISTINCT typeof({coded}) FROM t").fetchall() == [(kind,)]


def test_coding_sql_with_one_side_only_and_refuses_text():
    assert "<" not in coding_sql("x", "BIGINT", bounds(None, 10))
    assert coding_sql("x", "BIGINT", bounds(None, None)) == "x"
    with pytest.raises(ValueError):
        coding_sql("x", "VARCHAR", bounds(0, 1))


def computed(values: list[tuple[int, float | None]], declared=(None, None), k: int = 5) -> MeasureBounds:
    con = duckdb.connect()
    con.execute("CREATE TABLE s (pid INTEGER, v DOUBLE)")
    con.executemany("INSERT INTO s VALUES (?, ?)", values)
    return measure_bounds(con, "s", "pid", {"v": "DOUBLE"}, {"v": declared}, k)["v"]


def test_percentile_bounds_over_many_persons():
    # 1,000 persons 1..1000: the 99th and 1st percentiles bind, not the k-th person
    result = computed([(p, float(p)) for p in range(1, 1001)])
    assert (result.bottom, result.top) == (10.0, 990.0)
    assert (result.persons, result.persons_below, result.persons_above) == (1000, 9, 10)


def test_few_persons_are_held_back_to_the_kth_and_crossing_bounds_become_the_median():
    result = computed([(p, float(p)) for p in range(1, 21)])
    assert (result.bottom, result.top) == (5.0, 16.0)  # the 5th smallest and the 5th largest person
    tiny = computed([(p, float(p)) for p in range(1, 7)])
    assert tiny.bottom == tiny.top == 3.0  # fewer than 2k persons: one value for everybody
    assert computed([(1, None), (None, 5.0)]).top is None  # no person with a value: nothing to code


def test_a_computed_bound_gives_way_to_a_declared_one():
    result = computed([(p, float(p)) for p in range(1, 101)], declared=(None, 3.0))
    assert (result.bottom, result.top, result.top_from) == (3.0, 3.0, "declared")
