"""What a check reports: one finding per problem, per file and, for tables, per cell."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """``block``: refused at submission; ``fail``: approval needs a written override reason;
    ``review``: for human eyes; ``warn`` and ``info``: shown, no override needed."""

    BLOCK = "block"
    FAIL = "fail"
    REVIEW = "review"
    WARN = "warn"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    check: str
    code: str
    severity: Severity
    message: str
    message_zh: str
    location: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.check,
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "message_zh": self.message_zh,
        }
        if self.location:
            out["location"] = self.location
        if self.details:
            out["details"] = self.details
        return out


def failed(findings: list[dict[str, Any]]) -> bool:
    """True when a file's findings need an override to approve it."""
    return any(f["severity"] in (Severity.FAIL, Severity.BLOCK) for f in findings)
