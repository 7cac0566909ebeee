"""Rule: dates leave only coarsened or as intervals (attack class 8, the project's date offset).

Every date of a project is moved by one secret offset plus a per-person jitter (R-PREP-10). A
public event (an outbreak, a mass-casualty day) puts many persons on one known calendar date, so
the exact released date of its peak, or the mean of its dates, minus the known date is the secret
offset: jitter spreads the peak over ±N days but a mean over many persons cancels it. So, in a
group key or an aggregate's argument, a date column may appear only

* truncated or extracted at month, quarter or year (``date_trunc('month', d)``, ``year(d)``,
  ``month(d)``, ``quarter(d)``, ``extract(year FROM d)``): coarser than the offset;
* as an interval between two date columns of the same row (``discharge_date - visit_date``,
  ``date_diff('day', visit_date, discharge_date)``): the offset cancels, the interval is exact;
* inside a condition (``visit_date >= DATE '2021-01-01'``), e.g. to restrict to a study period;
* counted (``count(visit_date)``).

Differences with a constant date, exact days, weeks and days of the year are refused there.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from enclave.guard.rules.arguments import PREDICATES, strip

COARSE_UNITS = frozenset(
    {"month", "months", "mon", "mm", "quarter", "quarters", "year", "years", "yyyy", "y"}
)
COARSE_FUNCTIONS = (exp.Year, exp.Month, exp.Quarter)

IsDate = Callable[[exp.Column], bool]


def uncoarsened_dates(lineage: exp.Expression, is_date: IsDate) -> list[exp.Column]:
    """Date columns in ``lineage`` that are neither coarsened, nor in an interval, nor in a condition.

    >>> import sqlglot
    >>> dated = lambda c: c.name.endswith("date")
    >>> [c.name for c in uncoarsened_dates(sqlglot.parse_one("date_trunc('day', visit_date)"), dated)]
    ['visit_date']
    >>> uncoarsened_dates(sqlglot.parse_one("discharge_date - visit_date"), dated)
    []
    """
    found: list[exp.Column] = []
    stack = [lineage]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Column):
            if is_date(node):
                found.append(node)
            continue
        if _coarse(node) or _interval(node, is_date) or isinstance(node, PREDICATES):
            continue
        stack.extend(node.iter_expressions())
    return found


def _coarse(node: exp.Expression) -> bool:
    if isinstance(node, COARSE_FUNCTIONS):
        return True
    if isinstance(node, exp.DateTrunc | exp.TimestampTrunc):
        return _unit(node.args.get("unit")) in COARSE_UNITS
    if isinstance(node, exp.Extract):
        return _unit(node.this) in COARSE_UNITS
    if isinstance(node, exp.Anonymous) and str(node.name).upper() in ("DATE_PART", "DATEPART"):
        return bool(node.expressions) and _unit(node.expressions[0]) in COARSE_UNITS
    return False


def _interval(node: exp.Expression, is_date: IsDate) -> bool:
    """A difference of two expressions that each hold a date column (not a constant date)."""
    if isinstance(node, exp.Sub | exp.DateDiff):
        sides = [node.this, node.expression]
        return all(any(is_date(c) for c in strip(side).find_all(exp.Column)) for side in sides)
    return False


def _unit(node: exp.Expression | None) -> str:
    if node is None:
        return ""
    node = strip(node)
    if isinstance(node, exp.Literal | exp.Var):
        return str(node.this).strip("'").lower()
    return node.sql().strip("'").lower()
