"""The minimum-count rewrite of the outermost SELECT (R-QRY-7) and the dominance pass.

The user's outermost SELECT becomes the inner query of a wrapper. It keeps its FROM, joins, WHERE
and GROUP BY, and projects, besides the user's columns, hidden columns: ``__enclave_ok`` (every
group rests on 0 or >= k persons per track and per aggregate population), the user's HAVING and
ORDER BY expressions, and the group keys. The wrapper then drops unsafe groups, counts them with a
window over all groups, applies the user's HAVING, ORDER BY and LIMIT *after* suppression, and
renames the columns back. Dominance (nk and p% rules over per-person contributions) is one CTE per
contributor track, joined on the group keys.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlglot import exp

from enclave.guard.harden import harden
from enclave.guard.lineage import unparen
from enclave.guard.policy import GuardPolicy
from enclave.guard.trace import DominanceItem, OuterPlan

P = "__enclave_"
D = "duckdb"


@dataclass(frozen=True)
class Rewritten:
    sql: str
    count_sql: str
    columns: list[str]
    count_outputs: list[int]


@functools.lru_cache(maxsize=4096)
def _q(name: str) -> str:
    """``name`` as a quoted DuckDB identifier (cached: the same few hidden names, many times a query)."""
    return exp.to_identifier(name, quoted=True).sql(dialect=D)


def rewrite(plan: OuterPlan, policy: GuardPolicy, names: list[str], safe_nodes: set[int]) -> Rewritten:
    inner = plan.select
    aliases = {p.alias_or_name.lower(): i for i, p in enumerate(inner.expressions)}
    projections = []
    for i, projection in enumerate(inner.expressions):
        value = projection.this if isinstance(projection, exp.Alias) else projection
        projections.append(exp.alias_(value, f"{P}c{i}", quoted=True, copy=False))

    having = inner.args.get("having")
    inner.set("having", None)
    if having is not None:
        projections.append(exp.alias_(having.this, f"{P}h", quoted=True, copy=False))

    order_by = []
    order = inner.args.get("order")
    inner.set("order", None)
    for j, ordered in enumerate(order.expressions if order is not None else []):
        target = unparen(ordered.this)
        if isinstance(target, exp.Column) and not target.table and target.name.lower() in aliases:
            name = f"{P}c{aliases[target.name.lower()]}"
        else:
            name = f"{P}o{j}"
            projections.append(exp.alias_(ordered.this, name, quoted=True, copy=False))
        order_by.append(
            exp.Ordered(
                this=exp.column(name, quoted=True),
                desc=ordered.args.get("desc"),
                nulls_first=ordered.args.get("nulls_first"),
            ).sql(dialect=D)
        )
    limit, offset = _number(inner.args.get("limit")), _number(inner.args.get("offset"))
    inner.set("limit", None)
    inner.set("offset", None)

    ok = exp.and_(*plan.conditions, copy=False) if plan.conditions else exp.true()
    projections.append(exp.alias_(ok, f"{P}ok", quoted=True, copy=False))
    group = inner.args.get("group")
    dominance = plan.dominance if group is not None or plan.has_tracks else []
    inner.set("expressions", projections)
    harden(inner, safe_nodes)
    keys = list(group.expressions) if group is not None else []
    if dominance:
        for i, key in enumerate(keys):
            inner.append("expressions", exp.alias_(key.copy(), f"{P}g{i}", quoted=True, copy=False))

    with_ = inner.args.get("with_")
    inner.set("with_", None)
    ctes = [cte.sql(dialect=D) for cte in with_.expressions] if with_ is not None else []
    joins = ""
    flags = []
    for t, (track, items) in enumerate(_by_track(dominance).values()):
        ctes.append(f"{_q(f'{P}dom{t}')} AS ({_dominance_sql(inner, keys, track, items, policy)})")
        on = (
            " AND ".join(
                f"{_q(f'{P}i')}.{_q(f'{P}g{i}')} IS NOT DISTINCT FROM {_q(f'{P}d{t}')}.{_q(f'{P}g{i}')}"
                for i in range(len(keys))
            )
            or "TRUE"
        )
        joins += f" LEFT JOIN {_q(f'{P}dom{t}')} AS {_q(f'{P}d{t}')} ON {on}"
        flags.append(f"COALESCE({_q(f'{P}d{t}')}.{_q(f'{P}dominated')}, FALSE)")
    dominated = " OR ".join(flags) or "FALSE"
    # The last use of ``inner``: the generator may work on it in place instead of on a copy.
    inner_sql = inner.sql(dialect=D, comments=False, copy=False)
    with_sql = f"WITH {', '.join(ctes)} " if ctes else ""
    joined = (
        f"SELECT {_q(f'{P}i')}.*, ({dominated}) AS {_q(f'{P}dom')} FROM ({inner_sql}) AS {_q(f'{P}i')}{joins}"
    )
    ok_col, dom_col = _q(f"{P}ok"), _q(f"{P}dom")
    counted = (
        f"SELECT *, COUNT(*) FILTER (WHERE NOT {ok_col}) OVER () AS {_q(f'{P}small')}, "
        f"COUNT(*) FILTER (WHERE {ok_col} AND {dom_col}) OVER () AS {_q(f'{P}dominated')} "
        f"FROM ({joined}) AS {_q(f'{P}j')}"
    )
    outputs = ", ".join(f"{_q(f'{P}c{i}')} AS {_q(name)}" for i, name in enumerate(names))
    where = f"{ok_col} AND NOT {dom_col}"
    if having is not None:
        where += f" AND COALESCE({_q(f'{P}h')}, FALSE)"
    effective_limit = policy.max_result_rows + 1 if limit is None else min(limit, policy.max_result_rows + 1)
    sql = (
        f"{with_sql}SELECT {outputs}, {_q(f'{P}small')}, {_q(f'{P}dominated')} "
        f"FROM ({counted}) AS {_q(f'{P}w')} WHERE {where}"
        + (f" ORDER BY {', '.join(order_by)}" if order_by else "")
        + f" LIMIT {effective_limit}"
        + (f" OFFSET {offset}" if offset else "")
    )
    count_sql = (
        f"{with_sql}SELECT COUNT(*) FILTER (WHERE NOT {ok_col}), "
        f"COUNT(*) FILTER (WHERE {ok_col} AND {dom_col}) FROM ({joined}) AS {_q(f'{P}j')}"
    )
    return Rewritten(sql=sql, count_sql=count_sql, columns=names, count_outputs=plan.count_outputs)


def _number(node: exp.Expression | None) -> int | None:
    if node is None:
        return None
    value = node.expression if node.expression is not None else node.this
    return int(value.this)


def _by_track(items: list[DominanceItem]) -> dict[str, tuple[exp.Column, list[DominanceItem]]]:
    grouped: dict[str, tuple[exp.Column, list[DominanceItem]]] = {}
    for item in items:
        grouped.setdefault(item.track.sql(dialect=D), (item.track, []))[1].append(item)
    return grouped


def _dominance_sql(inner: exp.Select, keys, track: exp.Column, items: list[DominanceItem], policy) -> str:
    """Per group: is any sum/avg of a measure dominated by its top contributors (nk or p% rule)?"""
    from_sql = inner.args["from_"].sql(dialect=D)
    joins_sql = " ".join(j.sql(dialect=D) for j in inner.args.get("joins") or [])
    where = inner.args.get("where")
    where_sql = where.sql(dialect=D) if where is not None else ""
    key_cols = [_q(f"{P}g{i}") for i in range(len(keys))]
    key_select = [f"{k.sql(dialect=D)} AS {c}" for k, c in zip(keys, key_cols, strict=True)]
    values = [
        f"SUM({item.aggregate.this.sql(dialect=D)}) AS {_q(f'{P}v{j}')}" for j, item in enumerate(items)
    ]
    group_by = ", ".join([k.sql(dialect=D) for k in keys] + [track.sql(dialect=D)])
    person = f"{track.sql(dialect=D)} AS {_q(P + 'p')}"
    columns = ", ".join([*key_select, person, *values])
    per_person = f"SELECT {columns} {from_sql} {joins_sql} {where_sql} GROUP BY {group_by}"
    # The top contributors come from DuckDB's top-n aggregate ``max(x, n)`` (the n largest non-NULL
    # values, duplicates kept, largest first) instead of a ROW_NUMBER window over every per-person
    # row: the same values as ``ROW_NUMBER() ... ORDER BY ABS(v) DESC NULLS LAST`` with rank <= n, at
    # half the cost. tests/guard/test_dominance.py checks the rules against a Python reference.
    n, k, p = policy.dominance_n, policy.dominance_k, policy.dominance_p
    summaries = []
    tests = []
    for j in range(len(items)):
        v, total, top = _q(f"{P}v{j}"), _q(f"{P}t{j}"), _q(f"{P}l{j}")
        summaries += [f"SUM(ABS({v})) AS {total}", f"MAX(ABS({v}), {max(n, 2)}) AS {top}"]
        top_n = f"COALESCE(LIST_SUM(LIST_SLICE({top}, 1, {n})), 0)"
        first, second = f"COALESCE({top}[1], 0)", f"COALESCE({top}[2], 0)"
        tests.append(
            f"(COALESCE({total}, 0) > 0 AND ({top_n} > {k!r} * {total} OR "
            f"({total} - {first} - {second}) < {p!r} * {first}))"
        )
    grouping = f" GROUP BY {', '.join(key_cols)}" if key_cols else ""
    summary = f"SELECT {', '.join([*key_cols, *summaries])} FROM ({per_person}) AS {_q(P + 'pp')}{grouping}"
    outputs = [*key_cols, f"({' OR '.join(tests)}) AS {_q(P + 'dominated')}"]
    return f"SELECT {', '.join(outputs)} FROM ({summary}) AS {_q(P + 'rk')}"
