"""``run`` and the contracts around it: suppression order, rounding, limits, errors, JSON shapes."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from enclave.errors import EXIT_REFUSED, BadInput, Refused
from enclave.guard import GuardPolicy, QueryLimits, check, policy_from_specs, run
from enclave.guard.execute import json_safe, round_count
from enclave.specs import AccessMode, ColumnRole, parse_dataset_spec, parse_project_spec
from tests.harness.factories import dataset_spec


def test_order_and_limit_apply_after_suppression(policy, locked):
    # The smallest zips ('999': 1 person, '998': 3) must not take the LIMIT's place.
    result = run(locked, "SELECT zip, count(*) AS n FROM patients GROUP BY zip ORDER BY n LIMIT 1", policy)
    assert result.rows == [["300", 46]]
    assert result.suppressed_groups == 2


def test_having_cannot_shape_the_suppressed_count(policy, locked):
    base = run(locked, "SELECT zip, count(*) FROM patients GROUP BY zip", policy)
    for having in ("count(*) = 1", "count(*) = 3", "count(*) > 1000"):
        result = run(locked, f"SELECT zip, count(*) FROM patients GROUP BY zip HAVING {having}", policy)
        assert result.suppressed_groups == base.suppressed_groups


def test_counts_are_rounded_when_the_project_asks(policy, locked):
    rounded = dataclasses.replace(policy, round_to=5)
    result = run(
        locked, "SELECT zip, count(*) AS n, avg(age) AS a FROM patients GROUP BY zip ORDER BY zip", rounded
    )
    assert [row[1] for row in result.rows] == [80, 70, 45]
    assert all(isinstance(row[2], float) for row in result.rows)
    assert any("rounded" in n for n in result.notices)
    assert round_count(47.5, 5) == 50 and round_count(2, 5) == 0 and round_count(None, 5) is None


def test_k_above_five_is_honoured(policy, locked):
    strict = dataclasses.replace(policy, k=50)
    result = run(locked, "SELECT zip, count(*) FROM patients GROUP BY zip ORDER BY zip", strict)
    assert result.rows == [["100", 80], ["200", 70]]
    assert result.suppressed_groups == 3


def test_too_many_rows_is_refused(policy, locked):
    with pytest.raises(Refused) as error:
        run(
            locked,
            "SELECT sex, dx, count(*) FROM patients GROUP BY sex, dx",
            policy,
            limits=QueryLimits(rows=2),
        )
    assert error.value.code == "result_too_large"
    assert error.value.exit_code == EXIT_REFUSED


def test_database_errors_never_leak_their_text(policy, locked):
    # A type error DuckDB reports with the offending value; the analyst sees only our code.
    with pytest.raises(BadInput) as error:
        run(locked, "SELECT sex, count(*) FROM patients WHERE age LIKE 'x%' GROUP BY sex", policy)
    assert error.value.code in ("query_invalid", "query_failed")
    text = json.dumps(error.value.to_dict(), ensure_ascii=False)
    assert "Binder Error" not in text and "x%" not in text and "~~" not in text


def test_timeout_is_reported_with_our_code(policy, locked):
    sql = "SELECT a.dx, count(*) FROM visits a JOIN visits b ON a.pid = b.pid GROUP BY a.dx"
    try:
        run(locked, sql, policy, limits=QueryLimits(timeout_s=0.0001))
    except BadInput as error:
        assert error.code == "query_timeout"
        assert "0.0001" in error.message


def test_a_chain_of_multi_row_joins_is_refused_before_it_runs(policy, locked):
    # Attack class 7: a fan-out that explodes only when a filter matches turns time into an answer.
    sql = (
        "SELECT a.dx, count(*) FROM visits a JOIN visits b ON a.pid = b.pid "
        "JOIN visits c ON c.pid = a.pid GROUP BY a.dx"
    )
    assert [r.code for r in check(sql, policy).reasons] == ["QRY_FANOUT"]


def test_the_estimated_cardinality_bounds_what_runs(policy, locked):
    tight = dataclasses.replace(policy, max_estimated_rows=100)
    with pytest.raises(Refused) as error:
        run(locked, "SELECT a.dx, count(*) FROM visits a JOIN visits b ON a.pid = b.pid GROUP BY a.dx", tight)
    assert [r.code for r in error.value.reasons] == ["QRY_FANOUT"]


def test_refusal_carries_every_reason(policy, locked):
    with pytest.raises(Refused) as error:
        run(locked, "SELECT pid, max(income) FROM patients", policy)
    payload = error.value.to_dict()["error"]
    assert payload["code"] == "query_rejected"
    codes = {r["code"] for r in payload["reasons"]}
    assert {"QRY_PERSON_KEY_OUTPUT", "QRY_UNSAFE_AGGREGATE"} <= codes
    for reason in payload["reasons"]:
        assert set(reason) >= {"code", "message", "message_zh"}
        assert re.search(r"[\u4e00-\u9fff]", reason["message_zh"])


def test_verdict_and_result_match_the_cli_contracts(policy, locked):
    verdict = check("SELECT sex, count(*) FROM patients GROUP BY sex", policy)
    assert list(verdict.to_dict()) == ["allowed", "reasons", "sql"]
    assert verdict.to_dict()["allowed"] is True and '"__enclave_p"' in verdict.sql
    refused = check("SELECT * FROM patients", policy).to_dict()
    assert refused["allowed"] is False and refused["sql"] is None and refused["reasons"]
    result = run(locked, "SELECT year(visit_date) AS y, avg(cost) FROM visits GROUP BY y", policy)
    payload = result.to_dict()
    assert list(payload) == ["columns", "rows", "suppressed_groups", "notices"]
    json.dumps(payload)


def test_dates_and_odd_floats_are_json_safe(policy, locked):
    result = run(
        locked,
        "SELECT date_trunc('year', visit_date) AS y, count(*) FROM visits GROUP BY y ORDER BY y",
        policy,
    )
    assert all(isinstance(row[0], str) for row in result.to_dict()["rows"])
    assert json_safe(float("inf")) is None and json_safe(float("nan")) is None


def test_dominated_sum_is_suppressed_and_announced(policy, locked):
    result = run(locked, "SELECT zip, sum(income) FROM patients GROUP BY zip ORDER BY zip", policy)
    assert [row[0] for row in result.rows] == ["100", "200", "300"]
    assert result.rows[2][1] is None and None not in (result.rows[0][1], result.rows[1][1])
    assert any("dominated" in n for n in result.notices)
    lenient = dataclasses.replace(policy, dominance_k=1.0, dominance_p=0.0)
    result = run(locked, "SELECT zip, sum(income) FROM patients GROUP BY zip ORDER BY zip", lenient)
    assert [row[1] is not None for row in result.rows] == [True, True, True]


def test_rows_mode_is_advisory(policy, locked):
    rows_policy = dataclasses.replace(policy, mode=AccessMode.ROWS)
    verdict = check("SELECT zip, income FROM patients WHERE zip = '999'", rows_policy)
    assert verdict.allowed and {r.code for r in verdict.reasons} == {"QRY_NOT_AGGREGATE"}
    result = run(locked, "SELECT zip, income FROM patients WHERE zip = '999'", rows_policy)
    assert result.rows == [["999", 1000.0 + (199 * 37) % 500]]
    assert check("COPY patients TO 'x.csv'", rows_policy).allowed is False
    assert check("SELECT * FROM read_csv('/etc/passwd')", rows_policy).allowed is False


def test_policy_from_specs_drops_identifiers_and_text():
    columns = {
        "pid": {"role": "person_key"},
        "ssn": {"role": "direct_id"},
        "age": {"role": "quasi_id"},
        "income": {"role": "measure"},
        "notes": {"role": "text"},
    }
    dataset = parse_dataset_spec(
        dataset_spec("patients", "p.parquet", columns, title="P", steward="s", level=4)
    )
    project = parse_project_spec(
        {
            "id": "cardio-2026",
            "title": "C",
            "purpose": "x",
            "pi": "alice",
            "analysts": ["alice"],
            "committee": ["carol", "dave", "erin"],
            "datasets": {"patients": ["pid", "ssn", "age", "income", "notes"]},
            "min_cell_count": 10,
            "period": {"start": "2026-11-01", "end": "2027-10-31"},
        }
    )
    policy = policy_from_specs(project, {"patients": dataset})
    view = policy.views["patients"]
    assert view.columns == {
        "pid": ColumnRole.PERSON_KEY,
        "age": ColumnRole.QUASI_ID,
        "income": ColumnRole.MEASURE,
    }
    assert policy.k == 10 and policy.mode is AccessMode.AGGREGATE
    assert check("SELECT count(ssn) FROM patients", policy).allowed is False


def test_invalid_policy_is_refused(policy):
    with pytest.raises(BadInput):
        GuardPolicy(views=policy.views, k=2)
    with pytest.raises(BadInput):
        GuardPolicy(views=policy.views, dominance_k=1.5)


def test_reasons_locate_the_problem(policy):
    verdict = check("SELECT sex,\n       max(income) FROM patients GROUP BY sex", policy)
    reason = verdict.reasons[0]
    assert reason.code == "QRY_UNSAFE_AGGREGATE"
    assert reason.details["line"] == 2


def test_parse_errors_are_reasons_not_exceptions(policy):
    verdict = check("SELECT (((", policy)
    assert not verdict.allowed and verdict.reasons[0].code == "QRY_PARSE"
    assert check(None, policy).reasons[0].code == "QRY_PARSE"
    assert check("x" * 30_000, policy).reasons[0].code == "QRY_TOO_LARGE"
