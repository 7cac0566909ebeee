"""What each column means to the guard: a person key (a track), or a value that is *plain* or not.

A *track* is one expression, in one SELECT, that holds the person key of the rows it reads: the
person key of a view instance, or a hidden column that carries it out of a subquery or CTE. The
guard counts distinct values of every track in every released group (R-QRY-7).

A value is *plain* when it is a data value passed through arithmetic with bounded constants only:
no conditionals, comparisons, rounding or other step functions. Only plain values (and indicator
CASE expressions whose populations the guard checks) may be summed, averaged or counted distinct,
because a conditional can zero out every row but one and so isolate a person inside a large group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from enclave.guard import allowlist
from enclave.specs import ColumnRole

MAX_CONSTANT = 1e9  # larger constants could push a single value to overflow (an oracle)
MAX_PRODUCTS = 2
PREDICATES = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.And,
    exp.Or,
    exp.Not,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Is,
)
PLAIN_CASTS = frozenset({exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT})


@dataclass(frozen=True)
class ColumnInfo:
    """A column as seen from one SELECT: its track if it is a person key, else its lineage."""

    track: int | None = None
    plain: bool = True
    roles: frozenset[ColumnRole] = field(default_factory=frozenset)

    @property
    def is_person_key(self) -> bool:
        return self.track is not None


@dataclass
class Shape:
    """What a subquery or CTE exposes: its columns by name and the hidden columns carrying tracks."""

    columns: dict[str, ColumnInfo]
    carried: list[str]


def unparen(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def numeric_literal(node: exp.Expression) -> float | None:
    node = unparen(node)
    sign = 1.0
    if isinstance(node, exp.Neg):
        sign, node = -1.0, unparen(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return sign * float(node.this)
        except ValueError:
            return None
    return None


def is_plain(node: exp.Expression, resolve, products: list[int] | None = None) -> bool:
    """Whether ``node`` is a plain value; ``resolve(column) -> ColumnInfo | None``.

    >>> import sqlglot
    >>> info = lambda c: ColumnInfo()
    >>> is_plain(sqlglot.parse_one("a * 2 + b"), info)
    True
    >>> is_plain(sqlglot.parse_one("CASE WHEN a > 1 THEN b END"), info)
    False
    """
    products = products if products is not None else [0]
    node = unparen(node)
    if isinstance(node, exp.Column):
        info = resolve(node)
        return info is not None and not info.is_person_key and info.plain
    value = numeric_literal(node)
    if value is not None:
        return abs(value) <= MAX_CONSTANT
    if isinstance(node, exp.Neg):
        return is_plain(node.this, resolve, products)
    if isinstance(node, exp.Add | exp.Sub):
        return is_plain(node.this, resolve, products) and is_plain(node.expression, resolve, products)
    if isinstance(node, exp.Mul):
        products[0] += 1
        return (
            products[0] <= MAX_PRODUCTS
            and is_plain(node.this, resolve, products)
            and is_plain(node.expression, resolve, products)
        )
    if isinstance(node, exp.Div):
        divisor = numeric_literal(node.expression)
        return divisor is not None and divisor != 0 and is_plain(node.this, resolve, products)
    if isinstance(node, exp.Cast | exp.TryCast):
        to = node.args.get("to")
        if isinstance(unparen(node.this), exp.Literal):
            return True  # a typed constant such as DATE '2020-01-01'
        return (
            isinstance(to, exp.DataType) and to.this in PLAIN_CASTS and is_plain(node.this, resolve, products)
        )
    if isinstance(node, exp.DateDiff):
        unit = node.args.get("unit")
        unit_name = (unit.name if unit is not None else "day").lower()
        return (
            unit_name in ("day", "days")
            and is_plain(node.this, resolve, products)
            and is_plain(node.expression, resolve, products)
        )
    return False


def indicator_condition(node: exp.Expression) -> exp.Expression | None:
    """The condition of an indicator expression (CASE WHEN c THEN 1 [ELSE 0] END, c::INT), else None.

    >>> import sqlglot
    >>> indicator_condition(sqlglot.parse_one("CASE WHEN a > 1 THEN 1 ELSE 0 END")).sql()
    'a > 1'
    """
    node = unparen(node)
    if isinstance(node, exp.Case):
        ifs = node.args.get("ifs") or []
        simple = node.this is None and len(ifs) == 1 and _constant(ifs[0].args.get("true"))
        if simple and _zero_or_null(node.args.get("default")):
            return ifs[0].this
        return None
    if isinstance(node, exp.If):
        if _constant(node.args.get("true")) and _zero_or_null(node.args.get("false")):
            return node.this
        return None
    if isinstance(node, exp.Cast | exp.TryCast):
        to = node.args.get("to")
        inner = unparen(node.this)
        if (
            isinstance(to, exp.DataType)
            and to.this in allowlist.NUMERIC_TYPES
            and isinstance(inner, PREDICATES)
        ):
            return inner
    return None


def _constant(node: exp.Expression | None) -> bool:
    value = numeric_literal(node) if node is not None else None
    return value is not None and abs(value) <= MAX_CONSTANT


def _zero_or_null(node: exp.Expression | None) -> bool:
    if node is None or isinstance(unparen(node), exp.Null):
        return True
    return numeric_literal(node) == 0


def _outermost(node: exp.Expression, kind: type[exp.Expression]) -> list:
    """Outermost nodes of ``kind`` in ``node``, not descending into them or into subqueries."""
    found = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, kind):
            found.append(current)
            continue
        if isinstance(current, exp.Subquery | exp.Select) and current is not node:
            continue
        stack.extend(current.iter_expressions())
    return found


def columns_in(node: exp.Expression) -> list[exp.Column]:
    """Column references in ``node``, not descending into subqueries."""
    return _outermost(node, exp.Column)


def aggregates_in(node: exp.Expression) -> list[exp.AggFunc]:
    """Outermost aggregate calls in ``node``, not descending into subqueries."""
    return _outermost(node, exp.AggFunc)
