"""Rule: which aggregates each layer may use (docs/guard.md, "Aggregates").

The aggregation layer releases values to the analyst, so it allows only aggregates that summarise
many persons: counts, sums and means, spread, bivariate statistics and quantiles (under the
extremes rule). Aggregates that return one row's value (``min``, ``max``, ``first``, ``any_value``,
``arg_*``, ``mode``, ``list``, ``string_agg``), membership bits (``bool_or``/``bool_and``, attack
class 6) and higher moments (``skewness``, ``kurtosis``: power sums, class 1) are refused there.

The person layer computes one person's own values, so it may also use ``min``/``max``,
``bool_or``/``bool_and`` and ``any_value``; their results are that person's values, to which the
aggregation layer's rules then apply.
"""

from __future__ import annotations

from sqlglot import exp

COUNTS = (exp.Count, exp.CountIf)
SUMS = (exp.Sum, exp.Avg)
MOMENTS = (exp.Stddev, exp.StddevSamp, exp.StddevPop, exp.Variance, exp.VariancePop)
BIVARIATE = (
    exp.Corr,
    exp.CovarPop,
    exp.CovarSamp,
    exp.RegrSlope,
    exp.RegrIntercept,
    exp.RegrR2,
    exp.RegrCount,
    exp.RegrAvgx,
    exp.RegrAvgy,
    exp.RegrSxx,
    exp.RegrSyy,
    exp.RegrSxy,
)
QUANTILES = (exp.Median, exp.PercentileCont, exp.PercentileDisc, exp.Quantile)
RELEASABLE = (*COUNTS, *SUMS, *MOMENTS, *BIVARIATE, *QUANTILES)
PER_PERSON_ONLY = (exp.Min, exp.Max, exp.LogicalOr, exp.LogicalAnd, exp.AnyValue)
PER_PERSON = (*RELEASABLE, *PER_PERSON_ONLY)


def aggregate_kind(func: exp.AggFunc) -> str | None:
    """The guard's name for an aggregation-layer aggregate, or None when it is refused there."""
    if isinstance(func, exp.Count):
        argument = func.this
        if argument is None or isinstance(argument, exp.Star):
            return "count_star"
        return "count_distinct" if isinstance(argument, exp.Distinct) else "count"
    if isinstance(func, exp.CountIf):
        return "count_if"
    if isinstance(func, SUMS):
        return "sum"
    if isinstance(func, MOMENTS):
        return "moment"
    if isinstance(func, BIVARIATE):
        return "bivariate"
    if isinstance(func, QUANTILES):
        return "quantile"
    return None


def arguments_of(func: exp.AggFunc) -> list[exp.Expression]:
    """The value arguments of an aggregate call (not the quantile fraction)."""
    if isinstance(func, BIVARIATE):
        return [func.this, func.expression]
    argument = func.this
    if isinstance(argument, exp.Distinct):
        return list(argument.expressions)
    if argument is None or isinstance(argument, exp.Star):
        return []
    return [argument]


def quantile_fraction(func: exp.AggFunc) -> float | None:
    """The fraction of a quantile aggregate: 0.5 for median, else a constant in (0, 1)."""
    if isinstance(func, exp.Median):
        return 0.5
    fraction = func.args.get("expression") or func.args.get("quantile")
    from enclave.guard.rules.arguments import constant

    value = constant(fraction) if fraction is not None else None
    if value is None or not 0 < value < 1:
        return None
    return value


def name_of(func: exp.Expression) -> str:
    try:
        return func.sql_name().lower()
    except Exception:
        return func.key
