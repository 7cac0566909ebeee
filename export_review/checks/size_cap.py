"""No file above the deployment's size cap leaves (the whole request's cap is checked at submission)."""

from __future__ import annotations

from export_review.checks.content import StoredFile
from export_review.checks.finding import Finding, Severity
from export_review.checks.policy import CheckPolicy


def size_cap(stored: StoredFile, policy: CheckPolicy) -> list[Finding]:
    cap = policy.limits.max_file_bytes
    if stored.size <= cap:
        return []
    return [
        Finding(
            "size_cap",
            "file_too_large",
            Severity.BLOCK,
            f"{stored.name} has {stored.size} bytes, more than the cap of {cap}",
            f"{stored.name} 有 {stored.size} 字节，超过上限 {cap}",
            details={"size": stored.size, "cap": cap},
        )
    ]
