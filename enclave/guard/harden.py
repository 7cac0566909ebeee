"""Take away error oracles: row-level expressions that could fail on a data value are wrapped in
``TRY(...)`` (NULL instead of an error), every ``CAST`` becomes ``TRY_CAST``, and an aggregate used
in arithmetic is first cast to DOUBLE, which overflows to infinity instead of raising.

Without this, ``WHERE zip = '12345' AND CAST(dx AS INT) > 0`` would fail only when the one person
in that postcode has a non-numeric diagnosis: the error itself would be the answer.
"""

from __future__ import annotations

from sqlglot import exp

from enclave.guard.rules.arguments import strip as unparen

SAFE_LEAVES = (exp.Column, exp.Literal, exp.Null, exp.Boolean, exp.Star, exp.Var, exp.DataType, exp.Interval)
COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike)
ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg)


def harden(tree: exp.Expression, safe_nodes: set[str]) -> exp.Expression:
    """Harden every SELECT in ``tree`` in place; ``safe_nodes`` are the SQL of person-key equalities."""
    nodes = list(tree.walk())  # one walk for both passes; replacing a CAST moves no SELECT
    for cast in nodes:
        if type(cast) is exp.Cast:
            cast.replace(exp.TryCast(this=cast.this, to=cast.args.get("to")))
    for select in nodes:
        if isinstance(select, exp.Select):
            _harden_select(select, safe_nodes)
    return tree


def _harden_select(select: exp.Select, safe: set[str]) -> None:
    select.set("expressions", [_harden_projection(p, safe) for p in select.expressions])
    for join in select.args.get("joins") or []:
        if join.args.get("on") is not None:
            join.set("on", _harden_condition(join.args["on"], safe))
    for clause in ("where", "having"):
        node = select.args.get(clause)
        if node is not None:
            node.set("this", _harden_condition(node.this, safe))
    group = select.args.get("group")
    if group is not None:
        group.set("expressions", [harden_value(e, safe) for e in group.expressions])
    order = select.args.get("order")
    if order is not None:
        for ordered in order.expressions:
            ordered.set("this", harden_value(ordered.this, safe))


def _harden_projection(projection: exp.Expression, safe: set[str]) -> exp.Expression:
    if isinstance(projection, exp.Alias):
        projection.set("this", harden_value(projection.this, safe))
        return projection
    return harden_value(projection, safe)


def _harden_condition(condition: exp.Expression, safe: set[str]) -> exp.Expression:
    if isinstance(condition, exp.And):
        condition.set("this", _harden_condition(condition.this, safe))
        condition.set("expression", _harden_condition(condition.expression, safe))
        return condition
    return harden_value(condition, safe)


def harden_value(node: exp.Expression, safe: set[str]) -> exp.Expression:
    """``node`` made error-free: TRY around aggregate-free parts that could fail."""
    if isinstance(node, exp.Subquery | exp.Select):
        return node
    if not _has(node, (exp.AggFunc, exp.Subquery)):
        return exp.Try(this=node) if _may_fail(node, safe) else node
    if isinstance(node, exp.AggFunc):
        for key, child in list(node.args.items()):
            if isinstance(child, exp.Distinct):
                child.set("expressions", [harden_value(e, safe) for e in child.expressions])
            elif isinstance(child, exp.Expression) and not isinstance(child, exp.Star):
                node.set(key, harden_value(child, safe))
        return node
    if isinstance(node, exp.Filter):
        node.set("this", harden_value(node.this, safe))
        where = node.args.get("expression")
        if isinstance(where, exp.Where):
            where.set("this", _harden_condition(where.this, safe))
        return node
    for key, child in list(node.args.items()):
        if isinstance(child, exp.Expression):
            node.set(key, harden_value(child, safe))
        elif isinstance(child, list):
            node.set(key, [harden_value(c, safe) if isinstance(c, exp.Expression) else c for c in child])
    if isinstance(node, ARITHMETIC):
        for key in ("this", "expression"):
            operand = node.args.get(key)
            if isinstance(operand, exp.Expression) and isinstance(unparen(operand), exp.AggFunc):
                node.set(key, exp.TryCast(this=operand, to=exp.DataType.build("DOUBLE")))
    return node


def _has(node: exp.Expression, kind: type | tuple[type, ...]) -> bool:
    return any(isinstance(n, kind) for n in node.walk())


def _may_fail(node: exp.Expression, safe: set[str]) -> bool:
    """False only for shapes that cannot raise on data: bare values and column-vs-text tests."""
    node = unparen(node)
    if isinstance(node, (*SAFE_LEAVES, exp.Exists)):
        return False
    if isinstance(node, exp.EQ) and safe and node.sql(dialect="duckdb") in safe:
        return False
    if isinstance(node, exp.Not):
        return _may_fail(node.this, safe)
    if isinstance(node, exp.Is):
        return not isinstance(unparen(node.this), exp.Column)
    if isinstance(node, COMPARISONS):
        sides = [unparen(node.this), unparen(node.expression)]
        columns = [s for s in sides if isinstance(s, exp.Column)]
        texts = [s for s in sides if isinstance(s, exp.Literal) and s.is_string]
        return not (len(columns) == 1 and len(texts) == 1)
    if isinstance(node, exp.In):
        if node.args.get("query") is not None:
            return False
        values = node.expressions
        return not (
            isinstance(unparen(node.this), exp.Column)
            and all(isinstance(v, exp.Literal) and v.is_string for v in values)
        )
    if isinstance(node, exp.Between):
        bounds = [node.args.get("low"), node.args.get("high")]
        return not (
            isinstance(unparen(node.this), exp.Column)
            and all(isinstance(b, exp.Literal) and b.is_string for b in bounds)
        )
    return True
