"""The automated disclosure checks, run on the server over the vault copy of each file (R-EXP-4).

``CHECKS`` registers them (STYLE §5.13): each is ``(stored_file, policy) -> list[Finding]`` in a
module of its own name. ``run_checks`` runs them all; a check that crashes becomes a failing
finding, never a traceback and never a silent pass.
"""

from __future__ import annotations

from collections.abc import Callable

from export_review.checks.content import StoredFile
from export_review.checks.dominance import dominance
from export_review.checks.file_type import file_type
from export_review.checks.finding import Finding, Severity, failed
from export_review.checks.free_text import free_text
from export_review.checks.human_review import human_review
from export_review.checks.person_keys import person_keys
from export_review.checks.policy import CheckPolicy
from export_review.checks.readable import readable
from export_review.checks.row_level import row_level
from export_review.checks.size_cap import size_cap
from export_review.checks.small_cells import small_cells
from export_review.checks.unrounded import unrounded

Check = Callable[[StoredFile, CheckPolicy], list[Finding]]

# The gate checks run first: a file of the wrong type or size is not opened by the others.
GATE_CHECKS: tuple[Check, ...] = (file_type, size_cap)
CHECKS: tuple[Check, ...] = (
    *GATE_CHECKS,
    readable,
    small_cells,
    dominance,
    person_keys,
    row_level,
    free_text,
    unrounded,
    human_review,
)

__all__ = ["CHECKS", "CheckPolicy", "Finding", "Severity", "StoredFile", "failed", "run_checks"]


def _run(check: Check, stored: StoredFile, policy: CheckPolicy) -> list[Finding]:
    try:
        return check(stored, policy)
    except Exception as error:
        return [
            Finding(
                check.__name__,
                "check_crashed",
                Severity.FAIL,
                f"{stored.name}: the {check.__name__} check could not run ({type(error).__name__})",
                f"{stored.name}：{check.__name__} 检查无法运行（{type(error).__name__}）",
            )
        ]


def run_checks(stored: StoredFile, policy: CheckPolicy) -> list[Finding]:
    gate = [f for check in GATE_CHECKS for f in _run(check, stored, policy)]
    if any(f.severity is Severity.BLOCK for f in gate):
        return gate
    return gate + [f for check in CHECKS if check not in GATE_CHECKS for f in _run(check, stored, policy)]
