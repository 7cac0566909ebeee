"""Rule: what an aggregate may take as its argument (docs/guard.md, "Aggregate arguments").

The argument is judged by its *lineage*, its full expression from the view columns through every
CTE and subquery, never one step at a time (attack class 1). It must be one of:

* a column (a view column or a person-layer value);
* an indicator of a predicate: ``CASE WHEN p THEN c [ELSE 0] END``, ``IF(p, c, 0)``, ``p::INT``;
* ``CASE WHEN p THEN <form> END``: a form restricted to the rows where ``p`` holds;
* one registered transform of a single column: ``round``, ``floor``, ``ceil``, a bucket
  (``floor(x / w) * w``, ``x // w``), a cast, ``coalesce`` with a constant, a date part or
  truncation, or a change of unit (``x * c``, ``x / c``) whose constants multiply to at most
  ``MAX_SCALE`` either way: no added constant, so no affine shift (class 2), no power, no product;
* a sum or difference of such forms of the same row, e.g. ``discharge_date - visit_date``.

Products of two columns appear only as the two arguments of ``corr``/``covar_*``/``regr_*``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

MAX_SCALE = 1e6
MAX_TERMS = 4
MAX_CONSTANT = 1e9
DATE_PARTS = (
    exp.Year,
    exp.Month,
    exp.Quarter,
    exp.Day,
    exp.DayOfWeek,
    exp.DayOfMonth,
    exp.DayOfYear,
    exp.Extract,
    exp.DateTrunc,
    exp.TimestampTrunc,
)
ROUNDING = (exp.Round, exp.Floor, exp.Ceil)
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
    exp.Boolean,
)


@dataclass(frozen=True)
class Form:
    """What an argument is: ``column``, ``indicator``, ``transform`` or ``combination``."""

    kind: str
    columns: tuple[exp.Column, ...]
    predicate: exp.Expression | None = None
    dates: bool = False  # built from date columns: no magnitude, so no dominance

    @property
    def indicator(self) -> bool:
        return self.kind == "indicator"


def strip(node: exp.Expression) -> exp.Expression:
    """Without parentheses and the guard's own ``TRY`` wrappers."""
    while isinstance(node, exp.Paren | exp.Try):
        node = node.this
    return node


def constant(node: exp.Expression | None) -> float | None:
    """The value of a numeric literal (signed, parenthesised or cast), else None."""
    if node is None:
        return None
    node = strip(node)
    if isinstance(node, exp.Cast | exp.TryCast):
        return constant(node.this)
    sign = 1.0
    while isinstance(node, exp.Neg):
        sign, node = -sign, strip(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return sign * float(node.this)
        except ValueError:
            return None
    return None


def classify(node: exp.Expression, is_date: Callable[[exp.Column], bool] = lambda c: False) -> Form | None:
    """The form of an aggregate argument's lineage, or None when it is not in the algebra.

    >>> import sqlglot
    >>> classify(sqlglot.parse_one("round(v.cost / 1000, 1)")).kind
    'transform'
    >>> classify(sqlglot.parse_one("v.cost * v.cost")) is None
    True
    >>> classify(sqlglot.parse_one("v.cost - 1000000")) is None
    True
    >>> classify(sqlglot.parse_one("CASE WHEN v.dx = 'I10' THEN 1 ELSE 0 END")).kind
    'indicator'
    """
    node = strip(node)
    predicate = indicator_predicate(node)
    if predicate is not None:
        return Form("indicator", tuple(_columns(predicate)), predicate) if _is_predicate(predicate) else None
    restricted = _restricted(node)
    if restricted is not None:
        condition, value = restricted
        inner = classify(value, is_date)
        if inner is None or inner.kind == "indicator" or not _is_predicate(condition):
            return None
        return Form(inner.kind, inner.columns, condition, inner.dates)
    single = _single(node)
    if single is not None:
        return Form(single.kind, single.columns, dates=any(is_date(c) for c in single.columns))
    terms = _terms(node)
    if terms is None:
        return None
    values = [t for t in terms if not _is_constant(t)]
    if not 1 <= len(values) <= MAX_TERMS or len(terms) < 2:
        return None
    forms = [_single(term) for term in values]
    if any(form is None for form in forms):
        return None
    columns = tuple(c for form in forms for c in form.columns)
    dates = any(is_date(c) for c in columns)
    if len(values) < len(terms) and not dates:
        return None  # an added constant is an affine shift of a magnitude (class 2)
    return Form("combination", columns, dates=dates)


def indicator_predicate(node: exp.Expression) -> exp.Expression | None:
    """The predicate of an indicator (``CASE WHEN p THEN c [ELSE 0] END``, ``IF``, ``p::INT``)."""
    node = strip(node)
    if isinstance(node, exp.Case):
        ifs = node.args.get("ifs") or []
        if node.this is None and len(ifs) == 1:
            then, default = ifs[0].args.get("true"), node.args.get("default")
            if _small_constant(then) and _zero_or_null(default):
                return ifs[0].this
            if _zero_or_null(then) and _small_constant(default) and constant(default) != 0:
                return exp.Not(this=exp.Paren(this=ifs[0].this.copy()))
        return None
    if isinstance(node, exp.If):
        then, default = node.args.get("true"), node.args.get("false")
        if _small_constant(then) and _zero_or_null(default):
            return node.this
        return None
    if isinstance(node, exp.Cast | exp.TryCast):
        inner = strip(node.this)
        if isinstance(inner, PREDICATES) and not isinstance(inner, exp.Boolean):
            return inner
    if isinstance(node, PREDICATES) and not isinstance(node, exp.Boolean):
        return node
    return None


def _restricted(node: exp.Expression) -> tuple[exp.Expression, exp.Expression] | None:
    """``CASE WHEN p THEN x [ELSE NULL] END`` as ``(p, x)``."""
    if isinstance(node, exp.Case):
        ifs = node.args.get("ifs") or []
        default = node.args.get("default")
        if node.this is None and len(ifs) == 1 and (default is None or isinstance(strip(default), exp.Null)):
            return ifs[0].this, ifs[0].args.get("true")
    if isinstance(node, exp.If):
        default = node.args.get("false")
        if default is None or isinstance(strip(default), exp.Null):
            return node.this, node.args.get("true")
    return None


def _single(node: exp.Expression) -> Form | None:
    """A column, or one chain of registered transforms of one column."""
    node = strip(node)
    scale = [1.0]
    column = _transform_chain(node, scale, depth=0)
    if column is None:
        return None
    if not 1 / MAX_SCALE <= scale[0] <= MAX_SCALE:
        return None
    return Form("column" if strip(node) is column else "transform", (column,))


def _transform_chain(node: exp.Expression, scale: list[float], depth: int) -> exp.Column | None:
    node = strip(node)
    if depth > 6:
        return None
    if isinstance(node, exp.Column):
        return node
    if isinstance(node, exp.Neg):
        return _transform_chain(node.this, scale, depth + 1)
    if isinstance(node, exp.Cast | exp.TryCast):
        return _transform_chain(node.this, scale, depth + 1)
    if isinstance(node, ROUNDING):
        decimals = node.args.get("decimals") or node.args.get("expression")
        if decimals is not None and constant(decimals) is None:
            return None
        return _transform_chain(node.this, scale, depth + 1)
    if isinstance(node, DATE_PARTS):
        value = node.args.get("expression") if isinstance(node, exp.Extract) else node.this
        unit = node.args.get("unit") if isinstance(node, exp.DateTrunc | exp.TimestampTrunc) else None
        if unit is not None and not isinstance(strip(unit), exp.Literal | exp.Var):
            return None
        return _transform_chain(value, scale, depth + 1) if value is not None else None
    if isinstance(node, exp.Anonymous) and str(node.name).upper() in ("DATE_PART", "DATEPART"):
        if len(node.expressions) == 2 and isinstance(strip(node.expressions[0]), exp.Literal):
            return _transform_chain(node.expressions[1], scale, depth + 1)
        return None
    if isinstance(node, exp.Coalesce):
        rest = node.expressions
        if len(rest) == 1 and (_small_constant(rest[0]) or _date_constant(rest[0])):
            return _transform_chain(node.this, scale, depth + 1)
        return None
    if isinstance(node, exp.Mul):
        left, right = constant(node.this), constant(node.expression)
        if left is not None and right is None:
            scale[0] *= abs(left) if left else 0.0
            return _transform_chain(node.expression, scale, depth + 1)
        if right is not None and left is None:
            scale[0] *= abs(right) if right else 0.0
            return _transform_chain(node.this, scale, depth + 1)
        return None
    if isinstance(node, exp.Div | exp.IntDiv):
        divisor = constant(node.expression)
        if divisor is None or divisor == 0:
            return None
        scale[0] /= abs(divisor)
        return _transform_chain(node.this, scale, depth + 1)
    return None


def _terms(node: exp.Expression) -> list[exp.Expression] | None:
    """The terms of a sum or difference of columns of one row (``a - b``, ``date_diff(u, a, b)``)."""
    node = strip(node)
    if isinstance(node, exp.Add | exp.Sub):
        left, right = _terms(node.this), _terms(node.expression)
        if left is None or right is None:
            return None
        return left + right
    if isinstance(node, exp.DateDiff):
        unit = node.args.get("unit")
        name = (unit.name if unit is not None else "day").lower().strip("'")
        if name not in ("day", "days", "month", "months", "year", "years", "week", "weeks"):
            return None
        return [node.this, node.expression]
    return [node]


def _is_constant(node: exp.Expression) -> bool:
    """A numeric or date constant (the caller decides whether one may be added)."""
    return _small_constant(node) or _date_constant(node)


def _date_constant(node: exp.Expression | None) -> bool:
    node = strip(node) if node is not None else None
    if isinstance(node, exp.Cast | exp.TryCast):
        to = node.args.get("to")
        return (
            isinstance(strip(node.this), exp.Literal)
            and strip(node.this).is_string
            and isinstance(to, exp.DataType)
            and to.this in (exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP)
        )
    return False


def _columns(node: exp.Expression) -> list[exp.Column]:
    return list(node.find_all(exp.Column))


def _is_predicate(node: exp.Expression) -> bool:
    """A row-level condition: no aggregates, windows or subqueries (checked elsewhere too)."""
    return not any(isinstance(n, exp.AggFunc | exp.Window | exp.Subquery | exp.Select) for n in node.walk())


def _small_constant(node: exp.Expression | None) -> bool:
    value = constant(node)
    return value is not None and abs(value) <= MAX_CONSTANT


def _zero_or_null(node: exp.Expression | None) -> bool:
    if node is None or isinstance(strip(node), exp.Null):
        return True
    return constant(node) == 0
