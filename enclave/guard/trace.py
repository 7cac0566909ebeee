"""The semantic rules (ARCHITECTURE §3.3–3.4): trace person keys through every SELECT and rewrite.

``Tracer.trace(tree)`` walks a qualified tree from the outermost SELECT down through CTEs,
subqueries and joins. For each SELECT it resolves every column to a person key *track* or a value,
checks where person keys appear, checks aggregates, and rewrites the subquery so that the persons
behind its rows stay countable:

* a subquery that does not aggregate carries each of its tracks out as a hidden column;
* a subquery grouped by a person key is *per person*: it carries that key out;
* any other aggregating subquery is *protected*: it keeps only groups whose every track counts
  0 or at least k distinct persons (a hidden HAVING), and carries nothing.

The outermost SELECT is described by an ``OuterPlan``, which ``enclave.guard.rewrite`` turns into
the minimum-count wrapper (R-QRY-7). Violations are collected, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from sqlglot import exp

from enclave.guard import allowlist
from enclave.guard.lineage import (
    ColumnInfo,
    Shape,
    aggregates_in,
    columns_in,
    indicator_condition,
    is_plain,
    unparen,
)
from enclave.guard.policy import GuardPolicy, ViewPolicy
from enclave.guard.violations import Violation, violation
from enclave.specs import ColumnRole

MAX_TRACKS = 12
HIDDEN = "__enclave_pk"
SIMPLE_PER_PERSON = (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max)
VARIANCES = (exp.Stddev, exp.StddevSamp, exp.StddevPop, exp.Variance, exp.VariancePop)


class Role(Enum):
    OUTER = "outer"
    DERIVED = "derived"
    IN_PK = "in_person_key"
    IN_VALUE = "in_value"
    SCALAR = "scalar"


@dataclass
class Source:
    alias: str
    view: ViewPolicy | None
    shape: Shape | None
    nullable: bool
    base: int


@dataclass
class Scope:
    """One SELECT: its sources, its tracks and which tracks hold the same person (joined on keys)."""

    select: exp.Select
    parent: Scope | None
    sources: dict[str, Source] = field(default_factory=dict)
    tracks: list[exp.Column] = field(default_factory=list)
    track_nullable: list[bool] = field(default_factory=list)
    links: list[int] = field(default_factory=list)

    def find(self, track: int) -> int:
        while self.links[track] != track:
            self.links[track] = self.links[self.links[track]]
            track = self.links[track]
        return track

    def union(self, a: int, b: int) -> None:
        self.links[self.find(a)] = self.find(b)

    def knows_alias(self, alias: str) -> bool:
        scope: Scope | None = self
        while scope is not None:
            if alias in scope.sources:
                return True
            scope = scope.parent
        return False


@dataclass
class DominanceItem:
    """A sum or average of a measure in the outermost query, with the track of its contributors."""

    aggregate: exp.AggFunc
    track: exp.Column


@dataclass
class OuterPlan:
    """What the rewrite needs to know about the outermost SELECT."""

    select: exp.Select
    conditions: list[exp.Expression]
    group_keys: list[exp.Expression]
    count_outputs: list[int]
    dominance: list[DominanceItem]
    has_tracks: bool


@dataclass
class Tracer:
    policy: GuardPolicy
    violations: list[Violation] = field(default_factory=list)
    safe_nodes: set[int] = field(default_factory=set)
    _cte_shapes: dict[int, Shape] = field(default_factory=dict)
    _in_progress: set[int] = field(default_factory=set)
    plan: OuterPlan | None = None

    def fail(self, code: str, node: exp.Expression | None = None, **params: str) -> None:
        found = violation(code, node, **params)
        if all((v.code, v.params) != (found.code, found.params) for v in self.violations):
            self.violations.append(found)

    # ------------------------------------------------------------------ entry points

    def trace(self, tree: exp.Select) -> OuterPlan | None:
        self._select(tree, Role.OUTER, {}, None)
        return self.plan

    def _body(self, node: exp.Expression, ctes: dict[str, exp.CTE], parent: Scope | None) -> Shape:
        """A subquery or CTE body: a SELECT, or a UNION ALL of SELECTs."""
        node = unparen(node)
        if isinstance(node, exp.Subquery):
            return self._body(node.this, ctes, parent)
        if isinstance(node, exp.Select):
            names, infos, tracks = self._select(node, Role.DERIVED, ctes, parent)
            hidden = [f"{HIDDEN}{i}" for i in range(len(tracks))]
            for expr, name in zip(tracks, hidden, strict=True):
                node.append("expressions", exp.alias_(expr, name, quoted=True, copy=False))
            return Shape(columns=dict(zip(names, infos, strict=True)), carried=hidden)
        if isinstance(node, exp.Union):
            return self._union(node, ctes, parent)
        self.fail("QRY_SYNTAX_NOT_ALLOWED", node, detail=node.key.upper())
        return Shape(columns={}, carried=[])

    def _union(self, node: exp.Union, ctes: dict[str, exp.CTE], parent: Scope | None) -> Shape:
        branches: list[exp.Expression] = []
        stack: list[exp.Expression] = [node]
        while stack:
            current = unparen(stack.pop())
            if isinstance(current, exp.Subquery):
                stack.append(current.this)
            elif isinstance(current, exp.Union):
                stack.extend([current.expression, current.this])
            else:
                branches.append(current)
        results = []
        for branch in branches:
            if not isinstance(branch, exp.Select):
                self.fail("QRY_SYNTAX_NOT_ALLOWED", branch, detail=branch.key.upper())
                return Shape(columns={}, carried=[])
            results.append(self._select(branch, Role.DERIVED, ctes, parent))
        widths = {len(names) for names, _, _ in results}
        if len(widths) != 1:
            return Shape(columns={}, carried=[])  # DuckDB refuses it; nothing to trace
        total = sum(len(tracks) for _, _, tracks in results)
        if total > MAX_TRACKS:
            self.fail("QRY_TOO_COMPLEX", node, detail=f"more than {MAX_TRACKS} person keys to trace")
            return Shape(columns={}, carried=[])
        hidden = [f"{HIDDEN}{i}" for i in range(total)]
        offset = 0
        for branch, (_, _, tracks) in zip(branches, results, strict=True):
            for slot, name in enumerate(hidden):
                own = offset <= slot < offset + len(tracks)
                value = tracks[slot - offset] if own else exp.Null()
                branch.append("expressions", exp.alias_(value, name, quoted=True, copy=False))
            offset += len(tracks)
        names = results[0][0]
        columns: dict[str, ColumnInfo] = {}
        carried = list(hidden)
        for position, name in enumerate(names):
            infos = [infos[position] for _, infos, _ in results]
            keys = [info.is_person_key for info in infos]
            roles = frozenset().union(*(info.roles for info in infos))
            if all(keys):
                columns[name] = ColumnInfo(track=len(carried), roles=roles)
                carried.append(name)
            elif any(keys):
                self.fail(
                    "QRY_UNTRACEABLE",
                    node,
                    detail=f"column {name} of a UNION ALL is a person key in some parts and not in others",
                )
                columns[name] = ColumnInfo(plain=False, roles=roles)
            else:
                columns[name] = ColumnInfo(plain=all(info.plain for info in infos), roles=roles)
        return Shape(columns=columns, carried=carried)

    def _cte_shape(self, cte: exp.CTE, ctes: dict[str, exp.CTE], parent: Scope | None) -> Shape:
        key = id(cte)
        if key in self._cte_shapes:
            return self._cte_shapes[key]
        if key in self._in_progress:
            self.fail("QRY_RECURSIVE", cte)
            return Shape(columns={}, carried=[])
        self._in_progress.add(key)
        shape = self._body(cte.this, ctes, None)
        self._in_progress.discard(key)
        self._cte_shapes[key] = shape
        return shape

    # ------------------------------------------------------------------ one SELECT

    def _select(
        self, select: exp.Select, role: Role, ctes: dict[str, exp.CTE], parent: Scope | None
    ) -> tuple[list[str], list[ColumnInfo], list[exp.Expression]]:
        scope = Scope(select=select, parent=parent)
        with_ = select.args.get("with_")
        if with_ is not None:
            ctes = dict(ctes)
            for cte in with_.expressions:
                ctes[cte.alias_or_name.lower()] = cte
        self._sources(scope, ctes)
        resolve = self._resolver(scope)

        where = select.args.get("where")
        if where is not None:
            self._link_keys(scope, where.this)
        group = select.args.get("group")
        keys = self._group_keys(select)

        nested: list[tuple[exp.Expression, str]] = []
        places: list[tuple[exp.Expression, str]] = [(e, "select") for e in select.expressions]
        places += [(join.args["on"], "on") for join in select.args.get("joins") or [] if join.args.get("on")]
        if where is not None:
            places.append((where.this, "where"))
        if group is not None:
            places += [(e, "group") for e in group.expressions]
        having = select.args.get("having")
        if having is not None:
            places.append((having.this, "having"))
        order = select.args.get("order")
        if order is not None:
            places += [(o, "order") for o in order.expressions]
        for expr, place in places:
            self._check_expression(expr, place, role, scope, resolve, nested)
        for query, kind in nested:
            self._nested(query, kind, ctes, scope)

        aggregates: list[exp.AggFunc] = []
        for expr, place in places:
            if place in ("where", "on", "group"):
                if aggregates_in(expr):
                    self.fail("QRY_SYNTAX_NOT_ALLOWED", expr, detail=f"an aggregate in {place.upper()}")
                continue
            aggregates += aggregates_in(expr)
        for agg in aggregates:
            inner = [a for arg in agg.iter_expressions() for a in aggregates_in(arg)]
            if inner:
                self.fail("QRY_NESTED_AGGREGATE", agg, detail=agg.sql(dialect="duckdb", comments=False))
        aggregating = group is not None or bool(aggregates)

        key_track = None
        for key in keys:
            info = _person_key(key, resolve)
            if info is not None:
                key_track = info.track
                break

        if role is Role.OUTER:
            self._outer(scope, resolve, keys, aggregates, aggregating)
            return [], [], []
        if role is Role.DERIVED:
            return self._derived(scope, resolve, keys, key_track, aggregates, aggregating)
        self._predicate_query(scope, role, resolve, key_track, aggregates, aggregating)
        return [], [], []

    def _sources(self, scope: Scope, ctes: dict[str, exp.CTE]) -> None:
        select = scope.select
        from_ = select.args.get("from_")
        if from_ is None:
            self.fail("QRY_NO_SOURCE", select)
            return
        items: list[tuple[exp.Expression, exp.Join | None]] = [(from_.this, None)]
        items += [(join.this, join) for join in select.args.get("joins") or []]
        for item, join in items:
            nullable = join is not None and (join.args.get("side") or "").upper() == "LEFT"
            alias = item.alias_or_name.lower()
            source = Source(alias=alias, view=None, shape=None, nullable=nullable, base=len(scope.tracks))
            if isinstance(item, exp.Table):
                name = item.name.lower()
                if name in ctes:
                    source.shape = self._cte_shape(ctes[name], ctes, scope)
                elif name in self.policy.views:
                    source.view = self.policy.views[name]
                else:
                    self.fail(
                        "QRY_UNKNOWN_TABLE", item, detail=repr(item.name), views=", ".join(self.policy.views)
                    )
                    continue
            elif isinstance(item, exp.Subquery):
                source.shape = self._body(item.this, ctes, scope)
            else:
                self.fail("QRY_SYNTAX_NOT_ALLOWED", item, detail=item.key.upper())
                continue
            if source.view is not None:
                scope.tracks.append(exp.column(source.view.person_key, table=alias, quoted=True))
                scope.track_nullable.append(nullable)
            elif source.shape is not None:
                for hidden in source.shape.carried:
                    scope.tracks.append(exp.column(hidden, table=alias, quoted=True))
                    scope.track_nullable.append(nullable)
            scope.links.extend(range(len(scope.links), len(scope.tracks)))
            scope.sources[alias] = source
            if len(scope.tracks) > MAX_TRACKS:
                self.fail("QRY_TOO_COMPLEX", item, detail=f"more than {MAX_TRACKS} person keys to trace")
            if join is not None:
                self._check_join(scope, join, alias)

    def _resolver(self, scope: Scope):
        def resolve(column: exp.Column) -> ColumnInfo | None:
            alias = column.table.lower() if column.table else ""
            source = scope.sources.get(alias)
            if source is None:
                return None
            name = column.name.lower()
            if source.view is not None:
                role = source.view.columns.get(name)
                if role is None:
                    return None
                if role is ColumnRole.PERSON_KEY:
                    return ColumnInfo(track=source.base, roles=frozenset({role}))
                return ColumnInfo(roles=frozenset({role}))
            if source.shape is not None:
                info = source.shape.columns.get(name)
                if info is None:
                    return None
                if info.is_person_key:
                    return ColumnInfo(track=source.base + info.track, roles=info.roles)
                return info
            return None

        return resolve

    def _check_join(self, scope: Scope, join: exp.Join, alias: str) -> None:
        on = join.args.get("on")
        new_source = scope.sources[alias]
        earlier = [a for a in scope.sources if a != alias]
        new_has_tracks = new_source.view is not None or bool(new_source.shape and new_source.shape.carried)
        earlier_has_tracks = any(
            scope.sources[a].view is not None
            or bool(scope.sources[a].shape and scope.sources[a].shape.carried)
            for a in earlier
        )
        resolve = self._resolver(scope)
        linked = False
        for conjunct in _conjuncts(on) if on is not None else []:
            if not isinstance(conjunct, exp.EQ):
                continue
            left, right = unparen(conjunct.this), unparen(conjunct.expression)
            if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
                continue
            sides = {left.table.lower(), right.table.lower()}
            if alias not in sides or not (sides - {alias}) <= set(earlier) or len(sides) != 2:
                continue
            a, b = resolve(left), resolve(right)
            if a is None or b is None:
                continue
            if a.is_person_key and b.is_person_key:
                scope.union(a.track, b.track)
                self.safe_nodes.add(id(conjunct))
                linked = True
            elif not new_has_tracks or not earlier_has_tracks:
                linked = True
        if not linked:
            self.fail(
                "QRY_JOIN",
                join,
                detail="join on an equality of person keys (a.pid = b.pid), or join an aggregated "
                "subquery on an equality of its group keys",
            )

    def _link_keys(self, scope: Scope, condition: exp.Expression) -> None:
        resolve = self._resolver(scope)
        for conjunct in _conjuncts(condition):
            if isinstance(conjunct, exp.EQ):
                left, right = unparen(conjunct.this), unparen(conjunct.expression)
                if isinstance(left, exp.Column) and isinstance(right, exp.Column):
                    a, b = resolve(left), resolve(right)
                    if a is not None and b is not None and a.is_person_key and b.is_person_key:
                        scope.union(a.track, b.track)
                        self.safe_nodes.add(id(conjunct))

    def _group_keys(self, select: exp.Select) -> list[exp.Expression]:
        group = select.args.get("group")
        if group is None:
            return []
        projections = [unparen(e.this if isinstance(e, exp.Alias) else e) for e in select.expressions]
        if group.args.get("all"):
            keys = [p.copy() for p in projections if not aggregates_in(p)]
            group.set("all", None)
            group.set("expressions", keys)
            return list(group.expressions)
        keys = []
        for key in group.expressions:
            literal = unparen(key)
            if isinstance(literal, exp.Literal) and not literal.is_string and literal.this.isdigit():
                position = int(literal.this) - 1
                if 0 <= position < len(projections):
                    replacement = projections[position].copy()
                    key.replace(replacement)
                    key = replacement
            keys.append(key)
        return keys

    # ------------------------------------------------------------------ expressions

    def _check_expression(self, expr, place, role, scope, resolve, nested) -> None:
        stack = [expr]
        while stack:
            node = stack.pop()
            if isinstance(node, exp.Exists):
                self.fail(
                    "QRY_SUBQUERY", node, detail="EXISTS; use <person key> IN (SELECT <person key> ...)"
                )
                continue
            if isinstance(node, exp.Subquery | exp.Select) and node is not expr:
                parent = node.parent
                if isinstance(parent, exp.In) and parent.args.get("query") is node:
                    target = unparen(parent.this)
                    info = resolve(target) if isinstance(target, exp.Column) else None
                    nested.append((node, "in_pk" if info is not None and info.is_person_key else "in_value"))
                else:
                    nested.append((node, "scalar"))
                continue
            if isinstance(node, exp.Column):
                self._check_column(node, place, role, scope, resolve)
                continue
            stack.extend(node.iter_expressions())

    def _check_column(self, column, place, role, scope, resolve) -> None:
        if isinstance(column.this, exp.Star):
            return
        info = resolve(column)
        if info is None and place == "order" and not column.table:
            aliases = {p.alias_or_name.lower() for p in scope.select.expressions}
            if column.name.lower() in aliases:
                return
        if info is None:
            alias = column.table.lower() if column.table else ""
            if alias and scope.parent is not None and scope.parent.knows_alias(alias):
                self.fail("QRY_CORRELATED_SUBQUERY", column)
            else:
                self.fail("QRY_UNKNOWN_COLUMN", column, detail=column.sql(dialect="duckdb", comments=False))
            return
        if not info.is_person_key:
            return
        if self._person_key_allowed(column, place, role, resolve):
            return
        name = column.sql(dialect="duckdb", comments=False)
        holder = column.parent
        while isinstance(holder, exp.Paren | exp.Alias):
            holder = holder.parent
        bare = isinstance(holder, exp.Select | exp.Group | exp.Ordered)
        if role is Role.OUTER and place in ("select", "group", "order") and bare:
            self.fail("QRY_PERSON_KEY_OUTPUT", column, detail=name)
        else:
            self.fail("QRY_PERSON_KEY_USE", column, detail=name)

    def _person_key_allowed(self, column, place, role, resolve) -> bool:
        node: exp.Expression = column
        parent = node.parent
        while isinstance(parent, exp.Paren) or (
            isinstance(parent, exp.Coalesce) and _person_key(parent, resolve) is not None
        ):
            node, parent = parent, parent.parent
        if isinstance(parent, exp.Distinct) and isinstance(parent.parent, exp.Count | exp.ApproxDistinct):
            return len(parent.expressions) == 1
        if isinstance(parent, exp.Count | exp.ApproxDistinct) and parent.this is node:
            return True
        if place in ("where", "on"):
            if isinstance(parent, exp.EQ):
                other = unparen(parent.expression if parent.this is node else parent.this)
                return _person_key(other, resolve) is not None
            if isinstance(parent, exp.Is) and isinstance(unparen(parent.expression), exp.Null):
                return True
            if isinstance(parent, exp.In) and parent.this is node and parent.args.get("query") is not None:
                return True
        if role is Role.OUTER:
            return False
        if place == "select":
            if isinstance(parent, exp.Alias):
                node, parent = parent, parent.parent
            return isinstance(parent, exp.Select)
        return place == "group" and isinstance(parent, exp.Group)

    def _nested(self, query: exp.Expression, kind: str, ctes, scope: Scope) -> None:
        body = unparen(query.this if isinstance(query, exp.Subquery) else query)
        if not isinstance(body, exp.Select):
            self.fail("QRY_SUBQUERY", query, detail="only a single SELECT may appear in an expression")
            return
        role = {"in_pk": Role.IN_PK, "in_value": Role.IN_VALUE, "scalar": Role.SCALAR}[kind]
        self._select(body, role, ctes, scope)

    # ------------------------------------------------------------------ roles

    def _outer(self, scope, resolve, keys, aggregates, aggregating) -> None:
        select = scope.select
        if not aggregating:
            self.fail("QRY_NOT_AGGREGATE", select, detail="Add GROUP BY and aggregates such as count(*).")
            return
        if select.args.get("distinct") is not None:
            self.fail(
                "QRY_DISTINCT",
                select,
                detail="SELECT DISTINCT is not allowed in the outermost query; use GROUP BY.",
                detail_zh="最外层查询不允许 SELECT DISTINCT；请使用 GROUP BY。",
            )
        grouped = {unparen(k).sql(dialect="duckdb", comments=False) for k in keys}
        grouped_columns = {c.sql(dialect="duckdb", comments=False) for k in keys for c in columns_in(k)}
        for projection in select.expressions:
            value = unparen(projection.this if isinstance(projection, exp.Alias) else projection)
            if value.sql(dialect="duckdb", comments=False) in grouped:
                continue
            for column in _columns_outside_aggregates(value):
                if column.sql(dialect="duckdb", comments=False) not in grouped_columns:
                    self.fail(
                        "QRY_NOT_AGGREGATE",
                        column,
                        detail=f"{_text(column)} is neither aggregated nor grouped.",
                    )
        conditions, dominance = self._protect(scope, resolve, aggregates, outer=True)
        count_outputs = [
            i
            for i, projection in enumerate(select.expressions)
            if isinstance(
                unparen(projection.this if isinstance(projection, exp.Alias) else projection),
                exp.Count | exp.CountIf | exp.ApproxDistinct,
            )
        ]
        self.plan = OuterPlan(
            select=select,
            conditions=conditions,
            group_keys=keys,
            count_outputs=count_outputs,
            dominance=dominance,
            has_tracks=bool(scope.tracks),
        )

    def _derived(self, scope, resolve, keys, key_track, aggregates, aggregating):
        select = scope.select
        names = [p.alias_or_name.lower() for p in select.expressions]
        values = [unparen(p.this if isinstance(p, exp.Alias) else p) for p in select.expressions]
        nullable = any(scope.track_nullable)
        if not aggregating:
            infos = [self._value_info(v, resolve) for v in values]
            if select.args.get("distinct") is not None:
                projected = {scope.find(i.track) for i in infos if i.is_person_key}
                if any(scope.find(t) not in projected for t in range(len(scope.tracks))):
                    self.fail(
                        "QRY_DISTINCT",
                        select,
                        detail="SELECT DISTINCT in a subquery must also select the person key of every "
                        "table it reads; or use GROUP BY.",
                        detail_zh="子查询中的 SELECT DISTINCT 必须同时选出所读每个表的人员标识；"
                        "或改用 GROUP BY。",
                    )
            tracks = [t.copy() for t in scope.tracks]
            return names, [self._shift(i, 0) for i in infos], tracks
        if key_track is not None:
            person = scope.find(key_track)
            strays = [t for t in range(len(scope.tracks)) if scope.find(t) != person]
            if strays:
                self.fail(
                    "QRY_UNTRACEABLE",
                    select,
                    detail="a subquery grouped by a person key also reads rows of other persons; "
                    "join every table on the person key",
                )
            key_column = next(
                unparen(k)
                for k in keys
                if (i := _person_key(k, resolve)) is not None and i.track == key_track
            )
            _and_having(select, exp.Not(this=exp.Is(this=key_column.copy(), expression=exp.Null())))
            infos = []
            for value in values:
                info = _person_key(value, resolve)
                if info is not None and scope.find(info.track) == person:
                    infos.append(ColumnInfo(track=0, roles=info.roles))
                elif isinstance(value, exp.AggFunc):
                    simple = isinstance(value, SIMPLE_PER_PERSON) and not nullable
                    argument = value.this
                    if isinstance(argument, exp.Distinct):
                        argument = argument.expressions[0] if argument.expressions else argument
                    plain = simple and (isinstance(argument, exp.Star) or is_plain(argument, resolve))
                    infos.append(ColumnInfo(plain=plain, roles=_roles(value, resolve)))
                elif aggregates_in(value):
                    infos.append(ColumnInfo(plain=False, roles=_roles(value, resolve)))
                else:
                    infos.append(self._value_info(value, resolve))
            return names, infos, [key_column.copy()]
        conditions, _ = self._protect(scope, resolve, aggregates, outer=False)
        for condition in conditions:
            _and_having(select, condition)
        infos = []
        for value in values:
            if aggregates_in(value):
                infos.append(ColumnInfo(plain=True, roles=_roles(value, resolve)))
            else:
                info = self._value_info(value, resolve)
                if info.is_person_key:
                    self.fail("QRY_PERSON_KEY_USE", value, detail=value.sql(dialect="duckdb", comments=False))
                infos.append(info)
        return names, infos, []

    def _predicate_query(self, scope, role, resolve, key_track, aggregates, aggregating) -> None:
        select = scope.select
        if len(select.expressions) != 1:
            self.fail("QRY_SUBQUERY", select, detail="a subquery in an expression must return one column")
            return
        value = unparen(select.expressions[0])
        value = unparen(value.this) if isinstance(value, exp.Alias) else value
        info = _person_key(value, resolve)
        if role is Role.IN_PK:
            if info is None or not info.is_person_key:
                self.fail(
                    "QRY_SUBQUERY",
                    select,
                    detail="<person key> IN (...) needs a subquery returning a person key",
                )
                return
            person = scope.find(info.track)
            if aggregating and (key_track is None or scope.find(key_track) != person):
                self.fail(
                    "QRY_SUBQUERY",
                    select,
                    detail="an aggregating subquery in IN must group by the person key",
                )
            if any(scope.find(t) != person for t in range(len(scope.tracks))):
                self.fail(
                    "QRY_UNTRACEABLE",
                    select,
                    detail="the subquery in IN reads rows of other persons; "
                    "join every table on the person key",
                )
            return
        if info is not None and info.is_person_key:
            self.fail("QRY_PERSON_KEY_USE", value, detail=value.sql(dialect="duckdb", comments=False))
            return
        if not aggregating or key_track is not None:
            self.fail(
                "QRY_SUBQUERY",
                select,
                detail="a subquery used as a value must aggregate (it is then held to the minimum count); "
                "to filter persons use <person key> IN (SELECT <person key> ...)",
            )
            return
        if role is Role.SCALAR and select.args.get("group") is not None:
            self.fail("QRY_SUBQUERY", select, detail="a scalar subquery cannot use GROUP BY")
            return
        conditions, _ = self._protect(scope, resolve, aggregates, outer=False)
        for condition in conditions:
            _and_having(select, condition)

    # ------------------------------------------------------------------ the minimum count

    def _protect(self, scope, resolve, aggregates, *, outer: bool):
        """Conditions that hold when every group rests on 0 or >= k persons per track and population."""
        populations: dict[str, exp.Expression] = {}
        dominance: list[DominanceItem] = []
        for agg in aggregates:
            for predicate in self._populations(agg, resolve):
                populations.setdefault(predicate.sql(dialect="duckdb", comments=False), predicate)
            if outer and isinstance(agg, exp.Sum | exp.Avg):
                item = self._dominance_item(agg, scope, resolve)
                if item is not None:
                    dominance.append(item)
        tracks = _representatives(scope)
        if not tracks:
            return [], dominance
        k = self.policy.k
        distinct = not _rows_are_persons(scope)
        conditions: list[exp.Expression] = []
        persons = [_count_persons(t, distinct=distinct) for t in tracks]
        if len(persons) > 1:
            conditions += [_zero_or_at_least(c, k) for c in persons]
        conditions.append(_any(_at_least(c.copy(), k) for c in persons))
        for predicate in populations.values():
            for track, total in zip(tracks, persons, strict=True):
                conditions += _population_conditions(predicate, track, total, k, distinct=distinct)
        return conditions, dominance

    def _populations(self, agg: exp.AggFunc, resolve) -> list[exp.Expression]:
        name = agg.sql_name().lower() if hasattr(agg, "sql_name") else agg.key
        if type(agg) not in allowlist.SAFE_AGGREGATES:
            self.fail("QRY_UNSAFE_AGGREGATE", agg, detail=f"{name}()")
            return []
        if isinstance(agg, exp.CountIf):
            return [agg.this]
        if isinstance(agg, exp.Count | exp.ApproxDistinct):
            argument = agg.this
            if argument is None or isinstance(argument, exp.Star):
                return []
            distinct = isinstance(argument, exp.Distinct) or isinstance(agg, exp.ApproxDistinct)
            if isinstance(argument, exp.Distinct):
                argument = argument.expressions[0]
            if distinct and _person_key(argument, resolve) is None and not is_plain(argument, resolve):
                self.fail("QRY_AGGREGATE_ARGUMENT", agg, detail=f"{name}(DISTINCT ...)")
                return []
            return [_not_null(argument)]
        arguments = [agg.this] + ([agg.expression] if isinstance(agg, exp.Corr) else [])
        if isinstance(agg, exp.Sum | exp.Avg):
            condition = indicator_condition(agg.this)
            if condition is not None:
                return [condition]
        if all(a is not None and is_plain(a, resolve) for a in arguments):
            return [_not_null(a) for a in arguments]
        self.fail("QRY_AGGREGATE_ARGUMENT", agg, detail=f"{name}()")
        return []

    def _dominance_item(self, agg, scope, resolve) -> DominanceItem | None:
        argument = agg.this
        if indicator_condition(argument) is not None:
            return None
        if ColumnRole.MEASURE not in _roles(argument, resolve):
            return None
        for column in columns_in(argument):
            source = scope.sources.get(column.table.lower())
            if source is None:
                continue
            width = 1 if source.view is not None else len(source.shape.carried if source.shape else [])
            if width:
                return DominanceItem(aggregate=agg, track=scope.tracks[source.base])
        return None

    def _value_info(self, value, resolve) -> ColumnInfo:
        key = _person_key(value, resolve)
        if key is not None:
            return key
        if isinstance(value, exp.Column):
            info = resolve(value)
            if info is not None:
                return info
        return ColumnInfo(plain=is_plain(value, resolve), roles=_roles(value, resolve))

    @staticmethod
    def _shift(info: ColumnInfo, offset: int) -> ColumnInfo:
        if info.is_person_key:
            return ColumnInfo(track=info.track + offset, roles=info.roles)
        return info


# ---------------------------------------------------------------------- helpers


def _text(node: exp.Expression) -> str:
    return node.sql(dialect="duckdb", comments=False)


def _person_key(node: exp.Expression, resolve) -> ColumnInfo | None:
    """The track of a bare person key, or of COALESCE over person keys (a JOIN ... USING column)."""
    node = unparen(node)
    if isinstance(node, exp.Column):
        info = resolve(node)
        return info if info is not None and info.is_person_key else None
    if isinstance(node, exp.Coalesce):
        parts = [node.this, *node.expressions]
        infos = [_person_key(p, resolve) for p in parts]
        if all(i is not None for i in infos):
            return infos[0]
    return None


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    condition = unparen(condition)
    if isinstance(condition, exp.And):
        return _conjuncts(condition.this) + _conjuncts(condition.expression)
    return [condition]


def _columns_outside_aggregates(node: exp.Expression) -> list[exp.Column]:
    found = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, exp.AggFunc | exp.Subquery):
            continue
        if isinstance(current, exp.Column):
            found.append(current)
            continue
        stack.extend(current.iter_expressions())
    return found


def _roles(node: exp.Expression, resolve) -> frozenset[ColumnRole]:
    roles: set[ColumnRole] = set()
    for column in columns_in(node):
        info = resolve(column)
        if info is not None:
            roles |= info.roles
    return frozenset(roles)


def _representatives(scope: Scope) -> list[exp.Column]:
    """One track per set of joined person keys, plus every track on the null side of a LEFT JOIN."""
    chosen: list[exp.Column] = []
    seen: set[int] = set()
    for index, track in enumerate(scope.tracks):
        root = scope.find(index)
        if scope.track_nullable[index] or root not in seen:
            chosen.append(track)
            seen.add(root)
    return chosen


def _rows_are_persons(scope: Scope) -> bool:
    """Is every row of this SELECT a different person, so that count(*) = count(DISTINCT pid)?

    Only when it reads one view, directly and without joins, whose person key preparation measured
    as unique and non-NULL on every row (``ViewPolicy.unique_person_key``). Any subset of those rows (WHERE,
    IN, GROUP BY, ROLLUP) keeps that property; a subquery, a CTE (even one named like the view, which
    resolves to the CTE) or a join can repeat a person, so they keep DISTINCT.
    """
    if len(scope.sources) != 1 or scope.select.args.get("joins"):
        return False
    source = next(iter(scope.sources.values()))
    return source.view is not None and source.view.unique_person_key


def _population_conditions(
    predicate: exp.Expression, track: exp.Column, total: exp.Expression, k: int, *, distinct: bool = True
) -> list[exp.Expression]:
    """The persons an aggregate uses, and the persons it leaves out, each number 0 or at least k.

    For ``x IS NOT NULL`` the expensive count of persons with a value is bounded from below by all
    persons minus those with a NULL (usually few rows, so cheap to count): conservative and fast.
    """
    inner = unparen(predicate)
    if (
        isinstance(inner, exp.Not)
        and isinstance(inner.this, exp.Is)
        and isinstance(inner.this.expression, exp.Null)
    ):
        value = inner.this.this
        nulls = _count_persons(track, exp.Is(this=value.copy(), expression=exp.Null()), distinct=distinct)
        with_value = exp.Count(this=value.copy())
        enough = exp.GTE(
            this=exp.Sub(this=total.copy(), expression=nulls.copy()), expression=exp.Literal.number(k)
        )
        none = exp.EQ(this=with_value, expression=exp.Literal.number(0))
        return [_zero_or_at_least(nulls, k), exp.Paren(this=exp.Or(this=none, expression=enough))]
    inside = _count_persons(track, predicate, distinct=distinct)
    outside = _count_persons(
        track,
        exp.Not(this=exp.Coalesce(this=exp.Paren(this=predicate.copy()), expressions=[exp.false()])),
        distinct=distinct,
    )
    return [_zero_or_at_least(inside, k), _zero_or_at_least(outside, k)]


def _not_null(value: exp.Expression) -> exp.Expression:
    return exp.Not(this=exp.Is(this=exp.Paren(this=value.copy()), expression=exp.Null()))


def _count_persons(
    track: exp.Column, predicate: exp.Expression | None = None, *, distinct: bool = True
) -> exp.Expression:
    """count(DISTINCT track), or count(*) when the caller knows each row is another, non-NULL person."""
    count = exp.Count(this=exp.Distinct(expressions=[track.copy()]) if distinct else exp.Star())
    if predicate is None:
        return count
    return exp.Filter(this=count, expression=exp.Where(this=predicate.copy()))


def _at_least(count: exp.Expression, k: int) -> exp.Expression:
    return exp.GTE(this=count, expression=exp.Literal.number(k))


def _zero_or_at_least(count: exp.Expression, k: int) -> exp.Expression:
    return exp.Paren(
        this=exp.Or(
            this=exp.EQ(this=count, expression=exp.Literal.number(0)), expression=_at_least(count.copy(), k)
        )
    )


def _any(conditions) -> exp.Expression:
    conditions = list(conditions)
    result = conditions[0]
    for condition in conditions[1:]:
        result = exp.Or(this=result, expression=condition)
    return exp.Paren(this=result)


def _and_having(select: exp.Select, condition: exp.Expression) -> None:
    having = select.args.get("having")
    if having is None:
        select.set("having", exp.Having(this=condition))
    else:
        having.set("this", exp.And(this=exp.Paren(this=having.this), expression=condition))
