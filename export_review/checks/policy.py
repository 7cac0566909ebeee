"""What the checks know about the request's project: k, the key space, and the deployment limits."""

from __future__ import annotations

from dataclasses import dataclass

from export_review.policy import CheckLimits


@dataclass(frozen=True)
class CheckPolicy:
    """``key_space`` is the project's set of person pseudonyms, or ``None`` when it is unknown."""

    k: int
    limits: CheckLimits
    key_space: frozenset[str] | None = None
