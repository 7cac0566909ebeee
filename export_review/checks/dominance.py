"""Dominance of magnitude cells (R-EXP-4 b; ARCHITECTURE §3.5): the nk rule and the p% rule.

A published table rarely shows who contributed to a sum, so the check uses what it can see: a
sum or mean over ``n`` or fewer contributors is dominated by definition; where the table carries
the largest contributions (``max``/``top1``, ``top2``) beside the total, nk and p% are computed;
magnitudes with neither are flagged for a reviewer.
"""

from __future__ import annotations

from export_review.checks.cells import (
    TOP1_NAME,
    TOP2_NAME,
    cell_location,
    count_columns,
    magnitude_columns,
    parse_number,
)
from export_review.checks.content import StoredFile, Table
from export_review.checks.finding import Finding, Severity
from export_review.checks.policy import CheckPolicy


def dominance(stored: StoredFile, policy: CheckPolicy) -> list[Finding]:
    findings: list[Finding] = []
    for table in stored.content.tables:
        magnitudes = magnitude_columns(table.frame)
        if not magnitudes:
            continue
        counts = count_columns(table.frame)
        top1 = next((c for c in table.frame.columns if TOP1_NAME.match(c)), None)
        top2 = next((c for c in table.frame.columns if TOP2_NAME.match(c)), None)
        if counts:
            findings += _few_contributors(table, counts[0], magnitudes, policy)
        if top1:
            findings += _contributor_rules(table, magnitudes[0], top1, top2, policy)
        if not counts and not top1:
            findings.append(
                Finding(
                    "dominance",
                    "dominance_unchecked",
                    Severity.REVIEW,
                    f"{table.label}: {', '.join(magnitudes)} without counts or largest contributions; "
                    "check dominance by hand",
                    f"{table.label}：{'、'.join(magnitudes)} 没有计数或最大贡献值；请人工检查支配性",
                    location={"table": table.label},
                )
            )
    return findings


def _few_contributors(table: Table, count: str, magnitudes: list[str], policy: CheckPolicy) -> list[Finding]:
    n = policy.limits.nk_n
    out = []
    for row, cell in enumerate(table.frame[count]):
        value = parse_number(str(cell))
        if value is not None and 0 < value <= n:
            out.append(
                Finding(
                    "dominance",
                    "dominance_few_contributors",
                    Severity.FAIL,
                    f"{table.label} row {row + 1}: {', '.join(magnitudes)} over {value:g} contributor(s) "
                    f"is dominated by them (nk rule, n={n})",
                    f"{table.label} 第 {row + 1} 行：{'、'.join(magnitudes)} 只来自 {value:g} 个贡献者，"
                    f"被其支配（nk 规则，n={n}）",
                    location=cell_location(table.label, row, magnitudes[0]),
                )
            )
    return out


def _contributor_rules(
    table: Table, total_col: str, top1_col: str, top2_col: str | None, policy: CheckPolicy
) -> list[Finding]:
    limits = policy.limits
    out = []
    for row in range(len(table.frame)):
        total = parse_number(str(table.frame[total_col].iloc[row]))
        top1 = parse_number(str(table.frame[top1_col].iloc[row]))
        top2 = parse_number(str(table.frame[top2_col].iloc[row])) if top2_col else 0.0
        if total is None or top1 is None or top2 is None or total <= 0:
            continue
        top = top1 + (top2 if limits.nk_n >= 2 else 0.0)
        rules = []
        if top / total > limits.nk_k:
            rules.append(f"nk ({limits.nk_n},{limits.nk_k:.0%})")
        if top2_col and total - top1 - top2 < limits.p_percent * top1:
            rules.append(f"p% ({limits.p_percent:.0%})")
        if rules:
            out.append(
                Finding(
                    "dominance",
                    "dominance",
                    Severity.FAIL,
                    f"{table.label} row {row + 1}, {total_col}: dominated by its largest contributors "
                    f"({', '.join(rules)})",
                    f"{table.label} 第 {row + 1} 行 {total_col}：被最大贡献者支配（{'、'.join(rules)}）",
                    location=cell_location(table.label, row, total_col),
                    details={"rules": rules},
                )
            )
    return out
