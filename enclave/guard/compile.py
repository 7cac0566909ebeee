"""Compile an allowed plan into the SQL that runs: the checked aggregation, then the post layer.

The aggregation layer becomes one statement over the data (``Compiled.sql``) whose CTEs are:

* ``__enclave_e``: the analyst's aggregates, exactly as written, per group (``__enclave_g<i>``
  are the group keys, ``__enclave_a<j>`` the aggregate values);
* ``__enclave_b``: the same rows with the group keys, the person key and, per population and
  dominance item, the row's contribution;
* ``__enclave_pp``: one row per group and person: does the person contribute to each population,
  and their total contribution to each measure (for moments, also their count and sum of squares,
  so the contribution can be centred on the group mean);
* ``__enclave_c``: per group: persons, persons per population, dominance totals and top values;
* ``__enclave_q``/``__enclave_dv<j>``: the extremes rule of quantiles and ``count(DISTINCT x)``
  over values held by at least k persons;
* ``__enclave_sk``: per group and population, an invertible Bloom lookup table of its persons for
  the differencing ledger (``enclave.guard.ledger``).

``enclave.guard.execute`` decides per value from these columns, asks the ledger, and only then runs
``Compiled.post_sql`` (the analyst's projections, HAVING, windows, ORDER BY and LIMIT, and every
SELECT above the aggregation layer) over the released cells on a connection that holds nothing else.
Everything is built from sqlglot expressions; nothing of the analyst's is pasted into SQL text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from enclave.guard.algebra import Aggregate, Plan, Scope
from enclave.guard.harden import harden, harden_value
from enclave.guard.ledger import TABLES, cells_per_table
from enclave.guard.policy import GuardPolicy
from enclave.guard.rules.arguments import strip

P = "__enclave_"
D = "duckdb"
CELLS = f"{P}cells"
COUNT_KINDS = ("count_star", "count", "count_persons", "count_distinct")


@dataclass
class Check:
    """How to decide one released aggregate value from the compiled columns."""

    index: int
    kind: str
    population: int  # index into the populations; 0 is the whole group
    dominance: list[int] = field(default_factory=list)
    quantile: int | None = None
    distinct_values: bool = False
    strict: bool = False  # an indicator or filtered population: the complement must be >= k, never 0
    binary: int | None = None  # index of the "every value is 0 or 1" column: then strict too


@dataclass
class Compiled:
    sql: str
    post_sql: str
    keys: int
    checks: list[Check]
    columns: list[str]


def _id(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _num(value: float | int) -> exp.Literal:
    return exp.Literal.number(value)


def _alias(value: exp.Expression, name: str) -> exp.Alias:
    return exp.alias_(value, name, quoted=True, copy=False)


def _not_null(value: exp.Expression) -> exp.Expression:
    return exp.not_(exp.Is(this=exp.paren(value.copy(), copy=False), expression=exp.Null()))


def _and(*conditions: exp.Expression | None) -> exp.Expression:
    present = [c for c in conditions if c is not None]
    return exp.and_(*present, copy=True) if present else exp.true()


def _cte(name: str, query: exp.Expression) -> exp.CTE:
    return exp.CTE(this=query, alias=exp.TableAlias(this=_id(name)))


def _matching(left: str, right: str, keys: int) -> exp.Expression:
    if not keys:
        return exp.true()
    return exp.and_(
        *[
            exp.NullSafeEQ(this=_col(f"{P}g{i}", left), expression=_col(f"{P}g{i}", right))
            for i in range(keys)
        ]
    )


def compile_plan(plan: Plan, policy: GuardPolicy, names: list[str], max_rows: int) -> Compiled:
    """The checked aggregation statement and the post-layer statement of ``plan``; the cells it
    fetches stop one past ``max_rows``, the row limit of the query.

    The analyst's fragments (keys, aggregate calls, their arguments and conditions, FROM and WHERE,
    row-layer CTEs) are hardened and rendered by sqlglot; the guard's own CTEs depend only on the
    query's *shape* (how many keys, populations, dominance items ...), so they are built with
    sqlglot's builders once per shape and reused (``_fixed``). The statement is their concatenation.
    """
    scope = plan.aggregate
    safe = plan.safe
    keys = [k.copy() for k in scope.keys]
    populations: dict[exp.Expression, int] = {exp.true(): 0}
    population_sql: list[exp.Expression] = [exp.true()]
    dominance: list[tuple[exp.Expression, bool]] = []  # (row contribution, centred)
    quantiles: list[exp.Expression] = []
    distinct: dict[int, exp.Expression] = {}
    binaries: list[exp.Expression] = []
    checks: list[Check] = []

    for j, item in enumerate(scope.aggregates):
        contributes = _contribution(item, item.condition)
        if contributes not in populations:  # sqlglot expressions compare and hash by structure
            populations[contributes] = len(population_sql)
            population_sql.append(contributes)
        check = Check(index=j, kind=item.kind, population=populations[contributes])
        check.strict = item.filtered
        magnitudes = item.magnitudes() if item.kind in ("sum", "moment", "bivariate") else []
        if magnitudes:
            # Each magnitude is dominated or not on its own: an indicator beside it (regr_avgy(x, flag))
            # must not switch the test off for x.
            check.binary = len(binaries)
            binaries.append(exp.In(this=exp.paren(magnitudes[0], copy=False), expressions=[_num(0), _num(1)]))
            for argument in magnitudes:
                check.dominance.append(len(dominance))
                dominance.append((_when(contributes, argument), item.kind != "sum"))
        if item.kind == "quantile":
            check.quantile = len(quantiles)
            quantiles.append(_when(contributes, item.args[0]))
        if item.kind == "count_distinct":
            check.distinct_values = True
            distinct[j] = _when(contributes, item.args[0])
        checks.append(check)

    def render(node: exp.Expression) -> str:
        if isinstance(node, exp.Column | exp.Literal | exp.Boolean):
            return node.sql(dialect=D, comments=False)  # a bare column or constant cannot fail
        return harden_value(node.copy(), safe).sql(dialect=D, comments=False)

    source = _source_sql(scope, safe)
    key_sql = [render(k) for k in keys]
    exact_columns = [(k, f"{P}g{i}") for i, k in enumerate(key_sql)]
    exact_columns += [(render(_exact_value(item)), f"{P}a{j}") for j, item in enumerate(scope.aggregates)]
    if not exact_columns:
        exact_columns = [("COUNT(*)", f"{P}a_")]
    # Positions, not GROUP BY ALL: DuckDB 1.5 fails to bind GROUP BY ALL over TRY(...) keys.
    positions = ", ".join(str(i + 1) for i in range(len(keys)))
    exact = _select_sql(exact_columns, source + (f" GROUP BY {positions}" if keys else ""))
    base_columns = [(k, f"{P}g{i}") for i, k in enumerate(key_sql)]
    # Persons as 64-bit hashes of the (already keyed) pseudonym: cheaper to group by than text, and
    # what the ledger's sketches are made of.
    base_columns.append((f"HASH({render(scope.person)})", f"{P}p"))
    base_columns += [(render(p), f"{P}r{i}") for i, p in enumerate(population_sql) if i]
    base_columns += [(render(v), f"{P}x{d}") for d, (v, _) in enumerate(dominance)]
    base_columns += [(render(v), f"{P}y{q}") for q, v in enumerate(quantiles)]
    base_columns += [(render(v), f"{P}v{j}") for j, v in distinct.items()]
    base_columns += [(render(v), f"{P}z{i}") for i, v in enumerate(binaries)]
    base = _select_sql(base_columns, source)

    shape = _Shape(
        keys=len(keys),
        aggregates=len(scope.aggregates),
        populations=len(population_sql),
        centred=tuple(centred for _, centred in dominance),
        binaries=len(binaries),
        quantiles=tuple((c.quantile, c.index) for c in checks if c.quantile is not None),
        distinct=tuple(distinct),
        width=cells_per_table(policy.k),
        top=max(policy.dominance_n, 2),
        k=policy.k,
        limit=max_rows + 1,
        unique=scope.unique,
    )
    fixed_ctes, final = _fixed(shape)
    ctes = [cte.copy() for cte in plan.row_ctes]
    for cte in ctes:
        harden(cte.this, safe)
    parts = [cte.sql(dialect=D, comments=False) for cte in ctes]
    parts += [f"{_q(f'{P}e')} AS ({exact})", f"{_q(f'{P}b')} AS ({base})"]
    # __enclave_pp feeds the cells, the sketches and the quantile counts: computed once.
    parts += [
        f"{_q(name)} AS {'MATERIALIZED ' if name == f'{P}pp' else ''}({body})" for name, body in fixed_ctes
    ]
    sql = "WITH " + ", ".join(parts) + " " + final

    post_sql = _post(plan, scope, keys, names)
    return Compiled(
        sql=sql,
        post_sql=post_sql,
        keys=len(keys),
        checks=checks,
        columns=list(names),
    )


@dataclass(frozen=True)
class _Shape:
    keys: int
    aggregates: int
    populations: int
    centred: tuple[bool, ...]
    binaries: int
    quantiles: tuple[tuple[int, int], ...]  # (quantile index, aggregate index)
    distinct: tuple[int, ...]
    width: int
    top: int
    k: int
    limit: int
    unique: bool  # every row is another person (measured at preparation): no per-person grouping


@functools.lru_cache(maxsize=4096)
def _q(name: str) -> str:
    """One of the guard's own names, quoted (they never contain a quote)."""
    return exp.to_identifier(name, quoted=True).sql(dialect=D)


def _select_sql(columns: list[tuple[str, str]], tail: str) -> str:
    return "SELECT " + ", ".join(f"{sql} AS {_q(name)}" for sql, name in columns) + tail


def _source_sql(scope: Scope, safe: set[str]) -> str:
    """The aggregation layer's FROM, JOINs and WHERE, hardened and rendered (" FROM ... WHERE ...")."""
    select = scope.select
    holder = exp.Select(expressions=[exp.Star()])
    holder.set("from_", select.args["from_"].copy())
    if select.args.get("joins"):
        holder.set("joins", [j.copy() for j in select.args["joins"]])
    if select.args.get("where") is not None:
        holder.set("where", select.args["where"].copy())
    harden(holder, safe)
    text = holder.sql(dialect=D, comments=False)
    assert text.startswith("SELECT * ")
    return text[len("SELECT *") :]


def _when(condition: exp.Expression, value: exp.Expression) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=condition.copy(), true=value.copy())])


@functools.lru_cache(maxsize=1024)
def _fixed(shape: _Shape) -> tuple[tuple[tuple[str, str], ...], str]:
    """The guard's own CTEs and final SELECT for one shape of query, rendered once."""
    group_keys = [_col(f"{P}g{i}") for i in range(shape.keys)]
    per_person = _per_person(shape, group_keys)
    ctes: list[tuple[str, exp.Expression]] = [(f"{P}pp", per_person)]
    contributions_from = f"{P}pp"
    if any(shape.centred):
        ctes.append((f"{P}pm", _centred(shape.centred, group_keys)))
        contributions_from = f"{P}pm"
    ctes.append(
        (
            f"{P}c",
            _cells(
                shape.populations, shape.centred, shape.binaries, group_keys, contributions_from, shape.top
            ),
        )
    )
    outputs: list[exp.Expression] = [
        *[_col(f"{P}g{i}", "e") for i in range(shape.keys)],
        *[_col(f"{P}a{j}", "e") for j in range(shape.aggregates)],
        _col(f"{P}n", "c"),
        *[_col(f"{P}in{i}", "c") for i in range(1, shape.populations)],
        *[_col(f"{P}t{d}", "c") for d in range(len(shape.centred))],
        *[_col(f"{P}top{d}", "c") for d in range(len(shape.centred))],
        *[_col(f"{P}z{i}", "c") for i in range(shape.binaries)],
    ]
    joined = exp.select().from_(exp.to_table(f"{P}e").as_("e", quoted=True), copy=False)
    joined = joined.join(
        exp.to_table(f"{P}c").as_("c", quoted=True), on=_matching("e", "c", shape.keys), copy=False
    )
    if shape.quantiles:
        ctes.append((f"{P}q", _quantile_counts(shape.quantiles, shape.keys)))
        joined = joined.join(
            exp.to_table(f"{P}q").as_("q", quoted=True),
            on=_matching("e", "q", shape.keys),
            join_type="left",
            copy=False,
        )
        for q in range(len(shape.quantiles)):
            outputs += [_col(f"{P}below{q}", "q"), _col(f"{P}above{q}", "q")]
    for j in shape.distinct:
        ctes.append((f"{P}dv{j}", _distinct_values(j, group_keys, shape.k)))
        joined = joined.join(
            exp.to_table(f"{P}dv{j}").as_(f"dv{j}", quoted=True),
            on=_matching("e", f"dv{j}", shape.keys),
            join_type="left",
            copy=False,
        )
        outputs.append(_alias(_col(f"{P}dv", f"dv{j}"), f"{P}dv{j}"))
    ctes.append((f"{P}sk", _sketch(shape.populations, group_keys, shape.width)))
    joined = joined.join(
        exp.to_table(f"{P}sk").as_("sk", quoted=True),
        on=_matching("e", "sk", shape.keys),
        join_type="left",
        copy=False,
    )
    outputs.append(_col(f"{P}sketch", "sk"))
    joined = joined.select(*outputs, copy=False).limit(shape.limit, copy=False)
    rendered = tuple((name, body.sql(dialect=D)) for name, body in ctes)
    return rendered, joined.sql(dialect=D)


def _double(value: exp.Expression) -> exp.Expression:
    return exp.TryCast(this=value.copy(), to=exp.DataType.build("DOUBLE"))


def _contribution(item: Aggregate, condition: exp.Expression | None) -> exp.Expression:
    """The row-level condition under which a row contributes to the aggregate (its population)."""
    if item.kind in ("count_star", "count_persons") and not item.args:
        return condition if condition is not None else exp.true()
    parts: list[exp.Expression | None] = [condition]
    for i, argument in enumerate(item.args):
        parts.append(_not_null(argument))
        dates = i < len(item.forms) and item.forms[i].dates  # person keys have no form
        if item.kind in ("sum", "moment", "bivariate") and not dates:
            parts.append(
                exp.func(
                    "coalesce",
                    exp.NEQ(this=exp.paren(argument.copy(), copy=False), expression=_num(0)),
                    exp.false(),
                )
            )
    return _and(*parts)


def _exact_value(item: Aggregate) -> exp.Expression:
    if item.kind == "count_distinct":
        return exp.Count(this=exp.Star())  # a placeholder: the value comes from __enclave_dv<j>
    return item.call.copy()


def _centred(centred_items: tuple[bool, ...], group_keys) -> exp.Select:
    """Each person's contribution to the sum of squares around the group mean (moments)."""
    partition = [k.copy() for k in group_keys]
    select = exp.select(exp.Star()).from_(f"{P}pp")
    for d, centred in enumerate(centred_items):
        if not centred:
            continue
        mean = exp.Div(
            this=exp.Window(this=exp.Sum(this=_col(f"{P}s{d}")), partition_by=[k.copy() for k in partition]),
            expression=exp.Window(
                this=exp.Sum(this=_col(f"{P}k{d}")), partition_by=[k.copy() for k in partition]
            ),
        )
        select = select.select(_alias(mean, f"{P}m{d}"), copy=False)
    return (
        exp.select(exp.Star())
        .from_(select.subquery(f"{P}pw", copy=False))
        .select(
            *[
                _alias(_centred_contribution(d), f"{P}u{d}")
                for d, centred in enumerate(centred_items)
                if centred
            ],
            copy=False,
        )
    )


def _centred_contribution(d: int) -> exp.Expression:
    """q - 2ms + km²: the person's rows' squared deviations from the group mean m."""
    template = sqlglot.parse_one("q - 2 * m * s + k * m * m", dialect=D)
    return exp.replace_placeholders(
        template.transform(
            lambda n: exp.Placeholder(this=n.name) if isinstance(n, exp.Column) else n, copy=True
        ),
        q=_double(_col(f"{P}q{d}")),
        m=_col(f"{P}m{d}"),
        s=_double(_col(f"{P}s{d}")),
        k=_col(f"{P}k{d}"),
    )


def _cells(
    populations: int, centred_items: tuple[bool, ...], binaries: int, group_keys, source: str, top: int
) -> exp.Select:
    select = exp.select(*[k.copy() for k in group_keys], _alias(exp.Count(this=exp.Star()), f"{P}n"))
    for i in range(binaries):
        select = select.select(_alias(exp.func("bool_and", _col(f"{P}z{i}")), f"{P}z{i}"), copy=False)
    for i in range(1, populations):
        count = exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=_col(f"{P}r{i}")))
        select = select.select(_alias(count, f"{P}in{i}"), copy=False)
    for d, centred in enumerate(centred_items):
        value = exp.Abs(this=_double(_col(f"{P}u{d}" if centred else f"{P}s{d}")))
        select = select.select(
            _alias(exp.Sum(this=value), f"{P}t{d}"),
            _alias(exp.Max(this=value.copy(), expressions=[_num(top)]), f"{P}top{d}"),
            copy=False,
        )
    select = select.from_(source, copy=False)
    if group_keys:
        select = select.group_by(*[k.copy() for k in group_keys], copy=False)
    return select


def _quantile_counts(quantiles: tuple[tuple[int, int], ...], keys: int) -> exp.Select:
    """Per quantile: persons with a value at or below it, and at or above it (the extremes rule)."""
    select = exp.select(*[_col(f"{P}g{i}", "pp") for i in range(keys)])
    for q, index in quantiles:
        value = _double(_col(f"{P}a{index}", "e"))
        below = exp.LTE(this=_double(_col(f"{P}lo{q}", "pp")), expression=value)
        above = exp.GTE(this=_double(_col(f"{P}hi{q}", "pp")), expression=value.copy())
        select = select.select(
            _alias(
                exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=below)), f"{P}below{q}"
            ),
            _alias(
                exp.Filter(this=exp.Count(this=exp.Star()), expression=exp.Where(this=above)), f"{P}above{q}"
            ),
            copy=False,
        )
    select = select.from_(exp.to_table(f"{P}pp").as_("pp", quoted=True), copy=False)
    select = select.join(
        exp.to_table(f"{P}e").as_("e", quoted=True), on=_matching("pp", "e", keys), copy=False
    )
    if keys:
        select = select.group_by(*[_col(f"{P}g{i}", "pp") for i in range(keys)], copy=False)
    return select


def _distinct_values(j: int, group_keys, k: int) -> exp.Select:
    """count(DISTINCT x) over the values of x that at least k persons hold (docs/guard.md)."""
    value = _col(f"{P}v{j}")
    held = (
        exp.select(*[g.copy() for g in group_keys], value.copy())
        .from_(f"{P}b")
        .where(_not_null(value))
        .group_by(*[g.copy() for g in group_keys], value.copy())
        .having(exp.GTE(this=exp.Count(this=exp.Distinct(expressions=[_col(f"{P}p")])), expression=_num(k)))
    )
    select = exp.select(*[g.copy() for g in group_keys], _alias(exp.Count(this=exp.Star()), f"{P}dv"))
    select = select.from_(held.subquery(f"{P}h", copy=False), copy=False)
    if group_keys:
        select = select.group_by(*[g.copy() for g in group_keys], copy=False)
    return select


def _per_person(shape: _Shape, group_keys: list[exp.Column]) -> exp.Select:
    """One row per group and person: does the person contribute, and how much.

    When every row is another person (one view measured unique at preparation, or a person layer),
    a row already is the person's whole contribution, and the grouping is skipped.
    """
    one = shape.unique

    def agg(func: type[exp.Expression], value: exp.Expression, name: str | None = None) -> exp.Expression:
        if not one:
            return exp.func(name, value) if name else func(this=value)
        return value

    per_person = exp.select(*[k.copy() for k in group_keys], _col(f"{P}p"))
    for i in range(1, shape.populations):
        per_person = per_person.select(_alias(agg(None, _col(f"{P}r{i}"), "bool_or"), f"{P}r{i}"), copy=False)
    for d, centred in enumerate(shape.centred):
        x = _col(f"{P}x{d}")
        per_person = per_person.select(_alias(agg(exp.Sum, x), f"{P}s{d}"), copy=False)
        if centred:
            count = (
                exp.Cast(this=_not_null(x), to=exp.DataType.build("BIGINT"))
                if one
                else exp.Count(this=x.copy())
            )
            square = exp.Mul(this=_double(x), expression=_double(x))
            per_person = per_person.select(
                _alias(count, f"{P}k{d}"), _alias(agg(exp.Sum, square), f"{P}q{d}"), copy=False
            )
    for i in range(shape.binaries):
        per_person = per_person.select(
            _alias(agg(None, _col(f"{P}z{i}"), "bool_and"), f"{P}z{i}"), copy=False
        )
    for q in range(len(shape.quantiles)):
        y = _col(f"{P}y{q}")
        per_person = per_person.select(
            _alias(agg(exp.Min, y), f"{P}lo{q}"), _alias(agg(exp.Max, y.copy()), f"{P}hi{q}"), copy=False
        )
    per_person = per_person.from_(exp.Table(this=_id(f"{P}b")), copy=False)
    if not one:
        per_person = per_person.group_by(*[k.copy() for k in group_keys], _col(f"{P}p"), copy=False)
    return per_person


def _ubigint(value: exp.Expression) -> exp.Expression:
    return exp.Cast(this=value, to=exp.DataType.build("UBIGINT", dialect=D))


def _sketch(populations: int, group_keys, width: int) -> exp.Select:
    """Per group and population: an invertible Bloom lookup table of its persons (``ledger``).

    Each person (``hash`` of the person key) lands in one cell of each of ``TABLES`` sub-tables of
    ``width`` cells, chosen from different bits of the hash; a cell keeps the count, the XOR of the
    hashes and the XOR of a check value (``ledger.check_value``: the product of the hash's halves).
    Lists and ``unnest`` fan each person out to their populations and cells (a cross join with a
    VALUES list costs several times more in DuckDB).
    """
    hashed = _col(f"{P}p")  # already the person's hash (see compile_plan)
    low = exp.BitwiseAnd(this=exp.paren(hashed.copy(), copy=False), expression=_num(0xFFFFFFFF))
    high = exp.BitwiseRightShift(this=exp.paren(hashed.copy(), copy=False), expression=_num(32))
    persons = exp.select(
        *[g.copy() for g in group_keys],
        _alias(hashed, f"{P}id"),
        _alias(exp.Mul(this=_ubigint(high), expression=_ubigint(low)), f"{P}ck"),
        *[_col(f"{P}r{i}") for i in range(1, populations)],
    ).from_(exp.Table(this=_id(f"{P}pp")), copy=False)
    memberships = [_num(0)] + [
        exp.Case(ifs=[exp.If(this=_col(f"{P}r{i}"), true=_num(i))]) for i in range(1, populations)
    ]
    by_population = exp.select(
        *[g.copy() for g in group_keys],
        _col(f"{P}id"),
        _col(f"{P}ck"),
        _alias(exp.Unnest(expressions=[exp.Array(expressions=memberships)]), f"{P}pop"),
    ).from_(persons.subquery(f"{P}ph", copy=False), copy=False)
    hashed_id = _col(f"{P}id")
    cells_of = [
        exp.Add(
            this=_num(t * width),
            expression=exp.Mod(
                this=exp.paren(exp.BitwiseRightShift(this=hashed_id.copy(), expression=_num(16 * t))),
                expression=_num(width),
            ),
        )
        for t in range(TABLES)
    ]
    by_cell = (
        exp.select(
            *[g.copy() for g in group_keys],
            _col(f"{P}id"),
            _col(f"{P}ck"),
            _col(f"{P}pop"),
            _alias(exp.Unnest(expressions=[exp.Array(expressions=cells_of)]), f"{P}cell"),
        )
        .from_(by_population.subquery(f"{P}pm_", copy=False), copy=False)
        .where(exp.not_(exp.Is(this=_col(f"{P}pop"), expression=exp.Null())), copy=False)
    )
    cells = exp.select(
        *[g.copy() for g in group_keys],
        _col(f"{P}pop"),
        _col(f"{P}cell"),
        _alias(exp.Count(this=exp.Star()), f"{P}cn"),
        _alias(exp.func("bit_xor", _col(f"{P}id")), f"{P}cx"),
        _alias(exp.func("bit_xor", _col(f"{P}ck")), f"{P}ch"),
    ).from_(by_cell.subquery(f"{P}bc", copy=False), copy=False)
    cells = cells.group_by(*[g.copy() for g in group_keys], _col(f"{P}pop"), _col(f"{P}cell"), copy=False)
    entry = exp.Array(
        expressions=[
            exp.Cast(this=_col(name), to=exp.DataType.build("UBIGINT", dialect=D))
            for name in (f"{P}pop", f"{P}cell", f"{P}cn", f"{P}cx", f"{P}ch")
        ]
    )
    select = exp.select(*[g.copy() for g in group_keys], _alias(exp.func("list", entry), f"{P}sketch"))
    select = select.from_(cells.subquery(f"{P}skc", copy=False), copy=False)
    if group_keys:
        select = select.group_by(*[g.copy() for g in group_keys], copy=False)
    return select


def _post(plan: Plan, scope: Scope, keys: list[exp.Expression], names: list[str]) -> str:
    """The analyst's SELECTs from the aggregation layer up, over the released cells only."""
    select = scope.select
    for j, item in enumerate(scope.aggregates):
        item.call.replace(_col(f"{P}a{j}"))
    key_texts = {strip(k).sql(dialect=D): i for i, k in enumerate(keys)}
    kinds = tuple({type(strip(k)) for k in keys})
    for place in _places(select):
        _replace_keys(place, key_texts, kinds)
    for arg in ("from_", "joins", "where", "group", "with_", "distinct"):
        select.set(arg, None)
    select.set("from_", exp.From(this=exp.to_table(CELLS)))
    having = select.args.get("having")
    if having is not None:
        select.set("having", None)
        select.set("where", exp.Where(this=having.this))
    if not select.expressions:
        select.set("expressions", [exp.Star()])
    tree = plan.tree
    for with_ in list(tree.find_all(exp.With)):
        kept = [c for c in with_.expressions if not any(c is r for r in plan.row_ctes)]
        if kept:
            with_.set("expressions", kept)
        else:
            with_.pop()
    # Released cells hold no secret, so the post layer needs no hardening: it is the analyst's own
    # arithmetic over what they are shown anyway.
    root = tree
    root.set(
        "expressions",
        [exp.alias_(_unalias(p), name, quoted=True) for p, name in zip(root.expressions, names, strict=True)],
    )
    return root.sql(dialect=D, comments=False)


def _unalias(projection: exp.Expression) -> exp.Expression:
    return projection.this if isinstance(projection, exp.Alias) else projection


def _places(select: exp.Select) -> list[exp.Expression]:
    places = list(select.expressions)
    if select.args.get("having") is not None:
        places.append(select.args["having"])
    if select.args.get("order") is not None:
        places.append(select.args["order"])
    return places


def _replace_keys(node: exp.Expression, key_texts: dict[str, int], kinds: tuple[type, ...]) -> None:
    """Replace every maximal subtree equal to a group key by that key's released column."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, exp.Column) and current.name.startswith(P):
            continue
        bare = strip(current)
        text = bare.sql(dialect=D) if isinstance(bare, kinds) else None
        if text in key_texts and not isinstance(current, exp.Alias | exp.Ordered | exp.Having | exp.Order):
            current.replace(_col(f"{P}g{key_texts[text]}"))
            continue
        stack.extend(current.iter_expressions())
