"""Decide which cells of the checked aggregation are released, then run the post layer over them.

Per group: at least k persons, or the row is suppressed. Per value (docs/guard.md, rules 3–5):

* its population (the persons who contribute to it) has at least k persons, and the rest of the
  group is 0 or at least k persons;
* a sum, mean, spread or bivariate statistic of a measure is not dominated (nk and p% rules on
  each person's total, centred on the group mean for moments);
* a quantile has at least k persons at or below it and at or above it;
* its population and the group's differ from every population already released (in this query,
  or earlier in the project) by 0 or at least k persons: the differencing ledger.

A value that fails becomes NULL; a group whose own population fails is suppressed. Only then does
the post layer (the analyst's arithmetic, windows, HAVING, ORDER BY, LIMIT) run, on an empty
in-memory DuckDB that holds the released cells and nothing else.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from enclave.errors import BadInput
from enclave.guard.compile import CELLS, COUNT_KINDS, Compiled, P
from enclave.guard.ledger import TABLES, Ledger, Sketch, cells_per_table
from enclave.guard.policy import GuardPolicy


@dataclass
class Released:
    table: pa.Table
    suppressed_groups: int
    suppressed_values: int
    ledger_suppressed: int
    rounded: bool

    def notices(self, policy: GuardPolicy) -> list[str]:
        notices = []
        if self.suppressed_groups:
            notices.append(
                f"{self.suppressed_groups} group(s) resting on fewer than {policy.k} persons, or differing "
                f"by fewer than {policy.k} persons from released results, were suppressed "
                f"/ 已抑制 {self.suppressed_groups} 个人数少于 {policy.k} "
                f"或与已发布结果相差少于 {policy.k} 人的分组"
            )
        if self.suppressed_values:
            notices.append(
                f"{self.suppressed_values} value(s) whose contributors were fewer than {policy.k} persons, "
                "dominated by a few persons, or too close to an extreme were returned as NULL "
                f"/ 已将 {self.suppressed_values} 个贡献人数不足、由少数人主导或过于接近极值的数值置为空"
            )
        if self.ledger_suppressed:
            notices.append(
                f"{self.ledger_suppressed} value(s) or group(s) differed from earlier released results by "
                f"fewer than {policy.k} persons and were suppressed (differencing ledger) "
                f"/ 有 {self.ledger_suppressed} 个数值或分组与已发布结果相差少于 {policy.k} 人，"
                "已被抑制（差分台账）"
            )
        if self.rounded:
            notices.append(
                f"counts rounded to multiples of {policy.round_to} / 计数已取整到 {policy.round_to} 的倍数"
            )
        return notices


def dominated(total: float | None, top: list[float] | None, policy: GuardPolicy) -> bool:
    """nk rule (the n largest exceed k of the total) or p% rule (the rest below p of the largest)."""
    if not total or total <= 0 or not top:
        return False
    values = [abs(float(v)) for v in top if v is not None]
    if not values:
        return False
    first = values[0]
    second = values[1] if len(values) > 1 else 0.0
    top_n = sum(values[: policy.dominance_n])
    return top_n > policy.dominance_k * total or (total - first - second) < policy.dominance_p * first


def release(table: pa.Table, compiled: Compiled, policy: GuardPolicy, ledger: Ledger, sql: str) -> Released:
    columns = table.to_pydict()
    rows = table.num_rows
    k = policy.k
    values: dict[int, list[Any]] = {c.index: list(columns[f"{P}a{c.index}"]) for c in compiled.checks}
    for check in compiled.checks:
        if check.distinct_values:
            values[check.index] = [v if v is not None else 0 for v in columns[f"{P}dv{check.index}"]]
    keep = [False] * rows
    suppressed_groups = suppressed_values = 0
    wanted: list[tuple[int, int]] = []  # (row, population) to ask the ledger about
    for r in range(rows):
        n = int(columns[f"{P}n"][r] or 0)
        if n < k:
            suppressed_groups += 1
            continue
        keep[r] = True
        asked = {0}
        wanted.append((r, 0))
        for check in compiled.checks:
            if not _value_ok(check, columns, r, n, policy):
                values[check.index][r] = None
                suppressed_values += 1
            elif check.population not in asked:  # several values can share one population
                asked.add(check.population)
                wanted.append((r, check.population))
    cells = TABLES * cells_per_table(k)
    sketches = [
        _sketch(columns, r, population, n_of(columns, r, population), cells) for r, population in wanted
    ]
    verdicts = ledger.admit(sketches, k, label=sql[:200]) if sketches else []
    refused = {(r, population) for (r, population), ok in zip(wanted, verdicts, strict=True) if not ok}
    ledger_suppressed = 0
    for r, population in refused:
        if population == 0:
            if keep[r]:
                keep[r] = False
                suppressed_groups += 1
                ledger_suppressed += 1
            continue
        for check in compiled.checks:
            if check.population == population and values[check.index][r] is not None:
                values[check.index][r] = None
                suppressed_values += 1
                ledger_suppressed += 1
    rounded = bool(policy.round_to and policy.round_to > 1)
    if rounded:
        for check in compiled.checks:
            if check.kind in COUNT_KINDS:
                values[check.index] = [_round_count(v, policy.round_to) for v in values[check.index]]
    kept = [r for r in range(rows) if keep[r]]
    out: dict[str, pa.Array] = {}
    for i in range(compiled.keys):
        name = f"{P}g{i}"
        out[name] = pa.array([columns[name][r] for r in kept], type=table.schema.field(name).type)
    for check in compiled.checks:
        name = f"{P}a{check.index}"
        kind = pa.int64() if check.distinct_values else table.schema.field(name).type
        out[name] = pa.array([values[check.index][r] for r in kept], type=kind)
    released = pa.table(out) if out else pa.table({f"{P}none": pa.array([None] * len(kept), pa.null())})
    return Released(released, suppressed_groups, suppressed_values, ledger_suppressed, rounded)


def n_of(columns: dict[str, list], r: int, population: int) -> int:
    if population == 0:
        return int(columns[f"{P}n"][r] or 0)
    return int(columns[f"{P}in{population}"][r] or 0)


def _value_ok(check, columns, r: int, n: int, policy: GuardPolicy) -> bool:
    k = policy.k
    inside = n_of(columns, r, check.population)
    outside = n - inside
    strict = check.strict or (check.binary is not None and columns[f"{P}z{check.binary}"][r] is True)
    if inside < k or (outside < k and (strict or outside != 0)):
        return False
    for d in check.dominance:
        if dominated(columns[f"{P}t{d}"][r], columns[f"{P}top{d}"][r], policy):
            return False
    if check.quantile is not None:
        below = columns[f"{P}below{check.quantile}"][r] or 0
        above = columns[f"{P}above{check.quantile}"][r] or 0
        if below < k or above < k:
            return False
    if check.distinct_values and not columns[f"{P}dv{check.index}"][r]:
        return False  # no value is held by k persons: nothing to count
    value = columns[f"{P}a{check.index}"][r]
    return not (isinstance(value, float) and not math.isfinite(value))


def _sketch(columns: dict[str, list], r: int, population: int, size: int, cells: int) -> Sketch:
    counts = np.zeros(cells, np.int64)
    hashes = np.zeros(cells, np.uint64)
    checks = np.zeros(cells, np.uint64)
    for pop, cell, count, xor, check in columns[f"{P}sketch"][r] or []:
        if pop == population:
            counts[cell] = count
            hashes[cell] = np.uint64(xor)
            checks[cell] = np.uint64(check)
    return Sketch(size, counts, hashes, checks)


def _round_count(value: Any, base: int) -> Any:
    if value is None:
        return None
    return int(base * math.floor(float(value) / base + 0.5))


_POST = threading.local()


def _post_connection() -> duckdb.DuckDBPyConnection:
    """This thread's empty in-memory DuckDB, locked down once: no files, no network, no settings."""
    con = getattr(_POST, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        _POST.con = con
    return con


def run_post(table: pa.Table, compiled: Compiled, max_rows: int) -> list[list[Any]]:
    """The analyst's post layer over the released cells (one row past ``max_rows`` at most), on a
    connection that holds nothing else.

    The post layer is a SELECT over ``__enclave_cells`` only (the guard compiled it), so the
    connection keeps no state between queries; the released table is registered for one query.
    """
    con = _post_connection()
    try:
        con.register(CELLS, table)
        cursor = con.execute(compiled.post_sql)
        return [list(row) for row in cursor.fetchmany(max_rows + 1)]
    except duckdb.Error as exc:
        raise BadInput(
            "query_invalid",
            f"The query's outer part could not run on the released cells ({type(exc).__name__}).",
            f"查询的外层部分无法在已发布的单元格上运行（{type(exc).__name__}）。",
        ) from None
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister(CELLS)
