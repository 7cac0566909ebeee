"""Rule 1 (ARCHITECTURE §3.1): one statement, and it is a SELECT."""

from __future__ import annotations

from sqlglot import exp

from enclave.guard.policy import GuardPolicy
from enclave.guard.violations import Violation, violation


def statement_is_select(tree: exp.Expression, policy: GuardPolicy) -> list[Violation]:
    """Refuse anything but a plain SELECT at the top (set operations included).

    >>> import sqlglot
    >>> [v.code for v in statement_is_select(sqlglot.parse_one("DROP VIEW x"), None)]
    ['QRY_NOT_SELECT']
    """
    if type(tree) is exp.Select:
        return []
    if isinstance(tree, exp.SetOperation):
        return [violation("QRY_SET_OPERATION", None, detail=f"{tree.key.upper()} at the top level")]
    kind = tree.key.upper()
    if isinstance(tree, exp.Command):
        kind = str(tree.this).upper()
    return [violation("QRY_NOT_SELECT", None, detail=kind)]
