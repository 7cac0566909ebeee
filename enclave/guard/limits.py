"""``QueryLimits``: what one query may use (R-QRY-4), passed by its caller into ``enclave.guard.run``.

One value for the four limits: rows in a result (a larger one is refused ``result_too_large``), the
DuckDB memory limit and threads (those of the views database's instance, set by its first open in
the process, ``enclave.guard.lockdown.open_locked``) and the time limit of this query alone.

>>> QueryLimits().rows
10000
>>> QueryLimits(memory="512MiB", timeout_s=5).timeout_s
5
>>> try:
...     QueryLimits(rows=0, timeout_s=0)
... except BadInput as error:
...     print(error.code, error.message)
query_limits_invalid Invalid query limits: rows must be positive; timeout_s must be positive
>>> parse_bytes("2GB"), parse_bytes("512 MiB")
(2000000000, 536870912)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from enclave.errors import BadInput

_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_UNITS |= {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


@dataclass(frozen=True)
class QueryLimits:
    """Rows in a result, DuckDB memory (e.g. ``2GB``) and threads, seconds before the query is stopped."""

    rows: int = 10_000
    memory: str = "2GB"
    threads: int = 2
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        problems = [
            (f"{name} must be positive", f"{name} 必须为正数")
            for name, value in (("rows", self.rows), ("threads", self.threads), ("timeout_s", self.timeout_s))
            if not value > 0
        ]
        if problems:
            raise BadInput(
                "query_limits_invalid",
                "Invalid query limits: " + "; ".join(en for en, _ in problems),
                "查询限制无效：" + "；".join(zh for _, zh in problems),
            )
        parse_bytes(self.memory)


def parse_bytes(size: str) -> int:
    """``"2GB"``, ``"512 MiB"``, ``"1000000"`` as bytes (DuckDB's units: KB = 1000, KiB = 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", size)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise BadInput(
            "memory_limit_invalid",
            f"Cannot read the memory limit {size!r}; write it like 2GB or 512MiB",
            f"无法解析内存上限 {size!r}；请写作 2GB 或 512MiB 的形式",
        )
    return int(float(match.group(1)) * _UNITS[unit])


DEFAULT_LIMITS = QueryLimits()  # the CLI's (``enclave query``), and the guard's when not told
