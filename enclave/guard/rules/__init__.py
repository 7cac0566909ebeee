"""The guard's syntactic rules, each ``(tree, policy) -> list[Violation]``, run in order on one tree.

The semantic rules (aggregation, person keys, minimum counts) need a qualified tree and live in
``enclave.guard.trace``; they run only when every rule here holds.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from enclave.guard.policy import GuardPolicy
from enclave.guard.rules.statement import statement_is_select
from enclave.guard.rules.syntax import nodes_allowed
from enclave.guard.rules.tables import tables_are_views
from enclave.guard.violations import Violation

Rule = Callable[[exp.Expression, GuardPolicy], list[Violation]]

RULES: tuple[Rule, ...] = (
    nodes_allowed,
    tables_are_views,
)

__all__ = ["RULES", "Rule", "statement_is_select"]
