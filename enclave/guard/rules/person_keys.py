"""Rule: a person key is used only bare (docs/guard.md; re-identification and single-person groups).

A person key may be a join key (``a.pid = b.pid``, also the correlation of ``EXISTS``), the key of a
person layer, the argument of ``count([DISTINCT] pid)``, the left side of a semi-join
(``pid IN (SELECT pid ...)``) or tested with ``IS [NOT] NULL``; a row or person layer may carry it
as a column. Anything else (a comparison with a constant, a function, arithmetic, an output or a
group key of the aggregation layer) is refused: ``upper(pid)`` or ``pid = 'P199'`` would single a
person out. An equality of person keys cannot fail on a value, so it is remembered as safe for
``enclave.guard.harden``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from enclave.guard.rules.arguments import strip

if TYPE_CHECKING:
    from enclave.guard.algebra import Scope
    from enclave.guard.analyze import Analyzer


def person_key_place(analyzer: Analyzer, column: exp.Column, place: str, scope: Scope) -> None:
    """Allow a person-key column only where it is used bare (docs/guard.md, the four layers)."""
    node: exp.Expression = column
    parent = node.parent
    while isinstance(parent, exp.Paren) or (
        isinstance(parent, exp.Coalesce)
        and all(analyzer._is_pk(strip(a), scope) for a in _coalesce_args(parent))
    ):
        node, parent = parent, parent.parent
    name = column.sql(dialect="duckdb")
    if isinstance(parent, exp.EQ) and place in ("on", "where"):
        other = parent.expression if parent.this is node else parent.this
        if analyzer._is_pk(strip(other), scope) or _is_outer(strip(other), scope):
            analyzer.safe.add(parent.sql(dialect="duckdb"))
            return
    if isinstance(parent, exp.In) and parent.this is node and parent.args.get("query") is not None:
        return
    if isinstance(parent, exp.Is) and isinstance(strip(parent.expression), exp.Null):
        return
    if isinstance(parent, exp.Distinct) and isinstance(parent.parent, exp.Count):
        return
    if isinstance(parent, exp.Count):
        return
    bare = isinstance(parent, exp.Select | exp.Alias | exp.Group | exp.Ordered)
    if bare and place in ("select", "group"):
        return  # a row or person layer carries it; the outermost layers are checked in analyze()
    if bare and place == "order":
        analyzer.fail("QRY_PERSON_KEY_OUTPUT", column, detail=name)
        return
    analyzer.fail("QRY_PERSON_KEY_USE", column, detail=name)


def _is_outer(node: exp.Expression, scope: Scope) -> bool:
    """A column of the enclosing SELECT (a correlation, which ``subqueries`` checks)."""
    return isinstance(node, exp.Column) and node.table not in scope.sources


def _coalesce_args(node: exp.Coalesce) -> list[exp.Expression]:
    return [node.this, *node.expressions]
