"""The guard's closed query algebra (docs/guard.md): the layers a query may have, and what each holds.

Every SELECT of an allowed query is one of four layers:

* ``ROW``: rows of persons: the project's views joined on the person key, filtered, with row-level
  expressions; it never aggregates.
* ``PERSON``: ``GROUP BY`` the person key (optionally with row-level keys): one row per person,
  whose aggregates are that person's own values.
* ``AGGREGATE``: exactly one per query: groups over persons' rows, with aggregates whose
  arguments are registered forms (``enclave.guard.rules.arguments``). Every value it releases is
  checked for its own population, dominance and the differencing ledger.
* ``POST``: computes only over released cells: arithmetic, windows, ``ORDER BY``, ``LIMIT``, even
  aggregates, over the released rows of the aggregation layer (it runs on a connection that holds
  nothing else).

A column's *lineage* is its full expression from the view columns, through every CTE and subquery
(leaves are ``exp.Column`` nodes whose table is a leaf name, see ``Leaf``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from sqlglot import exp

from enclave.guard.policy import ViewPolicy
from enclave.guard.rules.arguments import Form
from enclave.specs import ColumnRole

HIDDEN_PERSON = "__enclave_p"


class Layer(Enum):
    ROW = "row"
    PERSON = "person"
    AGGREGATE = "aggregate"
    POST = "post"


@dataclass(frozen=True)
class Leaf:
    """A view instance, or a person-layer table whose outputs are one person's own values."""

    name: str
    view: ViewPolicy | None = None
    dates: frozenset[str] = frozenset()  # a person's own dates (their first visit, say)

    def role(self, column: str) -> ColumnRole | None:
        if self.view is not None:
            return self.view.role(column)
        if column == HIDDEN_PERSON:
            return ColumnRole.PERSON_KEY
        if column.lower() in self.dates:
            return ColumnRole.DATE
        return None


@dataclass
class Col:
    """One column as one SELECT sees it: its lineage, and whether it is the person key."""

    lineage: exp.Expression
    pk: bool = False
    date: bool = False  # a person-layer value that is one of the person's dates


@dataclass
class Source:
    """One FROM or JOIN item of a SELECT."""

    alias: str
    columns: dict[str, Col]
    pk_name: str | None  # the column of this source that holds the person key
    multi: int  # multi-row view instances behind it (fan-out, rule 6)
    unique: bool  # one row per person
    layer: Layer | None = None  # None: a view
    scope: Scope | None = None


@dataclass
class Aggregate:
    """One aggregate call of the aggregation layer and how the guard checks it."""

    call: exp.Expression  # the node replaced by the checked value (a Filter or the AggFunc)
    func: exp.AggFunc
    kind: str  # count_star | count | count_persons | count_distinct | sum | moment | bivariate | quantile
    args: list[exp.Expression]  # SQL-form arguments, over the aggregation layer's sources
    condition: exp.Expression | None  # the FILTER (WHERE ...) predicate
    forms: list[Form] = field(default_factory=list)  # what each argument is (rules.arguments)

    @property
    def filtered(self) -> bool:
        """A condition in FILTER, an indicator or a restriction in an argument: the same filter."""
        return self.condition is not None or any(form.predicate is not None for form in self.forms)

    def magnitudes(self) -> list[exp.Expression]:
        """The arguments with a magnitude to dominate: not indicators (counts) nor dates."""
        return [a for a, f in zip(self.args, self.forms, strict=True) if not f.indicator and not f.dates]

    quantile: float | None = None


@dataclass
class Scope:
    """One SELECT, classified."""

    select: exp.Select
    layer: Layer
    columns: dict[str, Col]
    names: list[str]
    sources: dict[str, Source]
    person: exp.Expression | None = None  # SQL of the person key of its rows (ROW, PERSON)
    person_lineage: exp.Expression | None = None
    unique: bool = False
    multi: int = 0
    keys: list[exp.Expression] = field(default_factory=list)
    aggregates: list[Aggregate] = field(default_factory=list)


@dataclass
class Plan:
    """An allowed query in the algebra: its one aggregation layer and the tree around it."""

    tree: exp.Select
    root: Scope
    aggregate: Scope
    row_ctes: list[exp.CTE]
    safe: set[str] = field(default_factory=set)  # SQL of person-key equalities (cannot fail)
