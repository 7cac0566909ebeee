"""Rule 2 (ARCHITECTURE §3.2): every node of the tree is on the allowlist, in a place it is safe.

Unknown nodes, anonymous functions, parameters, casts to nested types, odd join forms and
clauses the guard does not model are refused: the guard only reasons about SQL it knows.
"""

from __future__ import annotations

from sqlglot import exp

from enclave.guard import allowlist
from enclave.guard.policy import GuardPolicy
from enclave.guard.violations import Violation, violation

RESERVED_PREFIX = "__enclave"
SELECT_ARGS = frozenset(
    {
        "expressions",
        "from_",
        "joins",
        "where",
        "group",
        "having",
        "order",
        "limit",
        "offset",
        "with_",
        "distinct",
    }
)
TABLE_ARGS = frozenset({"this", "alias"})
UNION_ARGS = frozenset({"this", "expression", "distinct"})


def nodes_allowed(tree: exp.Expression, policy: GuardPolicy) -> list[Violation]:
    """Refuse every node class or placement the guard does not know to be safe.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("PIVOT t ON a USING sum(b)", read="duckdb")
    >>> [v.code for v in nodes_allowed(tree, None)]
    ['QRY_PIVOT']
    """
    found: list[Violation] = []
    seen: set[tuple[str, str]] = set()

    def add(code: str, node: exp.Expression, **params: str) -> None:
        key = (code, str(params.get("detail", "")))
        if key not in seen:
            seen.add(key)
            found.append(violation(code, node, **params))

    for node in tree.walk():
        for code, detail in _problems(node):
            add(code, node, detail=detail)
    return found


def _problems(node: exp.Expression) -> list[tuple[str, str]]:
    kind = type(node)
    specific = allowlist.SPECIFIC_CODES.get(kind)
    if specific:
        return [(specific, node.key.upper())]
    if kind is exp.Anonymous:
        return _anonymous(node)
    if kind not in allowlist.ALLOWED:
        if isinstance(node, exp.Func):
            return [("QRY_FUNCTION_NOT_ALLOWED", _function_name(node))]
        if isinstance(node, exp.Placeholder | exp.Parameter | exp.SessionParameter):
            return [("QRY_SYNTAX_NOT_ALLOWED", "parameters and variables")]
        return [("QRY_SYNTAX_NOT_ALLOWED", node.key.upper())]
    check = _PLACEMENT.get(kind)
    return check(node) if check else []


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    try:
        return node.sql_name().lower()
    except Exception:
        return node.key


def _anonymous(node: exp.Expression) -> list[tuple[str, str]]:
    name = str(node.name).upper()
    if isinstance(node.parent, exp.Table | exp.From | exp.Join):
        return [("QRY_TABLE_FUNCTION", name.lower())]
    arity = allowlist.ANONYMOUS.get(name)
    if arity is not None and len(node.expressions) == arity:
        first = node.expressions[0]
        if isinstance(first, exp.Literal) and first.is_string:
            return []
    return [("QRY_FUNCTION_NOT_ALLOWED", name.lower())]


def _select(node: exp.Select) -> list[tuple[str, str]]:
    problems = []
    extra = {k for k, v in node.args.items() if v not in (None, [], False)} - SELECT_ARGS
    if "windows" in extra:
        problems.append(("QRY_WINDOW", "WINDOW"))
        extra.discard("windows")
    if extra:
        problems.append(("QRY_SYNTAX_NOT_ALLOWED", ", ".join(sorted(k.rstrip("_").upper() for k in extra))))
    distinct = node.args.get("distinct")
    if distinct is not None and distinct.args.get("on") is not None:
        problems.append(("QRY_SYNTAX_NOT_ALLOWED", "DISTINCT ON"))
    return problems


def _limit(node: exp.Limit | exp.Offset) -> list[tuple[str, str]]:
    value = node.expression
    if value is None:
        value = node.this
    if not (isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit()):
        return [("QRY_LIMIT_FORM", "")]
    if node.args.get("expressions") or (isinstance(node, exp.Limit) and node.args.get("limit_options")):
        return [("QRY_LIMIT_FORM", "")]
    return []


def _union(node: exp.Union) -> list[tuple[str, str]]:
    extra = {k for k, v in node.args.items() if v not in (None, [], False)} - UNION_ARGS
    if node.args.get("distinct") or extra:
        return [("QRY_SET_OPERATION", "UNION (without ALL) or UNION BY NAME")]
    if not isinstance(node.parent, exp.Subquery | exp.CTE | exp.Union):
        return [("QRY_SET_OPERATION", "UNION ALL outside a subquery or CTE")]
    return []


def _with(node: exp.With) -> list[tuple[str, str]]:
    return [("QRY_RECURSIVE", "")] if node.args.get("recursive") else []


def _table(node: exp.Table) -> list[tuple[str, str]]:
    if not isinstance(node.this, exp.Identifier):
        return [("QRY_TABLE_FUNCTION", _function_name(node.this) if node.this else "?")]
    extra = {k for k, v in node.args.items() if v not in (None, [], False)} - TABLE_ARGS
    if extra & {"db", "catalog"}:
        return [("QRY_UNKNOWN_TABLE", node.sql(dialect="duckdb"))]
    if extra:
        return [("QRY_SYNTAX_NOT_ALLOWED", ", ".join(sorted(extra)).upper())]
    return []


def _table_alias(node: exp.TableAlias) -> list[tuple[str, str]]:
    if node.args.get("columns"):
        return [
            ("QRY_SYNTAX_NOT_ALLOWED", "column names in a table or CTE alias; alias columns in the SELECT")
        ]
    return []


def _join(node: exp.Join) -> list[tuple[str, str]]:
    side = (node.args.get("side") or "").upper()
    kind = (node.args.get("kind") or "").upper()
    method = (node.args.get("method") or "").upper()
    if method:
        return [("QRY_JOIN", f"{method} JOIN; use JOIN ... ON with an equality")]
    if kind in ("CROSS", "SEMI", "ANTI") or side in ("RIGHT", "FULL"):
        return [("QRY_JOIN", f"{side or kind} JOIN; use [LEFT] JOIN ... ON with an equality")]
    if kind not in ("", "INNER", "OUTER"):
        return [("QRY_JOIN", f"{kind} JOIN")]
    if node.args.get("on") is None and not node.args.get("using"):
        return [("QRY_JOIN", "a join without ON or USING (cross join); join on the person key")]
    if not isinstance(node.this, exp.Table | exp.Subquery):
        return [("QRY_JOIN", f"joining {node.this.key.upper()}")]
    return []


def _column(node: exp.Column) -> list[tuple[str, str]]:
    if node.args.get("db") is not None or node.args.get("catalog") is not None:
        return [("QRY_UNKNOWN_COLUMN", node.sql(dialect="duckdb"))]
    return []


def _identifier(node: exp.Identifier) -> list[tuple[str, str]]:
    if str(node.this).lower().startswith(RESERVED_PREFIX):
        return [("QRY_RESERVED_NAME", str(node.this))]
    return []


def _var(node: exp.Var) -> list[tuple[str, str]]:
    if isinstance(node.parent, exp.Ordered) and node.name.upper() == "ALL":
        return []  # ORDER BY ALL
    if type(node.parent) not in allowlist.VAR_PARENTS:
        return [("QRY_SYNTAX_NOT_ALLOWED", f"the bare word {node.name}")]
    return []


def _cast(node: exp.Cast) -> list[tuple[str, str]]:
    to = node.args.get("to")
    if not isinstance(to, exp.DataType) or to.this not in allowlist.CAST_TYPES or to.args.get("nested"):
        return [("QRY_SYNTAX_NOT_ALLOWED", f"CAST to {to.sql(dialect='duckdb') if to else '?'}")]
    return []


def _datatype(node: exp.DataType) -> list[tuple[str, str]]:
    if not isinstance(node.parent, exp.Cast | exp.DataType) or node.this not in allowlist.CAST_TYPES:
        return [("QRY_SYNTAX_NOT_ALLOWED", f"the type {node.sql(dialect='duckdb')}")]
    return []


def _interval(node: exp.Interval) -> list[tuple[str, str]]:
    if not isinstance(node.this, exp.Literal):
        return [("QRY_SYNTAX_NOT_ALLOWED", "an INTERVAL whose size is not a constant")]
    return []


def _star(node: exp.Star) -> list[tuple[str, str]]:
    parent = node.parent
    if isinstance(parent, exp.Column):
        parent = parent.parent
    if isinstance(parent, exp.Select | exp.Count) or (
        isinstance(parent, exp.Filter) and isinstance(parent.this, exp.Count)
    ):
        return []
    return [("QRY_SYNTAX_NOT_ALLOWED", "* outside SELECT * or count(*)")]


def _distinct(node: exp.Distinct) -> list[tuple[str, str]]:
    if isinstance(node.parent, exp.Count | exp.ApproxDistinct) and len(node.expressions) == 1:
        return []
    if isinstance(node.parent, exp.Select) and node.parent.args.get("distinct") is node:
        return []
    return [("QRY_SYNTAX_NOT_ALLOWED", "DISTINCT here")]


def _literal(node: exp.Literal) -> list[tuple[str, str]]:
    return [("QRY_TOO_LARGE", "a literal longer than 1000 characters")] if len(str(node.this)) > 1000 else []


_PLACEMENT = {
    exp.Select: _select,
    exp.Limit: _limit,
    exp.Offset: _limit,
    exp.Union: _union,
    exp.With: _with,
    exp.Table: _table,
    exp.TableAlias: _table_alias,
    exp.Join: _join,
    exp.Column: _column,
    exp.Identifier: _identifier,
    exp.Var: _var,
    exp.Cast: _cast,
    exp.TryCast: _cast,
    exp.DataType: _datatype,
    exp.Interval: _interval,
    exp.Star: _star,
    exp.Distinct: _distinct,
    exp.Literal: _literal,
}
