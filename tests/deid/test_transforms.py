"""The de-identification SQL builders, with the golden values of GB/T 39725 Table 6."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave.deid import (
    age_band_5_sql,
    date_shift_sql,
    k_anonymity,
    key_params,
    person_offset_sql,
    postcode_prefix_3_sql,
    project_offset_sql,
    pseudonym,
    pseudonym_sql,
    year_month_sql,
    year_sql,
)
from enclave.deid.dates import DateTypeUnsupported, person_offset
from enclave.deid.pseudonym import hmac_hex, hmac_hex_sql


def one(sql: str, params: dict | None = None):
    return duckdb.execute(sql, params or {}).fetchone()[0]


@pytest.mark.parametrize(
    ("start", "expected"),
    [(date(2018, 1, 1), date(2018, 4, 11)), (date(2018, 4, 1), date(2018, 7, 10))],
)
def test_golden_date_shift_of_100_days(start, expected):
    sql = f"SELECT {date_shift_sql('$d', 'DATE', project_offset_sql())}"
    assert one(sql, {"d": start, "date_offset": 100}) == expected


def test_shift_keeps_the_90_day_stay_for_dates_timestamps_and_text():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE s AS SELECT DATE '2018-01-01' AS a, DATE '2018-04-01' AS b, "
        "TIMESTAMP '2018-01-01 08:30' AS ta, TIMESTAMP '2018-04-01 08:30' AS tb, "
        "'2018-01-01' AS xa, '2018-04-01' AS xb"
    )
    off = project_offset_sql()
    row = con.execute(
        f"SELECT {date_shift_sql('b', 'DATE', off)} - {date_shift_sql('a', 'DATE', off)}, "
        f"{date_shift_sql('tb', 'TIMESTAMP', off)} - {date_shift_sql('ta', 'TIMESTAMP', off)}, "
        f"{date_shift_sql('xa', 'VARCHAR', off)}, {date_shift_sql('ta', 'TIMESTAMP', off)} FROM s",
        {"date_offset": -57},
    ).fetchone()
    assert row[0] == 90
    assert row[1].days == 90
    assert row[2] == date(2017, 11, 5)
    assert row[3] == datetime(2017, 11, 5, 8, 30)


def test_date_shift_refuses_types_it_cannot_shift():
    with pytest.raises(DateTypeUnsupported):
        date_shift_sql("x", "DOUBLE", project_offset_sql())


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (93, ">89"),
        (38, "35-39"),
        (0, "<25"),
        (24, "<25"),
        (24.9, "<25"),
        (25, "25-29"),
        (29, "25-29"),
        (30, "30-34"),
        (85, "85-89"),
        (89, "85-89"),
        (89.5, "85-89"),
        (90, ">89"),
        (120, ">89"),
        (None, None),
    ],
)
def test_age_band_5(age, band):
    assert one(f"SELECT {age_band_5_sql('$a')}", {"a": age}) == band


@given(st.integers(min_value=0, max_value=130))
@settings(max_examples=60)
def test_age_band_contains_the_age_and_never_splits_above_89(age):
    band = one(f"SELECT {age_band_5_sql('$a')}", {"a": age})
    if age > 89:
        assert band == ">89"
    elif age < 25:
        assert band == "<25"
    else:
        low, high = map(int, band.split("-"))
        assert low <= age <= high and high - low == 4 and low % 5 == 0


@pytest.mark.parametrize(("postcode", "prefix"), [("100080", "100"), (" 430071 ", "430"), (None, None)])
def test_postcode_prefix_3(postcode, prefix):
    assert one(f"SELECT {postcode_prefix_3_sql('$p')}", {"p": postcode}) == prefix


def test_year_and_year_month():
    assert one(f"SELECT {year_sql('$d')}", {"d": date(2018, 4, 11)}) == 2018
    assert one(f"SELECT {year_month_sql('$d')}", {"d": datetime(2018, 4, 11, 23, 0)}) == "2018-04"


def test_pseudonym_is_a_real_hmac_and_has_the_documented_shape():
    key = bytes(range(32))
    got = one(f"SELECT {pseudonym_sql('$v', 'k')}", {"v": 42, **key_params("k", key)})
    assert got == pseudonym(key, 42)
    assert got.startswith("p_") and len(got) == 18 and int(got[2:], 16) >= 0
    assert one(f"SELECT {pseudonym_sql('$v', 'k')}", {"v": None, **key_params("k", key)}) is None


@given(st.text(max_size=40), st.binary(min_size=16, max_size=64))
@settings(max_examples=60, deadline=None)
def test_sql_hmac_matches_python_hmac_for_any_text_and_key(value, key):
    assert one(f"SELECT {hmac_hex_sql('$v', 'k')}", {"v": value, **key_params("k", key)}) == hmac_hex(
        key, value
    )


def test_pseudonyms_differ_between_keys_and_values():
    a, b = bytes(32), bytes([1]) + bytes(31)
    assert pseudonym(a, 1) != pseudonym(b, 1)
    assert pseudonym(a, 1) != pseudonym(a, 2)


def test_key_is_a_bound_parameter_never_sql_text():
    key = b"\xab" * 32
    sql = pseudonym_sql('"pid"', "k") + person_offset_sql('"pid"', "k")
    assert key.hex() not in sql and "ab" * 8 not in sql


def test_key_params_refuse_short_keys():
    with pytest.raises(ValueError):
        key_params("k", b"short")


def test_per_person_offset_is_nonzero_in_range_and_matches_python():
    key = bytes(range(32))
    rows = duckdb.execute(
        f"SELECT x, {person_offset_sql('x', 'k')} FROM range(3000) t(x)", key_params("k", key)
    ).fetchall()
    offsets = [o for _, o in rows]
    assert all(30 <= abs(o) <= 365 for o in offsets)
    assert any(o < 0 for o in offsets) and any(o > 0 for o in offsets)
    assert len(set(offsets)) > 300
    assert all(o == person_offset(hmac_hex(key, str(x))) for x, o in rows)


def _k_table(rows):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (pid INTEGER, age VARCHAR, sex VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    return con


def test_k_anonymity_counts_persons_not_rows():
    # one person with twelve visits is still a class of one
    rows = [(1, "35-39", "F")] * 12 + [(p, "40-44", "M") for p in range(2, 8)]
    report = k_anonymity(_k_table(rows), "t", ["age", "sex"], 5, person_key="pid")
    assert not report.ok
    assert report.min_class_size == 1
    assert report.classes == 2 and report.classes_below_k == 1 and report.persons_below_k == 1
    assert report.smallest_classes[0] == {"values": {"age": "35-39", "sex": "F"}, "persons": 1}


def test_k_anonymity_boundary_is_at_least_k():
    rows = [(p, "35-39", "F") for p in range(5)]
    assert k_anonymity(_k_table(rows), "t", ["age", "sex"], 5, person_key="pid").ok
    assert not k_anonymity(_k_table(rows[:4]), "t", ["age", "sex"], 5, person_key="pid").ok


def test_k_anonymity_counts_rows_without_a_person_key_as_separate_persons():
    rows = [(None, "35-39", "F")] * 3 + [(1, "35-39", "F")]
    report = k_anonymity(_k_table(rows), "t", ["age", "sex"], 5, person_key="pid")
    assert report.min_class_size == 4


def test_k_anonymity_treats_null_as_a_value_and_no_quasi_ids_as_one_class():
    rows = [(p, None, "F") for p in range(3)] + [(p, "30-34", "F") for p in range(3, 9)]
    con = _k_table(rows)
    report = k_anonymity(con, "t", ["age"], 5, person_key="pid")
    assert report.classes == 2 and report.min_class_size == 3
    assert report.smallest_classes[0]["values"] == {"age": None}
    whole = k_anonymity(con, "t", [], 5, person_key="pid")
    assert whole.classes == 1 and whole.min_class_size == 9 and whole.ok
