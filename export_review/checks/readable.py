"""A file whose tables or text cannot be read cannot be checked: that fails (fail closed)."""

from __future__ import annotations

from export_review.checks.content import StoredFile
from export_review.checks.finding import Finding, Severity
from export_review.checks.policy import CheckPolicy


def readable(stored: StoredFile, policy: CheckPolicy) -> list[Finding]:
    return [
        Finding(
            "readable",
            "file_unreadable",
            Severity.FAIL,
            f"{stored.name} could not be read, so it was not checked: {error}",
            f"{stored.name} 无法读取，因此未能检查：{error}",
        )
        for error in stored.content.errors
    ]
