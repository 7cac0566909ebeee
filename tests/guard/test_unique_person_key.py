"""``ViewPolicy.unique_person_key``: rows are persons, and only where that is measured and safe.

The flag says every row of a view is another person (preparation measures it). The guard then
skips grouping rows by person when the aggregation reads that view alone (directly, or through a
row layer over it), and does not count it as a multi-row table in joins. A join, a union or a CTE
that repeats a person keeps the grouping, so a small group cannot get through.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from enclave.cli import app
from enclave.config import Paths
from enclave.demo_data import generate
from enclave.guard import GuardPolicy, check, run
from enclave.prepare.layout import current_prepared_dir
from enclave.query_service import unique_person_keys
from tests.harness.factories import NO_APPLICATION_ARGS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def flagged(policy: GuardPolicy) -> GuardPolicy:
    """The fixture policy with patients marked unique (true of the fixture data: one row per pid)."""
    views = dict(policy.views)
    views["patients"] = dataclasses.replace(views["patients"], unique_person_key=True)
    return dataclasses.replace(policy, views=views)


SAME_RESULTS = [
    "SELECT zip, count(*) FROM patients GROUP BY zip ORDER BY zip",
    "SELECT zip, sex, count(*), avg(age) FROM patients GROUP BY zip, sex ORDER BY zip, sex",
    "SELECT dx, count(*) FROM patients WHERE age > 40 GROUP BY dx ORDER BY dx",
    "SELECT zip, sum(CASE WHEN dx = 'I10' THEN 1 ELSE 0 END) FROM patients GROUP BY zip ORDER BY zip",
    "SELECT zip, count_if(dx = 'E11') FROM patients GROUP BY zip ORDER BY zip",
    "SELECT zip, count(*) FROM patients WHERE pid IN (SELECT pid FROM visits WHERE dx = 'I10') "
    "GROUP BY zip ORDER BY zip",
    "SELECT zip, sum(income) FROM patients GROUP BY zip ORDER BY zip",
    "SELECT count(*) FROM patients WHERE zip = '998'",
]


@pytest.mark.parametrize("sql", SAME_RESULTS)
def test_single_view_queries_count_without_distinct_and_agree(sql, policy, flagged, locked) -> None:
    assert check(sql, flagged).allowed
    exact = run(locked, sql, policy)
    fast = run(locked, sql, flagged)
    assert (fast.rows, fast.suppressed_groups, fast.notices) == (
        exact.rows,
        exact.suppressed_groups,
        exact.notices,
    )


REPEATING = [
    # zip '998' holds 3 persons and '999' one: as rows, they repeat past k in every one of these.
    "SELECT p.zip, count(*) FROM patients p JOIN visits v ON p.pid = v.pid GROUP BY p.zip ORDER BY p.zip",
    "SELECT a.zip, count(*) FROM patients a JOIN patients b ON a.pid = b.pid GROUP BY a.zip ORDER BY a.zip",
    "WITH t AS (SELECT p.zip, p.pid FROM patients p JOIN visits v ON p.pid = v.pid) "
    "SELECT zip, count(*) FROM t GROUP BY zip ORDER BY zip",
]


@pytest.mark.parametrize("sql", REPEATING)
def test_repeated_persons_are_still_counted_once(sql, flagged, locked) -> None:
    assert check(sql, flagged).allowed
    result = run(locked, sql, flagged)
    assert [row[0] for row in result.rows] == ["100", "200", "300"]
    assert result.suppressed_groups == 2


def test_the_flag_is_what_makes_the_difference(flagged, locked) -> None:
    # If visits (several rows per person) were wrongly flagged, P042's six 'R99' rows would pass k:
    # the flag must come from a measurement, never a guess. This pins that the flag is honoured.
    views = dict(flagged.views)
    views["visits"] = dataclasses.replace(views["visits"], unique_person_key=True)
    wrong = dataclasses.replace(flagged, views=views)
    sql = "SELECT dx, count(*) FROM visits GROUP BY dx ORDER BY dx"
    assert "R99" not in [row[0] for row in run(locked, sql, flagged).rows]
    assert "R99" in [row[0] for row in run(locked, sql, wrong).rows]


def test_the_flag_bounds_joins(policy, flagged) -> None:
    sql = (
        "SELECT a.sex, count(*) FROM patients a JOIN visits v ON a.pid = v.pid "
        "JOIN visits w ON w.pid = a.pid GROUP BY a.sex"
    )
    assert [r.code for r in check(sql, policy).reasons] == ["QRY_FANOUT"]
    assert check(sql, flagged).allowed


def _cli(home: Path, *args: str) -> dict:
    result = CliRunner().invoke(app, ["--home", str(home), *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _query(home: Path, sql: str) -> dict:
    return _cli(home, "query", "--project", "demo-cardio", "--user", "bob", sql)


def test_preparation_measures_the_flag(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    generate(data, 300, 5)
    _cli(home, "init")
    for name in ("patients", "visits", "labs", "prescriptions"):
        _cli(home, "dataset", "register", str(data / f"{name}.yaml"))
    _cli(home, "project", "create", str(REPO / "examples" / "demo-project.yaml"), *NO_APPLICATION_ARGS)
    prepared = current_prepared_dir(Paths(home), "demo-cardio")
    report = json.loads((prepared / "report.json").read_text())
    flags = {name: facts["person_key_unique"] for name, facts in report["datasets"].items()}
    assert flags == {"patients": True, "visits": False, "labs": False, "prescriptions": False}
    assert unique_person_keys(prepared) == {"patients"}
    out = _query(home, "SELECT sex, count(*) FROM patients GROUP BY sex")
    assert sum(row[1] for row in out["rows"]) == 300
    # `guard check` builds the same context as the query that runs: with the measured flag, this
    # join is allowed (it is refused as a fan-out without it), and the SQL shown is the SQL run.
    joined = (
        "SELECT a.sex, count(*) FROM patients a JOIN visits v ON a.pid = v.pid "
        "JOIN visits w ON w.pid = a.pid GROUP BY a.sex"
    )
    checked = _cli(home, "guard", "check", "--project", "demo-cardio", joined)
    assert checked["allowed"] is True, checked
    ran = _query(home, joined)
    assert ran["rows"]


def test_an_unreadable_report_means_no_flag(tmp_path: Path) -> None:
    assert unique_person_keys(tmp_path) == set()
    (tmp_path / "report.json").write_text("not json")
    assert unique_person_keys(tmp_path) == set()
    (tmp_path / "report.json").write_text(
        json.dumps({"datasets": {"patients": {"person_key_unique": "yes"}}})
    )
    assert unique_person_keys(tmp_path) == set()
    (tmp_path / "report.json").write_text(json.dumps({"datasets": ["patients"]}))
    assert unique_person_keys(tmp_path) == set()
