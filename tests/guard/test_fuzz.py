"""Fuzz the guard: it never raises, and it never allows anything but a SELECT."""

from __future__ import annotations

import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave.guard import check

WORDS = [
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "HAVING",
    "ORDER BY",
    "LIMIT",
    "JOIN",
    "ON",
    "USING",
    "UNION ALL",
    "WITH",
    "AS",
    "count(*)",
    "sum(income)",
    "avg(cost)",
    "min(age)",
    "pid",
    "zip",
    "sex",
    "income",
    "cost",
    "patients",
    "visits",
    "p",
    "v",
    "(",
    ")",
    ",",
    ";",
    "=",
    "<",
    "'999'",
    "1",
    "*",
    "CASE WHEN",
    "THEN",
    "ELSE",
    "END",
    "IN",
    "NOT",
    "AND",
    "OR",
    "DISTINCT",
    "OVER ()",
    "COPY",
    "ATTACH",
    "PRAGMA",
    "SET",
    "INSTALL",
    "read_csv('/etc/passwd')",
    "query('x')",
    "--",
    "/*",
    "*/",
    "$$",
    '"',
    "'",
    "\\",
    "\x00",
    "EXPLAIN",
    "CREATE",
    "DROP",
    "INSERT",
    "CALL",
    "LOAD",
    "EXPORT",
    "DESCRIBE",
    "SUMMARIZE",
    "PIVOT",
]

ALLOWED_ROOTS = (sqlglot.exp.Select,)


def _assert_sane(sql: str, policy) -> None:
    verdict = check(sql, policy)
    assert isinstance(verdict.allowed, bool)
    assert verdict.to_dict().keys() == {"allowed", "reasons", "sql"}
    if verdict.allowed:
        tree = sqlglot.parse(verdict.sql, read="duckdb")
        assert len(tree) == 1 and isinstance(tree[0], ALLOWED_ROOTS)
        assert "patients" in verdict.sql or "visits" in verdict.sql
    else:
        assert verdict.sql is None and verdict.reasons


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=0, max_size=30))
def test_token_soup_never_crashes(policy, words):
    _assert_sane(" ".join(words), policy)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(policy, text):
    _assert_sane(text, policy)


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.sampled_from(["", "WITH t AS (SELECT * FROM patients) ", "EXPLAIN ", "COPY (", "/* x */ "]),
    body=st.sampled_from(
        [
            "SELECT sex, count(*) FROM patients GROUP BY sex",
            "SELECT * FROM patients",
            "SELECT count(*) FROM t",
            "INSERT INTO patients SELECT * FROM patients",
            "SELECT pid FROM visits",
        ]
    ),
    suffix=st.sampled_from(["", ";", "; DROP VIEW patients", ") TO 'x.csv'", " -- tail", " LIMIT 3"]),
)
def test_statement_mutations_never_allow_non_select(policy, prefix, body, suffix):
    _assert_sane(prefix + body + suffix, policy)
