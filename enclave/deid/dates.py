"""Date shifting as SQL expressions (GB/T 39725 §10.2 c3, Table 6; R-PREP-10).

The offset is a secret (R-PREP-15): it is bound as the parameter ``$date_offset`` (one offset per
project, as the standard specifies) or derived per person from a keyed hash bound as
``$<key>_ipad/_opad`` (the option), and never written into SQL text. Adding the same number of days
to every date of a person keeps every interval, e.g. a 90-day stay stays 90 days.

On top of either offset, a project may add a per-person *jitter*: a keyed, deterministic number of
days, uniform in [-N, N] (N bound as ``$date_jitter_days``), the same for every date of the person
in every dataset of the project. Intervals within one person stay exact, but the dates of different
persons no longer move by one common number of days, so the offset cannot be read off as "earliest
released date minus a known public event".

    >>> import duckdb
    >>> sql = "SELECT " + date_shift_sql("DATE '2018-01-01'", "DATE", project_offset_sql())
    >>> duckdb.execute(sql, {"date_offset": 100}).fetchone()[0].isoformat()
    '2018-04-11'
"""

from __future__ import annotations

from enclave.deid.pseudonym import hmac_hex_sql

OFFSET_PARAM = "date_offset"
JITTER_DAYS_PARAM = "date_jitter_days"
MIN_OFFSET_DAYS = 30
MAX_OFFSET_DAYS = 365

DATE_TYPES = {"DATE"}
TIMESTAMP_TYPES = {
    "TIMESTAMP",
    "TIMESTAMP_S",
    "TIMESTAMP_MS",
    "TIMESTAMP_NS",
    "TIMESTAMP WITH TIME ZONE",
}
TEXT_TYPES = {"VARCHAR"}


class DateTypeUnsupported(ValueError):
    """A ``date`` column holds a type that cannot be shifted."""


def project_offset_sql() -> str:
    """The project's one secret offset in days, bound as ``$date_offset``."""
    return f"CAST(${OFFSET_PARAM} AS INTEGER)"


def _hash_bits_sql(person_sql: str, key_param: str) -> str:
    """The first 32 bits of HMAC(key, person) as a BIGINT (NULL for a NULL person)."""
    return f"CAST(('0x' || left({hmac_hex_sql(person_sql, key_param)}, 8)) AS BIGINT)"


def person_offset_sql(person_sql: str, key_param: str) -> str:
    """A secret per-person offset in ±[30, 365] days, never zero, from a keyed hash of the person.

    The first 32 bits of HMAC(key, person) pick the size (bits 0..30 modulo 336, plus 30) and the
    sign (bit 31), the same way as :func:`person_offset` does in Python.
    """
    bits = _hash_bits_sql(person_sql, key_param)
    span = MAX_OFFSET_DAYS - MIN_OFFSET_DAYS + 1
    size = f"({MIN_OFFSET_DAYS} + ({bits} & 2147483647) % {span})"
    return f"CAST(CASE WHEN ({bits} >> 31) = 1 THEN -{size} ELSE {size} END AS INTEGER)"


def person_offset(hmac_hex_value: str) -> int:
    """The Python twin of :func:`person_offset_sql`, given the HMAC hex of the person."""
    bits = int(hmac_hex_value[:8], 16)
    size = MIN_OFFSET_DAYS + (bits & 0x7FFFFFFF) % (MAX_OFFSET_DAYS - MIN_OFFSET_DAYS + 1)
    return -size if bits >> 31 else size


def person_jitter_sql(person_sql: str, key_param: str) -> str:
    """A secret per-person jitter in [-N, N] days, N bound as ``$date_jitter_days``.

    The first 32 bits of HMAC(key, person) modulo 2N + 1, minus N: uniform over the 2N + 1 values
    (up to a bias below 2N/2^32), the same way as :func:`person_jitter` does in Python. A NULL person
    has a NULL jitter, so a row without a person has no date rather than the bare project offset.
    """
    bits = _hash_bits_sql(person_sql, key_param)
    days = f"CAST(${JITTER_DAYS_PARAM} AS BIGINT)"
    return f"CAST(({bits} % (2 * {days} + 1)) - {days} AS INTEGER)"


def person_jitter(hmac_hex_value: str, days: int) -> int:
    """The Python twin of :func:`person_jitter_sql`, given the HMAC hex of the person and N."""
    return int(hmac_hex_value[:8], 16) % (2 * days + 1) - days


def person_shift_sql(
    person_sql: str, *, per_person_offset: bool, jitter: bool, offset_key: str, jitter_key: str
) -> str:
    """The whole shift of a person's dates in days: the project offset (or, with
    ``per_person_offset``, the person's own offset), plus the person's jitter when ``jitter``."""
    base = person_offset_sql(person_sql, offset_key) if per_person_offset else project_offset_sql()
    if not jitter:
        return base
    return f"({base} + {person_jitter_sql(person_sql, jitter_key)})"


def calendar_date_sql(value_sql: str, duckdb_type: str) -> str:
    """``value`` as a DATE, unshifted (a timestamp's day; text parsed as ``date_shift_sql`` does)."""
    kind = duckdb_type.upper()
    if kind in DATE_TYPES:
        return value_sql
    if kind in TIMESTAMP_TYPES or kind in TEXT_TYPES:
        return f"CAST({value_sql} AS DATE)"
    raise DateTypeUnsupported(duckdb_type)


def date_shift_sql(value_sql: str, duckdb_type: str, offset_sql: str) -> str:
    """``value`` moved by ``offset`` days, keeping its type (text dates become DATE)."""
    kind = duckdb_type.upper()
    if kind in DATE_TYPES:
        return f"({value_sql} + {offset_sql})"
    if kind in TIMESTAMP_TYPES:
        return f"({value_sql} + to_days({offset_sql}))"
    if kind in TEXT_TYPES:
        return f"(CAST({value_sql} AS DATE) + {offset_sql})"
    raise DateTypeUnsupported(duckdb_type)
