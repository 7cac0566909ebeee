"""Put a qualified query into the algebra (``enclave.guard.algebra``), or say why it is not in it.

``analyze(tree, policy)`` walks from the outermost SELECT down through CTEs, subqueries and joins,
classifies every SELECT into a layer, traces every column's lineage from the view columns, and
applies the rules that need lineage: where person keys may appear (``rules.person_keys``), join
shapes and fan-out (``rules.joins``), subquery forms (``rules.subqueries``), which aggregates each
layer may use (``rules.aggregates``), what they may take (``rules.arguments``) and how dates may
appear (``rules.dates``). Violations are collected,
never raised. The only change it makes to the tree is adding a hidden person-key column to the
row and person layers that other SELECTs read, so the aggregation layer can count persons.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from sqlglot import exp

from enclave.guard.algebra import HIDDEN_PERSON, Aggregate, Col, Layer, Leaf, Plan, Scope, Source
from enclave.guard.policy import GuardPolicy
from enclave.guard.rules import aggregates as agg_rules
from enclave.guard.rules.arguments import classify, strip
from enclave.guard.rules.dates import uncoarsened_dates
from enclave.guard.rules.joins import MAX_MULTI_ROW, join_links
from enclave.guard.rules.person_keys import person_key_place
from enclave.guard.rules.subqueries import exists_subquery, in_subquery
from enclave.guard.violations import Violation, violation
from enclave.specs import ColumnRole

ROW_LEVEL = (Layer.ROW, Layer.PERSON)


@dataclass
class Context:
    ctes: dict[str, exp.CTE]
    outer: dict[str, Source] | None = None  # the enclosing SELECT's sources (EXISTS only)


@dataclass
class Analyzer:
    policy: GuardPolicy
    violations: list[Violation] = field(default_factory=list)
    leaves: dict[str, Leaf] = field(default_factory=dict)
    aggregate_scopes: list[Scope] = field(default_factory=list)
    row_ctes: list[exp.CTE] = field(default_factory=list)
    _cte_scopes: dict[int, Scope] = field(default_factory=dict)
    _in_progress: set[int] = field(default_factory=set)
    _hidden: set[int] = field(default_factory=set)
    _names: itertools.count = field(default_factory=itertools.count)
    safe: set[str] = field(default_factory=set)

    def fail(self, code: str, node: exp.Expression | None = None, **params: str) -> None:
        found = violation(code, node, **params)
        if all((v.code, v.params) != (found.code, found.params) for v in self.violations):
            self.violations.append(found)

    # ------------------------------------------------------------------ bodies and sources

    def body(self, node: exp.Expression, context: Context) -> Scope | None:
        node = strip(node)
        if isinstance(node, exp.Subquery):
            return self.body(node.this, context)
        if isinstance(node, exp.Select):
            return self.select(node, context)
        if isinstance(node, exp.Union) and not node.args.get("distinct"):
            return self._union(node, context)
        self.fail(
            "QRY_SET_OPERATION",
            node,
            detail=f"{node.key.upper()} (each part would be its own aggregation)",
        )
        return None

    def _union(self, node: exp.Union, context: Context) -> Scope | None:
        """UNION ALL of row layers: more rows of the same persons, each branch carrying its person key.

        Each output column must be a bare column (or a constant) in every branch, so that its lineage
        is a column whatever branch a row came from; anything derived must be derived after the union.
        """
        branches: list[exp.Expression] = []
        stack: list[exp.Expression] = [node]
        while stack:
            current = strip(stack.pop())
            if isinstance(current, exp.Subquery):
                stack.append(current.this)
            elif isinstance(current, exp.Union) and not current.args.get("distinct"):
                stack += [current.expression, current.this]
            else:
                branches.append(current)
        scopes = []
        for branch in branches:
            scope = self.body(branch, context) if isinstance(branch, exp.Select) else None
            if scope is None or scope.layer is not Layer.ROW:
                self.fail("QRY_SET_OPERATION", branch, detail="UNION ALL of anything but rows of the views")
                return None
            scopes.append(scope)
        widths = {len(scope.names) for scope in scopes}
        if len(widths) != 1:
            self.fail("QRY_SET_OPERATION", node, detail="UNION ALL of branches with different columns")
            return None
        first = scopes[0]
        columns: dict[str, Col] = {}
        for position, name in enumerate(first.names):
            cols = [scope.columns[scope.names[position].lower()] for scope in scopes]
            if all(c.pk for c in cols):
                columns[name.lower()] = Col(cols[0].lineage, pk=True)
                continue
            plain = [c for c in cols if isinstance(c.lineage, exp.Column) and not c.pk]
            constants = [c for c in cols if isinstance(strip(c.lineage), exp.Literal | exp.Null)]
            if any(c.pk for c in cols) or len(plain) + len(constants) != len(cols) or not plain:
                self.fail(
                    "QRY_SET_OPERATION",
                    node,
                    detail=f"column {name} of a UNION ALL must be the same kind of bare column in every part "
                    "(derive values after the union)",
                )
                return None
            dated = [c for c in plain if self._is_date(c.lineage)]
            columns[name.lower()] = Col((dated or plain)[0].lineage)
        for scope in scopes:
            self._carry_person(scope)
        union = Scope(
            select=first.select, layer=Layer.ROW, columns=columns, names=list(first.names), sources={}
        )
        union.person = first.person
        union.multi = max(1, sum(scope.multi for scope in scopes))  # a person's rows add up
        union.unique = False
        return union

    def _cte(self, cte: exp.CTE, context: Context) -> Scope | None:
        key = id(cte)
        if key in self._cte_scopes:
            return self._cte_scopes[key]
        if key in self._in_progress:
            self.fail("QRY_RECURSIVE", cte)
            return None
        self._in_progress.add(key)
        scope = self.body(cte.this, Context(context.ctes))
        self._in_progress.discard(key)
        if scope is not None:
            self._cte_scopes[key] = scope
            if scope.layer in ROW_LEVEL:
                self.row_ctes.append(cte)
        return scope

    def _source(self, item: exp.Expression, context: Context) -> Source | None:
        alias = item.alias_or_name
        if isinstance(item, exp.Table):
            name = item.name.lower()
            if name in context.ctes:
                scope = self._cte(context.ctes[name], context)
                return self._derived(alias, scope)
            view = self.policy.views.get(name)
            if view is None:
                self.fail(
                    "QRY_UNKNOWN_TABLE", item, detail=repr(item.name), views=", ".join(self.policy.views)
                )
                return None
            leaf = self._leaf(view.name, view=view)
            columns = {
                column: Col(exp.column(column, table=leaf.name), pk=role is ColumnRole.PERSON_KEY)
                for column, role in view.columns.items()
            }
            multi = 0 if view.unique_person_key else 1
            return Source(alias, columns, view.person_key, multi, view.unique_person_key)
        if isinstance(item, exp.Subquery):
            return self._derived(alias, self.body(item.this, context))
        self.fail("QRY_SYNTAX_NOT_ALLOWED", item, detail=item.key.upper())
        return None

    def _derived(self, alias: str, scope: Scope | None) -> Source | None:
        if scope is None:
            return None
        if scope.layer in ROW_LEVEL:
            self._carry_person(scope)
            columns = dict(scope.columns)
            columns[HIDDEN_PERSON] = Col(exp.column(HIDDEN_PERSON, table="?"), pk=True)
            if scope.layer is Layer.PERSON:
                dated = frozenset(name for name, col in columns.items() if col.date)
                leaf = self._leaf("person", dates=dated)
                for name, col in list(columns.items()):
                    if col.pk:
                        columns[name] = Col(exp.column(HIDDEN_PERSON, table=leaf.name), pk=True)
                    elif _is_per_person_value(col):
                        columns[name] = Col(exp.column(name, table=leaf.name))
            elif scope.person_lineage is not None:
                columns[HIDDEN_PERSON] = Col(scope.person_lineage, pk=True)
            return Source(alias, columns, HIDDEN_PERSON, scope.multi, scope.unique, scope.layer, scope)
        return Source(alias, dict(scope.columns), None, scope.multi, False, scope.layer, scope)

    def _carry_person(self, scope: Scope) -> None:
        """Add the hidden person-key column to a row or person layer that another SELECT reads (once)."""
        if id(scope.select) not in self._hidden and scope.person is not None:
            self._hidden.add(id(scope.select))
            scope.select.append(
                "expressions", exp.alias_(scope.person.copy(), HIDDEN_PERSON, quoted=True, copy=False)
            )

    def _leaf(self, base: str, *, view=None, dates=frozenset()) -> Leaf:
        leaf = Leaf(f"{base}#{next(self._names)}", view=view, dates=dates)
        self.leaves[leaf.name] = leaf
        return leaf

    # ------------------------------------------------------------------ one SELECT

    def select(self, select: exp.Select, context: Context) -> Scope | None:
        with_ = select.args.get("with_")
        if with_ is not None:
            ctes = dict(context.ctes)
            for cte in with_.expressions:
                name = cte.alias_or_name.lower()
                if name in ctes:
                    self.fail("QRY_SYNTAX_NOT_ALLOWED", cte, detail=f"a second CTE named {name}")
                ctes[name] = cte
            context = Context(ctes, context.outer)
        from_ = select.args.get("from_")
        if from_ is None:
            self.fail("QRY_NO_SOURCE", select)
            return None
        items = [(from_.this, None)] + [(join.this, join) for join in select.args.get("joins") or []]
        sources: dict[str, Source] = {}
        for item, _ in items:
            source = self._source(item, context)
            if source is None:
                return None
            sources[source.alias] = source
        scope = Scope(select=select, layer=Layer.ROW, columns={}, names=[], sources=sources)
        released = [s for s in sources.values() if s.layer in (Layer.AGGREGATE, Layer.POST)]
        if released:
            return self._post(scope)
        for item, join in items[1:]:
            join_links(self, scope, join, item.alias_or_name)
        scope.multi = sum(s.multi for s in sources.values())
        if scope.multi > MAX_MULTI_ROW:
            self.fail(
                "QRY_FANOUT",
                select,
                detail=f"{scope.multi} tables with several rows per person joined; at most {MAX_MULTI_ROW}",
            )
        first = next(iter(sources.values()))
        scope.person = exp.column(first.pk_name, table=first.alias, quoted=True)
        scope.unique = len(sources) == 1 and first.unique
        self._expand_group_all(select)
        keys = list(select.args["group"].expressions) if select.args.get("group") else []
        person_keys = [k for k in keys if self._is_pk(strip(k), scope)]
        distinct = select.args.get("distinct") is not None
        aggregates = _aggregates_in(select)
        self._check_places(scope, context)
        if person_keys or (distinct and any(self._is_pk(_value(p), scope) for p in select.expressions)):
            scope.layer = Layer.PERSON
            self._person(scope, keys if not distinct else [_value(p) for p in select.expressions])
        elif aggregates or keys or distinct:
            scope.layer = Layer.AGGREGATE
            self._aggregate(scope, keys, aggregates, distinct)
        else:
            self._row(scope)
        return scope

    def _post(self, scope: Scope) -> Scope:
        select = scope.select
        scope.layer = Layer.POST
        if len(scope.sources) != 1 or select.args.get("joins"):
            self.fail(
                "QRY_LAYERS",
                select,
                detail="aggregated results can only be read on their own: no joins with other tables "
                "or with other aggregations (that would difference released cells)",
            )
        for node in _nodes_not_in_subqueries(select, skip=("with_", "from_", "joins")):
            if isinstance(node, exp.Subquery | exp.Select | exp.Exists):
                self.fail("QRY_SUBQUERY", node, detail="a subquery over aggregated results")
        scope.names = [p.alias_or_name for p in select.expressions]
        scope.columns = {n.lower(): Col(exp.column(n, table="released")) for n in scope.names}
        return scope

    def _row_level_clauses(self, scope: Scope) -> None:
        """No windows, ORDER BY or LIMIT below the aggregation layer: they pick rows of persons."""
        select = scope.select
        for node in _nodes_not_in_subqueries(select):
            if isinstance(node, exp.Window):
                self.fail("QRY_WINDOW", node)
                break
        for clause in ("order", "limit", "offset"):
            if select.args.get(clause) is not None:
                self.fail("QRY_SUBQUERY_LIMIT", select.args[clause], detail=clause.upper())

    def _row(self, scope: Scope) -> None:
        select = scope.select
        scope.layer = Layer.ROW
        self._row_level_clauses(scope)
        if select.args.get("having") is not None:
            self.fail("QRY_SYNTAX_NOT_ALLOWED", select.args["having"], detail="HAVING without aggregation")
        for projection in select.expressions:
            name = projection.alias_or_name
            value = _value(projection)
            scope.names.append(name)
            scope.columns[name.lower()] = Col(self.lineage(value, scope), pk=self._is_pk(value, scope))
        scope.person_lineage = self.lineage(scope.person, scope)

    def _person(self, scope: Scope, keys: list[exp.Expression]) -> None:
        select = scope.select
        self._row_level_clauses(scope)
        for key in keys:
            if not self._is_pk(strip(key), scope) and _has_aggregate(key):
                self.fail("QRY_SYNTAX_NOT_ALLOWED", key, detail="an aggregate in GROUP BY")
        key_texts = {strip(k).sql(dialect="duckdb") for k in keys}
        for projection in select.expressions:
            name = projection.alias_or_name
            value = _value(projection)
            scope.names.append(name)
            if self._is_pk(value, scope):
                scope.columns[name.lower()] = Col(self.lineage(value, scope), pk=True)
                continue
            if not _has_aggregate(value):
                if value.sql(dialect="duckdb") not in key_texts and value.find(exp.Column) is not None:
                    self.fail(
                        "QRY_NOT_AGGREGATE",
                        value,
                        detail="In a query grouped by the person key, other columns must be aggregated.",
                        detail_zh="在按人员标识分组的查询中，其他列必须聚合。",
                    )
                scope.columns[name.lower()] = Col(self.lineage(value, scope))
                continue
            self._per_person_value(value, scope)
            scope.columns[name.lower()] = Col(
                exp.Anonymous(this="PER_PERSON", expressions=[]), date=self._per_person_date(value, scope)
            )
        having = select.args.get("having")
        if having is not None:
            for func, _call, condition in _calls(having.this):
                self._per_person_aggregate(func, condition, scope)
        scope.unique = all(self._is_pk(strip(k), scope) for k in keys)
        scope.multi = 0 if scope.unique else 1

    def _per_person_value(self, value: exp.Expression, scope: Scope) -> None:
        """One person's value: an aggregate of theirs, a transform of one, or a sum/difference."""
        calls = _calls(value)
        placeholder = value.copy()
        for _func, call, _condition in _calls(placeholder):
            if call is placeholder:
                placeholder = exp.column("__agg", table="person")
            else:
                call.replace(exp.column("__agg", table="person"))
        if classify(placeholder) is None:
            self.fail(
                "QRY_AGGREGATE_ARGUMENT",
                value,
                detail=f"{value.sql(dialect='duckdb')} (a person's value must be one aggregate, a transform "
                "of one, or a sum or difference of them)",
            )
        for func, _call, condition in calls:
            self._per_person_aggregate(func, condition, scope)

    def _per_person_date(self, value: exp.Expression, scope: Scope) -> bool:
        """Is this person-layer value one of the person's own dates (min, max or any of a date)?"""
        value = strip(value)
        if isinstance(value, exp.IgnoreNulls):
            value = value.this
        if isinstance(value, (exp.Min, exp.Max, exp.AnyValue, *agg_rules.QUANTILES)):
            arguments = agg_rules.arguments_of(value)
            return bool(arguments) and any(
                self._is_date(c) for c in self.lineage(arguments[0], scope).find_all(exp.Column)
            )
        return False

    def _per_person_aggregate(self, func: exp.AggFunc, condition, scope: Scope) -> None:
        if not isinstance(func, agg_rules.PER_PERSON):
            self.fail("QRY_UNSAFE_AGGREGATE", func, detail=f"{agg_rules.name_of(func)}()")
            return
        keeps_dates = isinstance(func, (exp.Min, exp.Max, exp.AnyValue, exp.Count, *agg_rules.QUANTILES))
        for argument in agg_rules.arguments_of(func):
            if self._is_pk(strip(argument), scope):
                continue
            lineage = self.lineage(argument, scope)
            if classify(lineage, self._is_date) is None:
                self.fail("QRY_AGGREGATE_ARGUMENT", func, detail=f"{agg_rules.name_of(func)}()")
            elif not keeps_dates:
                self._dates_coarsened(lineage, func)

    def _aggregate(self, scope: Scope, keys: list[exp.Expression], aggregates, distinct: bool) -> None:
        select = scope.select
        scope.layer = Layer.AGGREGATE
        self.aggregate_scopes.append(scope)
        if distinct:
            if select.args.get("group") is not None or aggregates:
                self.fail(
                    "QRY_SYNTAX_NOT_ALLOWED", select, detail="SELECT DISTINCT with GROUP BY or aggregates"
                )
            keys = [_value(p) for p in select.expressions]
        for key in keys:
            if _has_aggregate(key):
                self.fail("QRY_SYNTAX_NOT_ALLOWED", key, detail="an aggregate in GROUP BY")
            else:
                self._dates_coarsened(self.lineage(key, scope), key)
        scope.keys = [k.copy() for k in keys]
        for node in [*keys, *(_value(p) for p in select.expressions)]:
            if self._is_pk(strip(node), scope):
                self.fail("QRY_PERSON_KEY_OUTPUT", node, detail=node.sql(dialect="duckdb"))
        for func, call, condition in aggregates:
            item = self._released_aggregate(func, call, condition, scope)
            if item is not None:
                scope.aggregates.append(item)
        names = []
        for projection in select.expressions:
            names.append(projection.alias_or_name)
        scope.names = names
        scope.columns = {n.lower(): Col(exp.column(n, table="released")) for n in names}
        key_texts = {strip(k).sql(dialect="duckdb") for k in keys}
        kinds = tuple({type(strip(k)) for k in keys})
        for place in _outputs(select):
            for column in _columns_outside(place, key_texts, kinds):
                self.fail(
                    "QRY_NOT_AGGREGATE",
                    column,
                    detail=f"{column.sql(dialect='duckdb')} is neither aggregated nor a GROUP BY key.",
                    detail_zh=f"{column.sql(dialect='duckdb')} 既未聚合，也不是 GROUP BY 键。",
                )

    def _released_aggregate(self, func, call, condition, scope: Scope) -> Aggregate | None:
        kind = agg_rules.aggregate_kind(func)
        name = agg_rules.name_of(func)
        if kind is None:
            self.fail("QRY_UNSAFE_AGGREGATE", func, detail=f"{name}()")
            return None
        if any(isinstance(n, exp.AggFunc) for a in func.iter_expressions() for n in a.walk()):
            self.fail("QRY_NESTED_AGGREGATE", func, detail=func.sql(dialect="duckdb"))
            return None
        if isinstance(func.this, exp.Distinct) and kind != "count_distinct":
            self.fail("QRY_AGGREGATE_ARGUMENT", func, detail=f"{name}(DISTINCT ...)")
            return None
        arguments = agg_rules.arguments_of(func)
        if kind == "count_if":
            arguments = []
            condition = func.this if condition is None else exp.and_(condition, func.this)
            kind = "count_star"
        if condition is not None and not _row_level(condition):
            self.fail(
                "QRY_AGGREGATE_ARGUMENT", call, detail="FILTER (WHERE ...) with a subquery or aggregate"
            )
            return None
        item = Aggregate(call=call, func=func, kind=kind, args=arguments, condition=condition)
        if kind == "quantile":
            item.quantile = agg_rules.quantile_fraction(func)
            if item.quantile is None:
                self.fail("QRY_QUANTILE", func, detail=name)
                return None
        if kind in ("count", "count_distinct") and self._is_pk(strip(arguments[0]), scope):
            item.kind = "count_persons"
            return item
        for argument in arguments:
            if self._is_pk(strip(argument), scope):
                self.fail("QRY_PERSON_KEY_USE", argument, detail=argument.sql(dialect="duckdb"))
                return None
            lineage = self.lineage(argument, scope)
            form = classify(lineage, self._is_date)
            if form is None:
                self.fail("QRY_AGGREGATE_ARGUMENT", func, detail=f"{name}()")
                return None
            if kind not in ("count", "count_distinct") and not self._dates_coarsened(lineage, func):
                return None
            item.forms.append(form)
        return item

    def _dates_coarsened(self, lineage: exp.Expression, node: exp.Expression) -> bool:
        exact = uncoarsened_dates(lineage, self._is_date)
        if exact:
            self.fail("QRY_DATE_GRANULARITY", node, detail=node.sql(dialect="duckdb")[:120])
        return not exact

    def _is_date(self, column: exp.Column) -> bool:
        leaf = self.leaves.get(column.table)
        return leaf is not None and leaf.role(column.name) is ColumnRole.DATE

    # ------------------------------------------------------------------ places, person keys, subqueries

    def _check_places(self, scope: Scope, context: Context) -> None:
        """Person keys only where allowed, subqueries only as person-key semi-joins, no windows below
        the aggregation layer, ORDER BY and LIMIT only where they apply to released rows."""
        select = scope.select
        places: list[tuple[exp.Expression, str]] = [(p, "select") for p in select.expressions]
        if select.args.get("where") is not None:
            places.append((select.args["where"].this, "where"))
        for join in select.args.get("joins") or []:
            if join.args.get("on") is not None:
                places.append((join.args["on"], "on"))
        if select.args.get("group") is not None:
            places += [(k, "group") for k in select.args["group"].expressions]
        if select.args.get("having") is not None:
            places.append((select.args["having"].this, "having"))
        if select.args.get("order") is not None:
            places += [(o.this, "order") for o in select.args["order"].expressions]
        for expression, place in places:
            self._walk_place(expression, place, scope, context)

    def _walk_place(self, expression: exp.Expression, place: str, scope: Scope, context: Context) -> None:
        stack = [expression]
        while stack:
            node = stack.pop()
            if isinstance(node, exp.Exists):
                exists_subquery(self, node, place, scope, context)
                continue
            if isinstance(node, exp.In) and node.args.get("query") is not None:
                in_subquery(self, node, place, scope, context)
                stack.append(node.this)
                continue
            if isinstance(node, exp.Subquery | exp.Select):
                self.fail(
                    "QRY_SUBQUERY",
                    node,
                    detail="only <person key> [NOT] IN (SELECT <person key> ...) and [NOT] EXISTS on the "
                    "person key filter rows; a subquery value or comparison could difference two groups",
                )
                continue
            if isinstance(node, exp.Column):
                self._column(node, place, scope, context)
                continue
            stack.extend(node.iter_expressions())

    def _column(self, column: exp.Column, place: str, scope: Scope, context: Context) -> None:
        if isinstance(column.this, exp.Star):
            return
        source = scope.sources.get(column.table)
        if source is None:
            if context.outer is not None and column.table in context.outer:
                return  # a correlation, checked by _exists
            if place == "order" and not column.table:
                return  # an output alias
            self.fail("QRY_UNKNOWN_COLUMN", column, detail=column.sql(dialect="duckdb"))
            return
        col = source.columns.get(column.name.lower()) or source.columns.get(column.name)
        if col is None:
            self.fail("QRY_UNKNOWN_COLUMN", column, detail=column.sql(dialect="duckdb"))
            return
        if col.pk:
            person_key_place(self, column, place, scope)

    # ------------------------------------------------------------------ helpers

    def _is_pk(self, node: exp.Expression, scope: Scope) -> bool:
        node = strip(node)
        if isinstance(node, exp.Coalesce):
            return all(self._is_pk(strip(a), scope) for a in _coalesce_args(node))
        if not isinstance(node, exp.Column):
            return False
        source = scope.sources.get(node.table)
        if source is None:
            return False
        col = source.columns.get(node.name.lower()) or source.columns.get(node.name)
        return col is not None and col.pk

    def lineage(self, expression: exp.Expression, scope: Scope) -> exp.Expression:
        """``expression`` with every column replaced by its lineage from the view columns."""
        copy = expression.copy()
        replacements = []
        for column in _columns_not_in_subqueries(copy):
            if isinstance(column.this, exp.Star):
                continue
            source = scope.sources.get(column.table)
            col = None
            if source is not None:
                col = source.columns.get(column.name.lower()) or source.columns.get(column.name)
            if col is not None:
                replacements.append((column, col.lineage))
        for column, lineage in replacements:
            if column is copy:
                return lineage.copy()
            column.replace(lineage.copy())
        return copy

    def _expand_group_all(self, select: exp.Select) -> None:
        group = select.args.get("group")
        if group is None or not group.args.get("all"):
            return
        keys = [_value(p).copy() for p in select.expressions if not _has_aggregate(_value(p))]
        group.set("all", None)
        group.set("expressions", keys)
        if not keys:
            select.set("group", None)


def analyze(tree: exp.Select, policy: GuardPolicy) -> tuple[Plan | None, list[Violation]]:
    """The plan of an allowed query, or the violations that keep it out of the algebra."""
    analyzer = Analyzer(policy)
    root = analyzer.select(tree, Context({}))
    if root is None:
        return None, analyzer.violations or [violation("QRY_GUARD_ERROR")]
    if root.layer is Layer.ROW:
        analyzer.fail(
            "QRY_NOT_AGGREGATE",
            tree,
            detail="Row-level results are never released; aggregate with GROUP BY and count/sum/avg.",
            detail_zh="行级结果从不发布；请用 GROUP BY 与 count/sum/avg 聚合。",
        )
    elif root.layer is Layer.PERSON:
        pk = next((p for p in tree.expressions if analyzer._is_pk(_value(p), root)), None)
        analyzer.fail("QRY_PERSON_KEY_OUTPUT", pk or tree, detail=(pk or tree).sql(dialect="duckdb")[:80])
    if len(analyzer.aggregate_scopes) > 1:
        analyzer.fail(
            "QRY_LAYERS",
            analyzer.aggregate_scopes[1].select,
            detail="a query has exactly one aggregation layer; aggregate per person first (GROUP BY the "
            "person key), then once over persons",
        )
    if analyzer.violations:
        return None, analyzer.violations
    aggregate = analyzer.aggregate_scopes[0]
    return Plan(tree, root, aggregate, analyzer.row_ctes, analyzer.safe), []


# ---------------------------------------------------------------------- tree helpers


def _value(projection: exp.Expression) -> exp.Expression:
    return projection.this if isinstance(projection, exp.Alias) else projection


def _coalesce_args(node: exp.Coalesce) -> list[exp.Expression]:
    return [node.this, *node.expressions]


def _is_per_person_value(col: Col) -> bool:
    return isinstance(col.lineage, exp.Anonymous) and col.lineage.name == "PER_PERSON"


def _columns_not_in_subqueries(node: exp.Expression) -> list[exp.Column]:
    found = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, exp.Subquery | exp.Select | exp.Exists) and current is not node:
            continue
        if isinstance(current, exp.Column):
            found.append(current)
            continue
        stack.extend(current.iter_expressions())
    return found


def _nodes_not_in_subqueries(select: exp.Select, skip: tuple[str, ...] = ()) -> list[exp.Expression]:
    """Nodes of ``select``'s own clauses (minus ``skip``): subqueries themselves, but not inside them."""
    found = []
    stack = [v for k, v in select.args.items() if k not in skip and k != "with_"]
    stack = [n for v in stack for n in (v if isinstance(v, list) else [v]) if isinstance(n, exp.Expression)]
    while stack:
        current = stack.pop()
        found.append(current)
        if isinstance(current, exp.Subquery | exp.Select | exp.Exists | exp.With):
            continue
        stack.extend(current.iter_expressions())
    return found


def _has_aggregate(node: exp.Expression) -> bool:
    return bool(_calls(node))


def _calls(node: exp.Expression) -> list[tuple[exp.AggFunc, exp.Expression, exp.Expression | None]]:
    """Outermost aggregate calls ``(func, node to replace, FILTER condition)``, windows looked through."""
    found = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, exp.Subquery | exp.Select | exp.Exists) and current is not node:
            continue
        if isinstance(current, exp.Window):
            inner = current.this
            if isinstance(inner, exp.AggFunc):
                stack.extend(inner.iter_expressions())
            else:
                stack.append(inner)
            stack.extend(e for k, e in current.args.items() if k != "this" and isinstance(e, exp.Expression))
            continue
        if isinstance(current, exp.Filter) and isinstance(current.this, exp.AggFunc):
            where = current.args.get("expression")
            found.append((current.this, current, where.this if where is not None else None))
            continue
        if isinstance(current, exp.AggFunc):
            found.append((current, current, None))
            continue
        stack.extend(current.iter_expressions())
    return found


def _aggregates_in(select: exp.Select):
    found = []
    for place in _outputs(select):
        found += _calls(place)
    return found


def _outputs(select: exp.Select) -> list[exp.Expression]:
    places = list(select.expressions)
    if select.args.get("having") is not None:
        places.append(select.args["having"].this)
    if select.args.get("order") is not None:
        places += [o.this for o in select.args["order"].expressions]
    return places


def _columns_outside(node: exp.Expression, key_texts: set[str], kinds: tuple[type, ...]) -> list[exp.Column]:
    """Columns outside aggregates and outside any GROUP BY key expression."""
    found = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, exp.AggFunc | exp.Filter | exp.Subquery | exp.Select):
            continue
        bare = strip(current)
        if isinstance(bare, kinds) and bare.sql(dialect="duckdb") in key_texts:
            continue
        if isinstance(current, exp.Window):
            stack.append(current.this)
            stack.extend(e for k, e in current.args.items() if k != "this" and isinstance(e, exp.Expression))
            continue
        if isinstance(current, exp.Column):
            if not current.table:
                continue  # an output alias (ORDER BY n)
            found.append(current)
            continue
        stack.extend(current.iter_expressions())
    return found


def _row_level(node: exp.Expression) -> bool:
    return not any(isinstance(n, exp.AggFunc | exp.Window | exp.Subquery | exp.Select) for n in node.walk())
