"""The attack and benign corpora, run through ``check`` and against real DuckDB through ``run``."""

from __future__ import annotations

import math

import pytest

from enclave.errors import Refused
from enclave.guard import check, run

from .helpers import load_cases

REJECT = load_cases("reject.sql")
ACCEPT = load_cases("accept.sql")
SUPPRESS = load_cases("suppress.sql")


def test_corpora_are_big_enough():
    assert len(REJECT) + len(SUPPRESS) >= 80
    assert len(ACCEPT) >= 50
    assert len({c.title for c in REJECT + ACCEPT + SUPPRESS}) == len(REJECT + ACCEPT + SUPPRESS)


@pytest.mark.parametrize("case", REJECT, ids=[c.title for c in REJECT])
def test_attack_is_refused_with_its_code(case, policy, locked):
    verdict = check(case.sql, policy)
    codes = [r.code for r in verdict.reasons]
    assert not verdict.allowed and verdict.sql is None, case.sql
    assert case.headers["code"] in codes, codes
    for reason in verdict.reasons:
        assert reason.message and reason.message_zh and reason.message != reason.message_zh
    with pytest.raises(Refused) as refused:
        run(locked, case.sql, policy)
    assert refused.value.code == "query_rejected"
    assert [r.code for r in refused.value.reasons] == codes


@pytest.mark.parametrize("case", SUPPRESS, ids=[c.title for c in SUPPRESS])
def test_attack_that_runs_releases_no_small_group(case, policy, locked):
    verdict = check(case.sql, policy)
    assert verdict.allowed, [r.message for r in verdict.reasons]
    result = run(locked, case.sql, policy)
    expect = case.headers["expect"]
    if expect == "empty":
        # No value is released: groups are suppressed, or their values come back as NULL.
        assert all(value is None for row in result.rows for value in row if not isinstance(value, str)), (
            result.rows
        )
    elif expect.startswith("rows "):
        assert len(result.rows) == int(expect.split()[1]), result.rows
    else:
        assert expect.startswith("suppressed ")
        assert result.suppressed_groups == int(expect.split()[1])


@pytest.mark.parametrize("case", ACCEPT, ids=[c.title for c in ACCEPT])
def test_benign_query_matches_plain_duckdb_minus_small_groups(case, policy, locked, plain):
    verdict = check(case.sql, policy)
    assert verdict.allowed, [r.message for r in verdict.reasons]
    result = run(locked, case.sql, policy)
    expected = [tuple(row) for row in plain.execute(case.sql).fetchall()]
    released = [tuple(row) for row in result.rows]
    assert len(result.columns) == len(plain.execute(case.sql).description)
    remaining = list(expected)
    wildcards = 0
    for row in released:
        match = next((e for e in remaining if _same(row, e)), None)
        if match is None:  # a value suppressed by its own population, dominance or extremes rule
            match = next((e for e in remaining if _same(row, e, suppressed=True)), None)
            wildcards += sum(1 for x, y in zip(row, match or (), strict=False) if x is None and y is not None)
        assert match is not None, f"released row {row} is not in the plain result {expected}"
        remaining.remove(match)
    assert wildcards <= result.suppressed_values
    upper = " ".join(case.sql.upper().split())
    if " LIMIT " not in upper and " HAVING " not in upper and "inner" not in case.headers:
        assert len(released) + result.suppressed_groups == len(expected)
    if " ORDER BY " in upper and " LIMIT " not in upper and result.suppressed_groups == 0:
        assert all(_same(a, b, suppressed=True) for a, b in zip(released, expected, strict=True))


def _same(a: tuple, b: tuple, *, suppressed: bool = False) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if suppressed and x is None:
            continue
        if isinstance(x, float) or isinstance(y, float):
            if x is None or y is None or not math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-9):
                return False
        elif x != y:
            return False
    return True
