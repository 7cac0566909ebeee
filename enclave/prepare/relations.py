"""The SQL one preparation runs per dataset (R-PREP-6..13): person maps, prepared rows, facts, samples.

The prepared rows are never materialised in full. Each dataset is read straight from its source:

* once, narrowly, for its *facts*: the hidden person column and the generalised quasi-identifiers,
  counted, which is all that the person map (built from the facts of every dataset, not from
  another scan of the sources), k-anonymity, the row and person counts and the ledger need;
* once by ``COPY ... TO parquet``, the one full pass, which writes the prepared columns and nothing
  else (pseudonym and per-person shift joined from the map, dates, bands and codes computed inline);
* once, filtered to a sample of persons (the map too), for the synthetic twin.

Each read evaluates the same deterministic SQL (the pseudonym and a per-person shift come from the
person map, a project offset is a bound parameter, generalisations and measure bounds are pure
functions), so all three see the same prepared rows.

The hidden person column holds the *source* person key. It identifies persons exactly (two persons
never share it, unlike a truncated pseudonym), it lives only in temporary tables of the in-memory
engine, and it is never in the SELECT list of anything written out: see :func:`output_sql`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from enclave import ledger
from enclave.deid.dates import person_shift_sql
from enclave.deid.plan import JITTER_KEY_PARAM, OFFSET_KEY_PARAM, PSEUDONYM_KEY_PARAM, DatasetPlan
from enclave.deid.pseudonym import pseudonym_sql
from enclave.deid.sql import quote_ident, quote_literal
from enclave.errors import BadInput

PERSON_COLUMN = "__enclave_person"  # hidden working column (the source key); never written out
SOURCE_COLUMN = "__enclave_source"  # the source key in the person map
PSEUDONYM_COLUMN = "__enclave_pseudonym"  # the pseudonym in the person map
OFFSET_COLUMN = "__enclave_offset"  # the person's whole date shift in the person map (when per person)
FACTS_TABLE = "_facts"
SAMPLE_TABLE = "_twin_sample"
ROWS_COLUMN = "__enclave_rows"  # in the facts table: how many prepared rows each fact stands for
# The prepared Parquet: zstd at its fastest level costs about the same CPU as the default snappy and
# makes the file about 40% smaller (less to hash, to upload and to read back); DuckDB's default row
# groups (122,880 rows) wrote faster than larger ones (see bench/prepare.py --parquet-settings).
PREPARED_PARQUET = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"


def used_params(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Only the parameters the SQL names (DuckDB refuses extra ones)."""
    return {name: value for name, value in params.items() if re.search(rf"\${name}\b", sql)}


def person_maps(
    con: duckdb.DuckDBPyConnection,
    sources: Mapping[str, tuple[str, str]],
    key_types: Mapping[str, str],
    params: Mapping[str, Any],
    *,
    per_person_offset: bool,
    date_jitter: bool = False,
) -> dict[str, str]:
    """One temp table per person-key type: every distinct source person of the project, with their
    pseudonym, ledger subject and, with ``per_person_offset`` and/or ``date_jitter``, the whole
    shift of their dates (offset plus jitter). One HMAC of each kind per person, not per row, and
    the same values for the same person in every dataset.

    ``sources`` maps each dataset to (person key column, relation): the source itself, or its facts
    table (:func:`facts_table`, person column ``PERSON_COLUMN``), which holds the same persons in
    far fewer rows than a dataset with many rows per person. The result maps each dataset to the
    table of its key type.
    """
    by_type: dict[str, list[str]] = {}
    for name, (person_key, relation) in sources.items():
        column = quote_ident(person_key)
        by_type.setdefault(key_types[name], []).append(
            f"SELECT DISTINCT {column} AS s FROM {relation} WHERE {column} IS NOT NULL"
        )
    shift = person_shift_sql(
        "s",
        per_person_offset=per_person_offset,
        jitter=date_jitter,
        offset_key=OFFSET_KEY_PARAM,
        jitter_key=JITTER_KEY_PARAM,
    )
    offset = f", {shift} AS {quote_ident(OFFSET_COLUMN)}" if per_person_offset or date_jitter else ""
    tables: dict[str, str] = {}
    for index, (key_type, selects) in enumerate(sorted(by_type.items())):
        table = quote_ident(f"_persons_{index}")
        sql = (
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT s AS {quote_ident(SOURCE_COLUMN)}, "
            f"{pseudonym_sql('s', PSEUDONYM_KEY_PARAM)} AS {quote_ident(PSEUDONYM_COLUMN)}, "
            f"{ledger.subject_sql('s')} AS subject{offset} "
            f"FROM ({' UNION '.join(selects)})"
        )
        con.execute(sql, used_params(sql, params))
        for name in sources:
            if key_types[name] == key_type:
                tables[name] = table
    return tables


def _joined(plan: DatasetPlan, relation: str, persons: str, every: int = 1) -> str:
    """The source rows with their pseudonym (and per-person shift) looked up in the person map: one
    join, no HMAC per row. With ``every`` > 1, only the rows (and map entries) of the persons whose
    key hashes to 0 modulo ``every``: both sides are filtered, so the join builds on the sample."""
    key, source_key = quote_ident(plan.person_key), quote_ident(SOURCE_COLUMN)
    looked_up = f"_map.* EXCLUDE ({source_key}, subject)"  # pseudonym (and shift)
    source, person_map = relation, persons
    if every > 1:
        source = f"(SELECT * FROM {relation} WHERE hash({key}) % {int(every)} = 0)"
        person_map = f"(SELECT * FROM {persons} WHERE hash({source_key}) % {int(every)} = 0)"
    return (
        f"(SELECT _src.*, {looked_up} FROM {source} AS _src "
        f"LEFT JOIN {person_map} AS _map ON _src.{key} = _map.{source_key})"
    )


def _select_list(plan: DatasetPlan) -> list[str]:
    return [
        f"{quote_ident(PSEUDONYM_COLUMN)} AS {quote_ident(plan.person_key)}"
        if plan.transforms.get(column) == "pseudonym"
        else expression
        for column, expression in zip(plan.columns, plan.select_list, strict=True)
    ]


def output_sql(plan: DatasetPlan, relation: str, persons: str) -> str:
    """The prepared rows exactly as they are written out: the plan's columns and no other."""
    return f"SELECT {', '.join(_select_list(plan))} FROM {_joined(plan, relation, persons)}"


def _hidden_person(plan: DatasetPlan) -> str:
    return f"{quote_ident(plan.person_key)} AS {quote_ident(PERSON_COLUMN)}"


def run_transform(
    con: duckdb.DuckDBPyConnection, plan: DatasetPlan, sql: str, params: Mapping[str, Any]
) -> duckdb.DuckDBPyConnection:
    """Run SQL that evaluates the plan's expressions over the source; a failure names the dataset only."""
    try:
        return con.execute(sql, used_params(sql, params))
    except duckdb.Error as error:
        # The engine's message may quote raw values; name the dataset and the kind of failure only.
        raise BadInput(
            "source_invalid",
            f"{plan.name}: the source could not be transformed ({type(error).__name__}); check that "
            "date columns hold dates and generalised columns hold the expected values",
            f"{plan.name}：无法转换源数据（{type(error).__name__}）；请检查日期列是否为日期、泛化列的取值是否正确",
        ) from None


def write_prepared(
    con: duckdb.DuckDBPyConnection,
    plan: DatasetPlan,
    relation: str,
    persons: str,
    target: str,
    params: Mapping[str, Any],
) -> None:
    """Write the prepared rows straight from the source to Parquet at ``target``."""
    sql = f"COPY ({output_sql(plan, relation, persons)}) TO {quote_literal(target)} ({PREPARED_PARQUET})"
    run_transform(con, plan, sql, params)


def facts_table(
    con: duckdb.DuckDBPyConnection,
    plan: DatasetPlan,
    relation: str,
    params: Mapping[str, Any],
    table_name: str = FACTS_TABLE,
) -> str:
    """A temp table (``table_name``) of the hidden person column and the generalised
    quasi-identifiers, with ``ROWS_COLUMN`` counting the prepared rows of each combination (rows
    without a person key included). It is all that k-anonymity, the counts, the ledger and the person
    map (see :func:`person_maps`) need, and it is read straight from the source: quasi-identifiers
    never involve the pseudonym or the person's shift (only ``person_key`` and ``date`` columns do),
    so no join is needed."""
    expressions = dict(zip(plan.columns, plan.select_list, strict=True))
    quasi = [expressions[q] for q in plan.quasi_ids]
    looked_up = (quote_ident(PSEUDONYM_COLUMN), quote_ident(OFFSET_COLUMN))
    if any(column in expression for expression in quasi for column in looked_up):
        raise ValueError("a quasi-identifier cannot depend on the person map")  # roles rule this out
    columns = [_hidden_person(plan), *quasi]
    table = quote_ident(table_name)
    sql = (
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {', '.join(columns)}, "
        f"count(*) AS {quote_ident(ROWS_COLUMN)} FROM {relation} GROUP BY ALL"
    )
    run_transform(con, plan, sql, params)
    return table


def twin_sample(
    con: duckdb.DuckDBPyConnection,
    plan: DatasetPlan,
    relation: str,
    persons: str,
    params: Mapping[str, Any],
    *,
    every: int,
) -> str:
    """A temp table of the prepared rows, plus the hidden person column, of about one person in
    ``every`` (all rows of each); every row when ``every`` is 1. The sample is chosen in the source,
    before the join.

    Counting persons in a sample can only under-count, so the twin's k rule stays safe. Which persons
    are sampled reveals nothing in the twin: it holds only values at least ``k`` sampled persons share.
    """
    select = ", ".join([*_select_list(plan), _hidden_person(plan)])
    table = quote_ident(SAMPLE_TABLE)
    source = _joined(plan, relation, persons, every)
    sql = f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {select} FROM {source}"
    run_transform(con, plan, sql, params)
    return table


def subjects_sql(persons: str, facts: str, *, every_person: bool = False) -> str:
    """The ledger subjects of the persons in ``facts`` (for ``ledger.stage_subjects``). With
    ``every_person`` (``facts`` holds as many persons as the map, which was built from it and so
    holds them all) the whole map, without the lookup."""
    if every_person:
        return f"SELECT m.subject FROM {persons} AS m"
    return (
        f"SELECT m.subject FROM {persons} AS m WHERE m.{quote_ident(SOURCE_COLUMN)} IN "
        f"(SELECT {quote_ident(PERSON_COLUMN)} FROM {facts})"
    )


@dataclass(frozen=True)
class PersonCounts:
    """Rows and persons of one prepared dataset, from its facts."""

    rows: int
    persons: int  # distinct non-NULL person keys
    one_person_per_row: bool  # no NULL key and no person on two rows


def person_counts(con: duckdb.DuckDBPyConnection, facts: str) -> PersonCounts:
    person, rows = quote_ident(PERSON_COLUMN), quote_ident(ROWS_COLUMN)
    total, persons, nulls = con.execute(
        f"SELECT coalesce(sum({rows}), 0), count(DISTINCT {person}), "
        f"coalesce(sum({rows}) FILTER (WHERE {person} IS NULL), 0) FROM {facts}"
    ).fetchone()  # type: ignore[misc]
    return PersonCounts(int(total), int(persons), nulls == 0 and persons == total)


def map_size(con: duckdb.DuckDBPyConnection, persons: str) -> int:
    """How many persons the map holds."""
    (count,) = con.execute(f"SELECT count(*) FROM {persons}").fetchone()  # type: ignore[misc]
    return int(count)


def pseudonyms_distinct(con: duckdb.DuckDBPyConnection, persons: str) -> bool:
    """True when no two persons of the map share a pseudonym (64 bits: a collision is very unlikely,
    but a guard flag that promises one person per row must hold for the pseudonyms analysts see)."""
    pseudonym = quote_ident(PSEUDONYM_COLUMN)
    (distinct,) = con.execute(f"SELECT count(*) = count(DISTINCT {pseudonym}) FROM {persons}").fetchone()  # type: ignore[misc]
    return bool(distinct)
