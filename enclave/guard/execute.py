"""``run``: check, bound the fan-out, execute the compiled SQL on a locked-down connection, release.

DuckDB's own error text never reaches the analyst: it can quote data values ("could not convert
string 'X' ..."). Every failure becomes one of our codes. Which values are released is decided by
``enclave.guard.release``; the post layer then runs over released cells only.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from enclave.errors import BadInput, Refused
from enclave.guard.check import Verdict, check
from enclave.guard.ledger import Ledger, MemoryLedger
from enclave.guard.limits import DEFAULT_LIMITS, QueryLimits
from enclave.guard.lockdown import run_with_timeout
from enclave.guard.policy import GuardPolicy
from enclave.guard.release import release, run_post
from enclave.guard.violations import violation


@dataclass
class QueryResult:
    """Released groups, and how many were held back (R-QRY-7)."""

    columns: list[str]
    rows: list[list[Any]]
    suppressed_groups: int
    notices: list[str] = field(default_factory=list)
    suppressed_values: int = 0  # values returned as NULL by their own rules or the ledger
    ledger_suppressed: int = 0  # values or groups held back by the differencing ledger (an alert)

    def to_dict(self) -> dict[str, Any]:
        """Exactly the ``enclave query`` contract (ARCHITECTURE §9), with JSON-safe values."""
        return {
            "columns": list(self.columns),
            "rows": [[json_safe(v) for v in row] for row in self.rows],
            "suppressed_groups": self.suppressed_groups,
            "notices": list(self.notices),
        }


def run(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    policy: GuardPolicy,
    *,
    limits: QueryLimits = DEFAULT_LIMITS,
    ledger: Ledger | None = None,
    on_estimate: Callable[[int | None], None] | None = None,
) -> QueryResult:
    """Check ``sql``, run what the guard allows, and release only values that pass every rule.

    ``limits`` are the caller's for this query: a result of more than ``limits.rows`` rows is
    refused (``result_too_large``), and DuckDB is interrupted after ``limits.timeout_s``
    (``query_timeout``); memory and threads are the connection's (``open_locked``).
    ``ledger`` is the project's differencing ledger; without one, a fresh in-memory ledger still
    stops differencing between the values of this one query. ``on_estimate`` receives the plan's
    largest estimated cardinality (None in advisory mode, which makes no estimate) after every
    check passed and before anything runs; the gateway's admission control may wait in it, or raise.
    """
    verdict = check(sql, policy, max_rows=limits.rows)
    if not verdict.allowed:
        raise _rejected(verdict.reasons)
    timeout = limits.timeout_s
    if verdict.advisory:
        if on_estimate is not None:
            on_estimate(None)
        return _run_advisory(con, verdict, limits)
    compiled = verdict.compiled
    estimate = _estimated_rows(con, compiled.sql, timeout)
    if estimate > policy.max_estimated_rows:
        raise _rejected(
            [violation("QRY_FANOUT", None, detail=f"about {estimate:,} intermediate rows").to_reason()]
        )
    if on_estimate is not None:
        on_estimate(estimate)
    table = _guarded(con, timeout, lambda: con.execute(compiled.sql).fetch_arrow_table())
    if table.num_rows > limits.rows:
        raise _too_large(limits.rows)
    released = release(table, compiled, policy, ledger if ledger is not None else MemoryLedger(), sql)
    rows = run_post(released.table, compiled, limits.rows)
    if len(rows) > limits.rows:
        raise _too_large(limits.rows)
    return QueryResult(
        columns=list(compiled.columns),
        rows=rows,
        suppressed_groups=released.suppressed_groups,
        notices=released.notices(policy),
        suppressed_values=released.suppressed_values,
        ledger_suppressed=released.ledger_suppressed,
    )


def _rejected(reasons) -> Refused:
    return Refused(
        "query_rejected",
        "The query guard refused this query: " + "; ".join(r.message for r in reasons),
        "查询守卫拒绝了此查询：" + "；".join(r.message_zh for r in reasons),
        reasons=reasons,
    )


def _estimated_rows(con: duckdb.DuckDBPyConnection, sql: str, timeout: float) -> int:
    """The largest estimated cardinality in DuckDB's plan (rule 6: bounded fan-out)."""
    rows = _guarded(con, timeout, lambda: con.execute("EXPLAIN (FORMAT JSON) " + sql).fetchall())
    largest = 0
    for _, plan in rows:
        for match in _CARDINALITY.finditer(plan):
            largest = max(largest, int(match.group(1)))
    return largest


_CARDINALITY = re.compile(r'"Estimated Cardinality":\s*"(\d+)"')


def round_count(value: Any, base: int) -> Any:
    """Round a count to the nearest multiple of ``base`` (halves round up)."""
    if value is None:
        return None
    return int(base * math.floor(float(value) / base + 0.5))


def _run_advisory(con, verdict: Verdict, limits: QueryLimits) -> QueryResult:
    def work() -> tuple[list[str], list[tuple]]:
        cursor = con.execute(verdict.sql)
        names = [d[0] for d in cursor.description or []]
        return names, cursor.fetchmany(limits.rows + 1)

    names, rows = _guarded(con, limits.timeout_s, work)
    if len(rows) > limits.rows:
        raise _too_large(limits.rows)
    notices = [
        "advisory mode (rows access): the guard did not rewrite this query / 行级访问模式：守卫未改写此查询"
    ]
    notices += [f"{r.code}: {r.message}" for r in verdict.reasons]
    return QueryResult(columns=names, rows=[list(r) for r in rows], suppressed_groups=0, notices=notices)


def _guarded(con, timeout, work):
    try:
        return run_with_timeout(con, timeout, work)
    except TimeoutError:
        raise BadInput(
            "query_timeout",
            f"The query took longer than {timeout:g} s and was stopped.",
            f"查询超过 {timeout:g} 秒，已被终止。",
        ) from None
    except duckdb.InterruptException:
        raise BadInput(
            "query_cancelled", "The query was cancelled.", "查询已被取消。", details={"cancelled": True}
        ) from None
    except duckdb.OutOfMemoryException:
        raise BadInput(
            "query_resources",
            "The query needed more memory than allowed; aggregate earlier or filter more.",
            "查询所需内存超过上限；请更早聚合或增加筛选条件。",
        ) from None
    except (duckdb.BinderException, duckdb.CatalogException, duckdb.ParserException):
        raise BadInput(
            "query_invalid",
            "DuckDB could not bind the query: check column types, GROUP BY keys and function arguments.",
            "DuckDB 无法绑定该查询：请检查列类型、GROUP BY 键和函数参数。",
        ) from None
    except duckdb.Error as exc:
        raise BadInput(
            "query_failed",
            f"The query failed in the database ({type(exc).__name__}).",
            f"查询在数据库中执行失败（{type(exc).__name__}）。",
        ) from None


def _too_large(max_rows: int) -> Refused:
    """The one refusal of a result over the row limit: ``Refused`` (exit 3, HTTP 413)."""
    return Refused(
        "result_too_large",
        f"The result has more than {max_rows} rows; aggregate further or add LIMIT.",
        f"结果超过 {max_rows} 行；请进一步聚合或添加 LIMIT。",
    )


def json_safe(value: Any) -> Any:
    """A value the JSON encoder accepts, without losing meaning."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
