"""Rule: joins link rows of the same person, and their fan-out is bounded (attack class 7).

A join is ``[INNER | LEFT] JOIN x ON <x's person key> = <an earlier source's person key>
[AND <row-level conditions>]`` (``USING (pid)`` is the same after qualification). Every row of
the result then belongs to one person, which is what lets the aggregation layer count persons.
Joining on anything else would pair different persons' rows (a self-join on a quasi-identifier
lets one person's value be read against another's).

Fan-out: a join of two tables with several rows per person multiplies them per person, and a
chain of such joins can explode only when a filter matches a target, so the time of the answer
becomes the answer. At most ``MAX_MULTI_ROW`` multi-row view instances may be joined in one
SELECT (one self-join of ``visits`` on the person key, or ``visits`` with ``labs``); DuckDB's
estimated cardinality is then bounded before the query runs (``enclave.guard.execute``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from enclave.guard.rules.arguments import strip

if TYPE_CHECKING:
    from enclave.guard.algebra import Scope
    from enclave.guard.analyze import Analyzer

MAX_MULTI_ROW = 2


def join_links(analyzer: Analyzer, scope: Scope, join: exp.Join, alias: str) -> None:
    """Check one join of ``scope``: its kind, and an equality of person keys with an earlier source."""
    side = (join.args.get("side") or "").upper()
    kind = (join.args.get("kind") or "").upper()
    if side not in ("", "LEFT") or kind not in ("", "INNER", "OUTER"):
        analyzer.fail("QRY_JOIN", join, detail=f"{side or kind} JOIN; use [LEFT] JOIN ... ON a.pid = b.pid")
        return
    on = join.args.get("on")
    new = scope.sources.get(alias)
    if on is None or new is None or new.pk_name is None:
        analyzer.fail("QRY_JOIN", join, detail="join on an equality of person keys (a.pid = b.pid)")
        return
    earlier = list(scope.sources)[: list(scope.sources).index(alias)]
    linked = False
    for conjunct in _conjuncts(on):
        if not isinstance(conjunct, exp.EQ):
            continue
        left, right = strip(conjunct.this), strip(conjunct.expression)
        if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
            continue
        tables = {left.table, right.table}
        links = alias in tables and len(tables) == 2 and (tables - {alias}) <= set(earlier)
        if links and analyzer._is_pk(left, scope) and analyzer._is_pk(right, scope):
            linked = True
    if not linked:
        analyzer.fail(
            "QRY_JOIN",
            join,
            detail="join on an equality of person keys (a.pid = b.pid); joins on other columns pair "
            "different persons' rows",
        )


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    condition = strip(condition)
    if isinstance(condition, exp.And):
        return _conjuncts(condition.this) + _conjuncts(condition.expression)
    return [condition]
