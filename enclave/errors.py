"""Every user-facing error: a stable code, English and Simplified Chinese text, an exit code.

The CLI prints them as ``{"error": {"code": ..., "message": ..., "message_zh": ..., ...}}`` and
exits with the error's exit code (ARCHITECTURE §9): 2 bad input or not found, 3 refused by a
disclosure rule, 4 forbidden for this user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
EXIT_FORBIDDEN = 4


@dataclass(frozen=True)
class Reason:
    """One broken rule: a stable code and the text in both languages."""

    code: str
    message: str
    message_zh: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message, "message_zh": self.message_zh}
        if self.details:
            out["details"] = self.details
        return out


class EnclaveError(Exception):
    """Base of every error a user may see. Subclasses fix the exit code."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        code: str,
        message: str,
        message_zh: str,
        *,
        reasons: list[Reason] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_zh = message_zh
        self.reasons = list(reasons or [])
        self.details = dict(details or {})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message, "message_zh": self.message_zh}
        if self.reasons:
            out["reasons"] = [r.to_dict() for r in self.reasons]
        if self.details:
            out["details"] = self.details
        return {"error": out}

    def __str__(self) -> str:
        lines = [f"[{self.code}] {self.message} / {self.message_zh}"]
        lines += [f"  - [{r.code}] {r.message} / {r.message_zh}" for r in self.reasons]
        return "\n".join(lines)


class BadInput(EnclaveError):
    """Malformed input: a broken spec, bad SQL syntax, an invalid argument."""

    exit_code = EXIT_BAD_INPUT


class NotFound(EnclaveError):
    """The named dataset, project, request or user does not exist."""

    exit_code = EXIT_BAD_INPUT


class Refused(EnclaveError):
    """Refused by a disclosure rule (query guard, export check, cross-border cap)."""

    exit_code = EXIT_REFUSED


class Forbidden(EnclaveError):
    """Not allowed for this user: not a member, self-review, wrong role, wrong state."""

    exit_code = EXIT_FORBIDDEN


class Unavailable(EnclaveError):
    """The server, not the caller, could not do it now: HTTP 503 with ``Retry-After`` (a subclass
    sets ``retry_after_s``)."""

    retry_after_s: int = 1
