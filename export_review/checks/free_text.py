"""Free text (R-EXP-4 c, R-APP-22): columns of sentences, and documents, go before a human."""

from __future__ import annotations

import re

import pandas as pd

from export_review.checks.cells import is_numeric
from export_review.checks.content import StoredFile
from export_review.checks.finding import Finding, Severity
from export_review.checks.policy import CheckPolicy

CJK = re.compile(r"[\u4e00-\u9fff]")
CJK_SENTENCE = 15


def _is_sentence(value: str, min_words: int) -> bool:
    return len(value.split()) >= min_words or len(CJK.findall(value)) >= CJK_SENTENCE


def _text_share(column: pd.Series, min_words: int) -> float:
    values = [str(v) for v in column if str(v).strip()]
    if not values:
        return 0.0
    return sum(_is_sentence(v, min_words) for v in values) / len(values)


def free_text(stored: StoredFile, policy: CheckPolicy) -> list[Finding]:
    limits = policy.limits
    findings = [
        Finding(
            "free_text",
            "free_text_column",
            Severity.FAIL,
            f"{table.label}: column {column!r} holds free text",
            f"{table.label}：列 {column!r} 含有自由文本",
            location={"table": table.label, "column": column},
        )
        for table in stored.content.tables
        for column in table.frame.columns
        if not is_numeric(table.frame[column])
        and _text_share(table.frame[column], limits.free_text_min_words) >= limits.free_text_share
    ]
    if stored.kind in ("txt", "md"):
        findings.append(
            Finding(
                "free_text",
                "free_text_document",
                Severity.REVIEW,
                f"{stored.name} is a text document: read it before approving",
                f"{stored.name} 是文本文档：批准前请阅读",
            )
        )
    return findings
