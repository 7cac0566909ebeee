"""Row-level shape (R-EXP-4 a, T3): too many rows for a statistical result, a column that is
unique per row (an identifier), or about one row per person of the project."""

from __future__ import annotations

from export_review.checks.cells import is_numeric
from export_review.checks.content import StoredFile
from export_review.checks.finding import Finding, Severity
from export_review.checks.policy import CheckPolicy


def row_level(stored: StoredFile, policy: CheckPolicy) -> list[Finding]:
    limits = policy.limits
    findings: list[Finding] = []
    persons = len(policy.key_space) if policy.key_space else None
    for table in stored.content.tables:
        rows = len(table.frame)
        where = {"table": table.label}
        if rows > limits.max_result_rows:
            findings.append(
                Finding(
                    "row_level",
                    "too_many_rows",
                    Severity.FAIL,
                    f"{table.label}: {rows} rows is more than a statistical result "
                    f"(cap {limits.max_result_rows})",
                    f"{table.label}：{rows} 行，超出统计结果的行数上限 {limits.max_result_rows}",
                    location=where,
                    details={"rows": rows},
                )
            )
        if persons and rows >= limits.unique_key_min_rows and rows >= limits.person_rows_fraction * persons:
            findings.append(
                Finding(
                    "row_level",
                    "row_per_person",
                    Severity.FAIL,
                    f"{table.label}: {rows} rows for {persons} persons in the project looks like one row "
                    "per person",
                    f"{table.label}：项目共 {persons} 人，该表有 {rows} 行，看起来是每人一行",
                    location=where,
                    details={"rows": rows, "persons": persons},
                )
            )
        if rows >= limits.unique_key_min_rows:
            for column in table.frame.columns:
                values = table.frame[column].astype(str).str.strip()
                if values.ne("").all() and values.is_unique and not is_numeric(table.frame[column]):
                    findings.append(
                        Finding(
                            "row_level",
                            "unique_row_key",
                            Severity.FAIL,
                            f"{table.label}: column {column!r} differs on every one of {rows} rows, "
                            "like an identifier",
                            f"{table.label}：列 {column!r} 在全部 {rows} 行中各不相同，像是标识符",
                            location={"table": table.label, "column": column},
                        )
                    )
    for text in stored.content.texts:
        lines = text.text.count("\n") + 1
        if lines > limits.max_result_rows and stored.kind == "ipynb":
            findings.append(
                Finding(
                    "row_level",
                    "output_too_long",
                    Severity.FAIL,
                    f"{text.label}: {lines} lines of output is more than a statistical result",
                    f"{text.label}：输出 {lines} 行，超出统计结果的范围",
                    location={"text": text.label},
                )
            )
    return findings
