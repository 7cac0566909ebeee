"""Rule: subqueries in expressions are person-key semi-joins only (attack class 4).

A subquery value (``(SELECT avg(income) FROM ...)``), a comparison with one, or ``x IN (SELECT ...)``
on anything but the person key is a gate or a second aggregation: each part may rest on k persons
while the combination isolates one ("everyone" minus "everyone but the target"). The only forms
allowed, in WHERE, filter persons by rows of other persons' tables:

* ``<person key> [NOT] IN (SELECT <person key> FROM ...)`` over a row layer or a person layer;
* ``[NOT] EXISTS (SELECT ... FROM v WHERE v.pid = p.pid AND ...)``, correlated by exactly that
  equality of person keys and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from enclave.guard.algebra import Layer
from enclave.guard.rules.arguments import strip

if TYPE_CHECKING:
    from enclave.guard.algebra import Scope
    from enclave.guard.analyze import Analyzer, Context

ROW_LEVEL = (Layer.ROW, Layer.PERSON)


def _context(ctes, outer=None):
    from enclave.guard.analyze import Context

    return Context(ctes, outer)


def in_subquery(analyzer: Analyzer, node: exp.In, place: str, scope: Scope, context: Context) -> None:
    """``<person key> [NOT] IN (SELECT <person key> ...)`` in WHERE, over rows or a person layer."""
    target = strip(node.this)
    query = node.args["query"]
    if place != "where" or not analyzer._is_pk(target, scope):
        analyzer.fail(
            "QRY_SUBQUERY",
            query,
            detail="IN (subquery) is allowed only as <person key> IN (SELECT <person key> ...) in WHERE",
        )
        return
    inner = analyzer.body(query.this if isinstance(query, exp.Subquery) else query, _context(context.ctes))
    if inner is None:
        return
    if inner.layer not in ROW_LEVEL or len(inner.names) != 1 or not _first_is_pk(inner):
        analyzer.fail(
            "QRY_SUBQUERY",
            query,
            detail="the subquery of <person key> IN (...) must return only a person key, from rows "
            "or from a query grouped by the person key",
        )


def exists_subquery(analyzer: Analyzer, node: exp.Exists, place: str, scope: Scope, context: Context) -> None:
    """``[NOT] EXISTS (...)`` in WHERE, correlated by exactly an equality of person keys."""
    query = node.this
    select = query.this if isinstance(query, exp.Subquery) else query
    if place != "where" or not isinstance(select, exp.Select):
        analyzer.fail("QRY_SUBQUERY", node, detail="EXISTS is allowed only in WHERE")
        return
    inner = analyzer.body(select, _context(context.ctes, outer=scope.sources))
    if inner is None:
        return
    if inner.layer not in ROW_LEVEL:
        analyzer.fail("QRY_SUBQUERY", node, detail="EXISTS over an aggregation")
        return
    correlations = []
    for column in select.find_all(exp.Column):
        if column.table in scope.sources and column.table not in inner.sources:
            correlations.append(column)
    linking = []
    where = select.args.get("where")
    for conjunct in _conjuncts(where.this) if where is not None else []:
        if isinstance(conjunct, exp.EQ):
            left, right = strip(conjunct.this), strip(conjunct.expression)
            if (
                isinstance(left, exp.Column)
                and isinstance(right, exp.Column)
                and {left.table, right.table} & set(scope.sources)
                and (analyzer._is_pk(left, inner) or analyzer._is_pk(right, inner))
                and (analyzer._is_pk(left, scope) or analyzer._is_pk(right, scope))
            ):
                linking += [left, right]
    stray = [c for c in correlations if not any(c is link for link in linking)]
    if stray or not linking:
        analyzer.fail(
            "QRY_CORRELATED_SUBQUERY",
            node,
            detail="EXISTS must be correlated by exactly an equality of person keys",
        )


def _first_is_pk(scope: Scope) -> bool:
    return bool(scope.names) and scope.columns[scope.names[0].lower()].pk


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    condition = strip(condition)
    if isinstance(condition, exp.And):
        return _conjuncts(condition.this) + _conjuncts(condition.expression)
    return [condition]
