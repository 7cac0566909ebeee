"""Small counts that are not rounded to the deployment's base (ARCHITECTURE §3.4): a warning,
since unrounded counts make differencing between outputs easier."""

from __future__ import annotations

from export_review.checks.cells import count_columns, parse_number
from export_review.checks.content import StoredFile
from export_review.checks.finding import Finding, Severity
from export_review.checks.policy import CheckPolicy


def unrounded(stored: StoredFile, policy: CheckPolicy) -> list[Finding]:
    base, ceiling = policy.limits.rounding_base, policy.limits.small_count_ceiling
    if base <= 1:
        return []
    findings = []
    for table in stored.content.tables:
        cells = [
            (row + 1, column)
            for column in count_columns(table.frame)
            for row, cell in enumerate(table.frame[column])
            if (value := parse_number(str(cell))) is not None
            and policy.k <= value < ceiling
            and value % base != 0
        ]
        if cells:
            findings.append(
                Finding(
                    "unrounded",
                    "unrounded_small_counts",
                    Severity.WARN,
                    f"{table.label}: {len(cells)} count(s) below {ceiling} "
                    f"not rounded to a multiple of {base}",
                    f"{table.label}：{len(cells)} 个小于 {ceiling} 的计数未取整到 {base} 的倍数",
                    location={"table": table.label},
                    details={"cells": [{"row": r, "column": c} for r, c in cells[:50]]},
                )
            )
    return findings
