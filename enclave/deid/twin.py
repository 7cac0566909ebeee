"""The synthetic twin: the same schema with fake rows, for writing code (R-PREP-23, R-CAT-15).

Every column is drawn on its own, so no real row survives and no combination of values is copied:

* the person key: fake pseudonyms from a pool shared by all datasets of the project (joins work);
* text, booleans and integers with few distinct values: a value appears only if at least ``k``
  distinct persons have it, drawn with its observed frequency;
* other numbers, dates and timestamps: uniform between the 5th and 95th percentiles (so outliers
  never appear), widened to round figures, and only when at least ``k`` persons have a value;
* anything else (lists, blobs, ...) and columns that fail the rules above: NULL.

The statistics are computed with DuckDB; only the few thousand fake values are made in numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from enclave.deid.pseudonym import PSEUDONYM_HEX_CHARS, PSEUDONYM_PREFIX
from enclave.deid.sql import quote_ident, quote_literal

MAX_CATEGORIES = 1000
FEW_DISTINCT_INTEGERS = 30  # integer columns with at most this many values are treated as categories
LOW_QUANTILE, HIGH_QUANTILE = 0.05, 0.95
DATE_ROUNDING_DAYS = 7
SECONDS_PER_DAY = 86_400

INTEGER_TYPES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
    "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
}  # fmt: skip
FLOAT_TYPES = {"FLOAT", "DOUBLE"}
CATEGORY_TYPES = {"VARCHAR", "BOOLEAN"}
TIMESTAMP_TYPES = {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE"}


@dataclass(frozen=True)
class TwinColumn:
    """How one twin column is drawn (a summary safe to put in a report: no values)."""

    name: str
    duckdb_type: str
    kind: str  # person | category | number | date | timestamp | null
    categories: int = 0


def person_pool(rng: np.random.Generator, size: int) -> list[str]:
    """Fake pseudonyms in the real format, ``p_<16 hex>``."""
    return [PSEUDONYM_PREFIX + rng.bytes(PSEUDONYM_HEX_CHARS // 2).hex() for _ in range(size)]


def _persons_sql(person: str | None, value: str) -> str:
    if person is None:
        return f"count({value})"
    return f"count(DISTINCT {quote_ident(person)}) FILTER (WHERE {value} IS NOT NULL)"


def _null_fraction(con: duckdb.DuckDBPyConnection, relation: str, value: str) -> float:
    (fraction,) = con.execute(
        f"SELECT coalesce(avg(CASE WHEN {value} IS NULL THEN 1.0 ELSE 0.0 END), 1.0) FROM {relation}"
    ).fetchone()  # type: ignore[misc]
    return round(float(fraction), 2)


def _categories(
    con: duckdb.DuckDBPyConnection, relation: str, value: str, person: str | None, k: int
) -> tuple[list[Any], np.ndarray]:
    """Values held by at least ``k`` persons, and their weights."""
    persons = "count(*)" if person is None else f"count(DISTINCT {quote_ident(person)})"
    rows = con.execute(
        f"SELECT {value} AS v, {persons} AS n FROM {relation} WHERE {value} IS NOT NULL "
        f"GROUP BY v HAVING {persons} >= $k ORDER BY n DESC, v LIMIT {MAX_CATEGORIES}",
        {"k": k},
    ).fetchall()
    values = [v for v, _ in rows]
    weights = np.array([n for _, n in rows], dtype=float)
    return values, weights / weights.sum() if len(values) else weights


def _round_out(low: float, high: float, step: float | None = None) -> tuple[float, float]:
    """Widen ``[low, high]`` to round figures (two significant digits unless ``step`` is given)."""
    if step is None:
        magnitude = max(abs(low), abs(high))
        step = 10 ** (math.floor(math.log10(magnitude)) - 1) if magnitude > 0 else 1.0
    return math.floor(low / step) * step, math.ceil(high / step) * step


def _range(
    con: duckdb.DuckDBPyConnection, relation: str, number: str, person: str | None, k: int
) -> tuple[float, float] | None:
    persons, low, high = con.execute(
        f"SELECT {_persons_sql(person, number)}, quantile_cont({number}, {LOW_QUANTILE}), "
        f"quantile_cont({number}, {HIGH_QUANTILE}) FROM {relation}"
    ).fetchone()  # type: ignore[misc]
    if persons < k or low is None:
        return None
    return float(low), float(high)


def _classify(con: duckdb.DuckDBPyConnection, relation: str, column: str, duckdb_type: str) -> str:
    base = duckdb_type.upper()
    if base in CATEGORY_TYPES:
        return "category"
    if base in INTEGER_TYPES:
        (distinct,) = con.execute(f"SELECT approx_count_distinct({column}) FROM {relation}").fetchone()  # type: ignore[misc]
        return "category" if distinct <= FEW_DISTINCT_INTEGERS else "number"
    if base in FLOAT_TYPES or base.startswith("DECIMAL"):
        return "number"
    if base == "DATE":
        return "date"
    if base in TIMESTAMP_TYPES:
        return "timestamp"
    return "null"


def _with_nulls(rng: np.random.Generator, values: np.ndarray, null_fraction: float) -> np.ndarray:
    out = values.astype(object)
    out[rng.random(len(out)) < null_fraction] = None
    return out


@dataclass(frozen=True)
class _Draws:
    """Where one twin's statistics come from and how its fake values are drawn: the relation, its
    person column (for the k rule), k, the number of rows and the seeded generator."""

    con: duckdb.DuckDBPyConnection
    relation: str
    person: str | None
    k: int
    rows: int
    rng: np.random.Generator


def _draw_categories(draws: _Draws, column: str) -> tuple[np.ndarray | None, int]:
    """Values held by at least ``k`` persons, drawn with their observed frequency; how many there are."""
    options, weights = _categories(draws.con, draws.relation, column, draws.person, draws.k)
    if not options:
        return None, 0
    picked = draws.rng.choice(len(options), size=draws.rows, p=weights)
    return np.array(options, dtype=object)[picked], len(options)


def _draw_numbers(draws: _Draws, column: str, duckdb_type: str) -> np.ndarray | None:
    """Uniform between the rounded-out 5th and 95th percentiles (whole numbers for integer types)."""
    bounds = _range(draws.con, draws.relation, column, draws.person, draws.k)
    if bounds is None:
        return None
    low, high = _round_out(*bounds)
    values = draws.rng.uniform(low, high, size=draws.rows)
    return np.rint(values) if duckdb_type.upper() in INTEGER_TYPES else values


def _draw_days(draws: _Draws, column: str, kind: str) -> np.ndarray | None:
    """Dates (days since 1970) or timestamps (seconds), uniform between the percentiles widened to
    whole weeks."""
    unit = SECONDS_PER_DAY if kind == "timestamp" else 1
    number = f"epoch({column})" if kind == "timestamp" else f"({column} - DATE '1970-01-01')"
    bounds = _range(draws.con, draws.relation, number, draws.person, draws.k)
    if bounds is None:
        return None
    low, high = _round_out(*bounds, step=DATE_ROUNDING_DAYS * unit)
    return np.rint(draws.rng.uniform(low, high, size=draws.rows))


def _draw(
    draws: _Draws, column: str, duckdb_type: str, kind: str, pool: Sequence[str]
) -> tuple[np.ndarray | None, int]:
    """The fake values of one column by its kind (``None``: the column stays NULL) and, for a
    category column, how many categories it has."""
    if kind == "person":
        return draws.rng.choice(np.array(pool, dtype=object), size=draws.rows), 0
    if kind == "category":
        return _draw_categories(draws, column)
    if kind == "number":
        return _draw_numbers(draws, column, duckdb_type), 0
    if kind in ("date", "timestamp"):
        return _draw_days(draws, column, kind), 0
    return None, 0


def _cast_sql(kind: str, slot: str, column: str, duckdb_type: str) -> str:
    """The twin's column from its slot of drawn values, cast back to the source type."""
    if kind == "date":
        expression = f"DATE '1970-01-01' + CAST({slot} AS INTEGER)"
    elif kind == "timestamp":
        expression = f"to_timestamp({slot})"
    else:
        expression = slot
    return f"CAST({expression} AS {duckdb_type}) AS {column}"


def _copy_twin(
    con: duckdb.DuckDBPyConnection, raw: dict[str, np.ndarray], select: Sequence[str], rows: int, target: Path
) -> None:
    """Write the drawn values, through ``select``, as zstd Parquet at ``target``."""
    frame = pd.DataFrame(raw if raw else {"_": np.zeros(rows)})
    if raw:
        for slot, values in raw.items():
            if all(v is None for v in values):
                frame[slot] = pd.Series([None] * rows, dtype="float64")
    con.register("_twin_raw", frame)
    try:
        con.execute(
            f"COPY (SELECT {', '.join(select)} FROM _twin_raw) TO {quote_literal(str(target))} "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
    finally:
        con.unregister("_twin_raw")


def write_twin(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    schema: Sequence[tuple[str, str]],
    target: Path,
    *,
    person: str | None,
    person_key_column: str | None,
    pool: Sequence[str],
    k: int,
    rows: int,
    rng: np.random.Generator,
) -> list[TwinColumn]:
    """Write a twin of ``relation`` (columns ``schema``: name, DuckDB type) as Parquet at ``target``.

    ``person`` names the column of ``relation`` that identifies persons (used for the k rule);
    ``person_key_column`` is the output column that gets fake pseudonyms from ``pool``.
    """
    draws = _Draws(con, relation, person, k, rows, rng)
    raw: dict[str, np.ndarray] = {}
    select: list[str] = []
    summary: list[TwinColumn] = []
    for index, (name, duckdb_type) in enumerate(schema):
        column, slot = quote_ident(name), f"c{index}"
        kind = "person" if name == person_key_column else _classify(con, relation, column, duckdb_type)
        values, categories = _draw(draws, column, duckdb_type, kind, pool)
        if values is None:
            kind = "null" if kind != "person" else kind
            select.append(f"CAST(NULL AS {duckdb_type}) AS {column}")
        else:
            if kind != "person":
                values = _with_nulls(rng, values, _null_fraction(con, relation, column))
            raw[slot] = values
            select.append(_cast_sql(kind, slot, column, duckdb_type))
        summary.append(TwinColumn(name, duckdb_type, kind, categories))
    _copy_twin(con, raw, select, rows, target)
    return summary
