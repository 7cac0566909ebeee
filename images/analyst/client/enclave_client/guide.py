"""The guard docs, shipped with the client (``images/build.sh`` puts ``docs/guard.md`` in the wheel), so
that a refusal's ``doc`` reference (``docs/guard.md#<anchor>``) opens inside the enclave, offline.

``guard_docs("QRY_FANOUT")`` or ``guard_docs("docs/guard.md#joins-and-fan-out")`` is that section's text.
"""

from __future__ import annotations

import re
from pathlib import Path

SHIPPED = Path(__file__).with_name("guard.md")


def _docs_file() -> Path | None:
    """The shipped copy; in a source checkout (tests, development) the repository's ``docs/guard.md``."""
    if SHIPPED.is_file():
        return SHIPPED
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "docs" / "guard.md"
        if candidate.is_file():
            return candidate
    return None


def slug(heading: str) -> str:
    """A heading's anchor, as GitHub makes it.

    >>> slug("Quantiles: the extremes rule")
    'quantiles-the-extremes-rule'
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def section(anchor: str) -> str:
    """The text of the ``## `` section whose heading has this anchor; empty when there is none."""
    path = _docs_file()
    if path is None:
        return ""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(
        (i for i, line in enumerate(lines) if line.startswith("## ") and slug(line[3:]) == anchor), None
    )
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end]).strip()


def guard_docs(rule: str) -> str:
    """The guard docs' section for a refusal: a ``doc`` reference (``docs/guard.md#anchor``), an anchor, or
    a rule's code (its row in "Rules and their codes")."""
    anchor = rule.rsplit("#", 1)[-1]
    if re.fullmatch(r"[A-Z][A-Z0-9_]+", anchor):
        anchor = "rules-and-their-codes"
    return section(anchor)
