"""Top- and bottom-coding of measures for row-level projects (R-PREP-13 applied to numbers; 002 §9.1
"数值变换").

In an ``access: rows`` project analysts see every value, so one extreme value (the one income above
900,000) singles out its owner. At preparation each ``measure`` column is clipped to bounds: values
above the top bound become the top bound, values below the bottom bound become the bottom bound,
NULL stays NULL. A bound comes from the dataset spec (``top_code``, ``bottom_code``) or, when the
spec declares none, from the persons of the source, one value per person:

* top: the 99th percentile of each person's largest value, and never above the ``k``-th largest
  of them, so at least ``k`` persons hold the top bound or more (below 100 persons the 99th
  percentile alone would be the maximum itself);
* bottom: the 1st percentile of each person's smallest value, and never below the ``k``-th smallest.

Counting persons, not rows, keeps a person with many rows from moving the bounds. A declared bound
wins; a computed bound never crosses a declared one; when the two computed bounds cross (fewer
than about ``2k`` persons), both become the median person's largest value. Aggregate projects keep
exact measures: the guard protects them.

    >>> import duckdb
    >>> bounds = MeasureBounds(bottom=0, top=500_000, bottom_from="declared", top_from="declared")
    >>> rows = "(VALUES (-5), (7), (900001), (NULL)) t(x)"
    >>> sql = f"SELECT {coding_sql('x', 'INTEGER', bounds)} FROM {rows}"
    >>> [row[0] for row in duckdb.execute(sql).fetchall()]
    [0, 7, 500000, None]
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from enclave.deid.sql import quote_ident

TOP_PERCENTILE = 0.99
BOTTOM_PERCENTILE = 0.01
PERSONS_TABLE = "_measure_persons"
INTEGER_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
FLOAT_TYPES = {"FLOAT", "DOUBLE"}
DECIMAL_TYPE = re.compile(r"DECIMAL\(\d+,\s*\d+\)")

Number = int | float


def codable(duckdb_type: str) -> bool:
    """Whether a column of this DuckDB type can be top- and bottom-coded (it is a number)."""
    kind = duckdb_type.upper()
    return kind in INTEGER_TYPES or kind in FLOAT_TYPES or DECIMAL_TYPE.fullmatch(kind) is not None


@dataclass(frozen=True)
class MeasureBounds:
    """The bounds of one measure and where each came from (``declared`` or ``percentile``; ``None``
    when the side is not coded). ``persons`` had a value; ``persons_above``/``persons_below`` had a
    value beyond the bound, so their rows were coded. No raw value beyond a bound is kept."""

    bottom: Number | None
    top: Number | None
    bottom_from: str | None
    top_from: str | None
    persons: int = 0
    persons_below: int = 0
    persons_above: int = 0

    @property
    def codes(self) -> bool:
        return self.bottom is not None or self.top is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "bottom": self.bottom,
            "top": self.top,
            "bottom_from": self.bottom_from,
            "top_from": self.top_from,
            "persons": self.persons,
            "persons_below": self.persons_below,
            "persons_above": self.persons_above,
        }


def _literal(value: Number, duckdb_type: str) -> str:
    if not math.isfinite(value):
        raise ValueError("a bound must be a finite number")
    return f"CAST({value!r} AS {duckdb_type})"


def coding_sql(value_sql: str, duckdb_type: str, bounds: MeasureBounds) -> str:
    """``value`` clipped to ``bounds``, keeping its type; NULL (and NaN) stay as they are."""
    if not codable(duckdb_type):
        raise ValueError(f"cannot code a {duckdb_type} column")
    kind = duckdb_type.upper()
    number = f" AND NOT isnan({value_sql})" if kind in FLOAT_TYPES else ""
    cases = []
    if bounds.top is not None:
        top = _literal(bounds.top, kind)
        cases.append(f"WHEN {value_sql} > {top}{number} THEN {top}")
    if bounds.bottom is not None:
        bottom = _literal(bounds.bottom, kind)
        cases.append(f"WHEN {value_sql} < {bottom}{number} THEN {bottom}")
    if not cases:
        return value_sql
    return f"(CASE {' '.join(cases)} ELSE {value_sql} END)"


def _number(value: Any) -> Number | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value  # type: ignore[no-any-return]


def _kth(values: list[Any] | None, k: int, fallback: Any) -> Number | None:
    """The k-th value of a sorted list, or ``fallback`` when it holds fewer than k."""
    return _number(values[k - 1] if values is not None and len(values) >= k else fallback)


def measure_bounds(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    person_key: str,
    measures: Mapping[str, str],
    declared: Mapping[str, tuple[Number | None, Number | None]],
    k: int,
) -> dict[str, MeasureBounds]:
    """The bounds of each measure (column -> DuckDB type) of ``relation``, from ``declared``
    (column -> (bottom, top), either may be None) or from the persons of the source (rows without
    a person key do not count). One pass over the source, grouped by person."""
    if not measures:
        return {}
    person = quote_ident(person_key)
    per_person = []
    for index, (name, duckdb_type) in enumerate(measures.items()):
        column = quote_ident(name)
        where = f" FILTER (WHERE NOT isnan({column}))" if duckdb_type.upper() in FLOAT_TYPES else ""
        per_person += [f"max({column}){where} AS hi_{index}", f"min({column}){where} AS lo_{index}"]
    table = quote_ident(PERSONS_TABLE)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {', '.join(per_person)} "
        f"FROM {relation} WHERE {person} IS NOT NULL GROUP BY {person}"
    )
    try:
        return {
            name: _bounds(con, table, f"hi_{index}", f"lo_{index}", declared.get(name, (None, None)), k)
            for index, name in enumerate(measures)
        }
    finally:
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _bounds(
    con: duckdb.DuckDBPyConnection,
    table: str,
    hi: str,
    lo: str,
    declared: tuple[Number | None, Number | None],
    k: int,
) -> MeasureBounds:
    """The bounds of one measure from its per-person largest (``hi``) and smallest (``lo``) values."""
    persons, q_top, q_bottom, largest, smallest, min_hi, max_lo, median = con.execute(
        f"SELECT count({hi}), quantile_disc({hi}, {TOP_PERCENTILE}), "
        f"quantile_disc({lo}, {BOTTOM_PERCENTILE}), max({hi}, {int(k)}), min({lo}, {int(k)}), "
        f"min({hi}), max({lo}), quantile_disc({hi}, 0.5) FROM {table}"
    ).fetchone()  # type: ignore[misc]
    top: Number | None = None
    bottom: Number | None = None
    if persons:
        # The percentile, held back to the k-th most extreme person (the least extreme one when
        # there are fewer than k persons); the median when the two cross.
        top = min(_number(q_top), _kth(largest, k, min_hi))  # type: ignore[type-var]
        bottom = max(_number(q_bottom), _kth(smallest, k, max_lo))  # type: ignore[type-var]
        if bottom > top:  # type: ignore[operator]
            top = bottom = _number(median)
    top_from = bottom_from = "percentile"
    declared_bottom, declared_top = declared
    if declared_top is not None:
        top, top_from = declared_top, "declared"
    if declared_bottom is not None:
        bottom, bottom_from = declared_bottom, "declared"
    if top is not None and bottom is not None and bottom > top:  # a computed bound gives way
        if top_from == "declared":
            bottom = top
        else:
            top = bottom
    above, below = con.execute(
        f"SELECT count(*) FILTER (WHERE {hi} > $top), count(*) FILTER (WHERE {lo} < $bottom) FROM {table}",
        {"top": top, "bottom": bottom},
    ).fetchone()  # type: ignore[misc]
    return MeasureBounds(
        bottom=bottom,
        top=top,
        bottom_from=bottom_from if bottom is not None else None,
        top_from=top_from if top is not None else None,
        persons=int(persons),
        persons_below=int(below),
        persons_above=int(above),
    )
