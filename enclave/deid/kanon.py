"""k-anonymity over the generalised quasi-identifiers (R-PREP-13, GB/T 39725 §10.2 e).

An equivalence class is a set of rows sharing every quasi-identifier value; its size is the number
of distinct *persons* in it (rows without a person key each count as one person, to be safe), so
a person with many visits cannot make a class look bigger than it is. With no quasi-identifier the
whole relation is one class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from enclave.deid.sql import quote_ident
from enclave.specs import MIN_K

SMALLEST_CLASSES_SHOWN = 5


@dataclass(frozen=True)
class KReport:
    """The result of one k-anonymity check."""

    k: int
    quasi_ids: list[str]
    classes: int
    min_class_size: int
    classes_below_k: int
    persons_below_k: int
    smallest_classes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.classes_below_k == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "quasi_ids": self.quasi_ids,
            "classes": self.classes,
            "min_class_size": self.min_class_size,
            "classes_below_k": self.classes_below_k,
            "persons_below_k": self.persons_below_k,
            "smallest_classes": self.smallest_classes,
            "ok": self.ok,
        }


def _json_safe(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def k_anonymity(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    quasi_ids: Sequence[str],
    k: int = MIN_K,
    *,
    person_key: str | None = None,
    rows: str | None = None,
) -> KReport:
    """Check that every equivalence class of ``relation`` over ``quasi_ids`` has at least ``k`` persons.

    ``relation`` is SQL text for a table, view or table function (``read_parquet('...')``). With
    ``rows``, each row of ``relation`` stands for that column's number of rows (a pre-aggregated
    relation); it matters only for rows without a person key, which each count as one person.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    keys = [quote_ident(q) for q in quasi_ids]
    count = "count(*)" if rows is None else f"sum({quote_ident(rows)})"
    if person_key is None:
        size = f"coalesce({count}, 0)"
    else:
        pk = quote_ident(person_key)
        size = f"(count(DISTINCT {pk}) + coalesce({count} FILTER (WHERE {pk} IS NULL), 0))"
    group = f"GROUP BY {', '.join(keys)}" if keys else ""
    select_keys = ", ".join(keys) + ", " if keys else ""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _k_classes AS "
        f"SELECT {select_keys}{size} AS _size FROM {relation} {group}"
    )
    try:
        classes, min_size, below, persons_below = con.execute(
            "SELECT count(*), coalesce(min(_size), 0), count(*) FILTER (WHERE _size < $k),"
            " coalesce(sum(_size) FILTER (WHERE _size < $k), 0) FROM _k_classes",
            {"k": k},
        ).fetchone()  # type: ignore[misc]
        order = ", ".join(["_size", *keys])
        rows = con.execute(
            f"SELECT {select_keys}_size FROM _k_classes "
            f"ORDER BY {order} NULLS FIRST LIMIT {SMALLEST_CLASSES_SHOWN}"
        ).fetchall()
    finally:
        con.execute("DROP TABLE IF EXISTS _k_classes")
    smallest = [
        {
            "values": {q: _json_safe(v) for q, v in zip(quasi_ids, row[:-1], strict=True)},
            "persons": int(row[-1]),
        }
        for row in rows
    ]
    return KReport(
        k=k,
        quasi_ids=list(quasi_ids),
        classes=int(classes),
        min_class_size=int(min_size),
        classes_below_k=int(below),
        persons_below_k=int(persons_below),
        smallest_classes=smallest,
    )
