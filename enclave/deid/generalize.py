"""Generalisation of quasi-identifiers as SQL expressions (GB/T 39725 §10.2 c, Table 6).

Each builder takes a SQL expression and returns one; NULL stays NULL.

    >>> import duckdb
    >>> duckdb.sql(f"SELECT {age_band_5_sql('93')}, {age_band_5_sql('38')}").fetchone()
    ('>89', '35-39')
    >>> duckdb.sql("SELECT " + postcode_prefix_3_sql("'100080'")).fetchone()
    ('100',)
"""

from __future__ import annotations

from collections.abc import Callable

from enclave.specs import Generalize

AGE_BAND_WIDTH = 5
AGE_LOWEST_BAND_START = 25  # everything below is '<25'
AGE_TOP_CODE = 89  # R-PREP-9: ages above 89 are one band, '>89', never subdivided
POSTCODE_PREFIX = 3  # R-PREP-11: 100080 -> 100


def age_band_5_sql(value_sql: str) -> str:
    """Five-year bands ``<25, 25-29, ..., 85-89, >89`` over the whole years of a number."""
    age = f"floor(CAST({value_sql} AS DOUBLE))"
    low = f"CAST(floor({age} / {AGE_BAND_WIDTH}) * {AGE_BAND_WIDTH} AS BIGINT)"
    return (
        f"(CASE WHEN {age} IS NULL THEN NULL"
        f" WHEN {age} < {AGE_LOWEST_BAND_START} THEN '<{AGE_LOWEST_BAND_START}'"
        f" WHEN {age} > {AGE_TOP_CODE} THEN '>{AGE_TOP_CODE}'"
        f" ELSE CAST({low} AS VARCHAR) || '-' || CAST({low} + {AGE_BAND_WIDTH - 1} AS VARCHAR) END)"
    )


def postcode_prefix_3_sql(value_sql: str) -> str:
    """The first three characters of the postcode's text (store postcodes as text: a number
    loses its leading zeros before this runs)."""
    return f"left(trim(CAST({value_sql} AS VARCHAR)), {POSTCODE_PREFIX})"


def year_sql(value_sql: str) -> str:
    """The calendar year of a date or timestamp, as an integer."""
    return f"CAST(year(CAST({value_sql} AS DATE)) AS INTEGER)"


def year_month_sql(value_sql: str) -> str:
    """``YYYY-MM`` of a date or timestamp."""
    return f"strftime(CAST({value_sql} AS DATE), '%Y-%m')"


GENERALIZERS: dict[Generalize, Callable[[str], str]] = {
    Generalize.AGE_BAND_5: age_band_5_sql,
    Generalize.POSTCODE_PREFIX_3: postcode_prefix_3_sql,
    Generalize.YEAR: year_sql,
    Generalize.YEAR_MONTH: year_month_sql,
}


def generalize_sql(kind: Generalize, value_sql: str) -> str:
    """The SQL for one generalisation named in a dataset spec."""
    return GENERALIZERS[kind](value_sql)
