"""Cells counting fewer than k persons (R-QRY-7, R-EXP-4 b, T1): each one is a finding."""

from __future__ import annotations

from export_review.checks.cells import cell_location, count_columns, parse_number
from export_review.checks.content import StoredFile
from export_review.checks.finding import Finding, Severity
from export_review.checks.policy import CheckPolicy

MAX_CELL_FINDINGS = 100


def small_cells(stored: StoredFile, policy: CheckPolicy) -> list[Finding]:
    findings: list[Finding] = []
    for table in stored.content.tables:
        for column in count_columns(table.frame):
            for row, cell in enumerate(table.frame[column]):
                value = parse_number(str(cell))
                if value is None or not 0 < value < policy.k:
                    continue
                if len(findings) >= MAX_CELL_FINDINGS:
                    return [*findings, _truncated(stored.name)]
                findings.append(
                    Finding(
                        "small_cells",
                        "small_cell",
                        Severity.FAIL,
                        f"{table.label} row {row + 1}, {column}: a count of {value:g} is below k={policy.k}",
                        f"{table.label} 第 {row + 1} 行 {column}：计数 {value:g} 小于 k={policy.k}",
                        location=cell_location(table.label, row, column),
                        details={"value": value, "k": policy.k},
                    )
                )
    return findings


def _truncated(name: str) -> Finding:
    return Finding(
        "small_cells",
        "small_cells_truncated",
        Severity.FAIL,
        f"{name}: more than {MAX_CELL_FINDINGS} small cells; only the first are listed",
        f"{name}：小单元格超过 {MAX_CELL_FINDINGS} 个，仅列出前面的部分",
    )
