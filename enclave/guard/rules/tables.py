"""Rule 2 (ARCHITECTURE §3.2, R-QRY-2): only the project's views, by their plain names, and CTEs."""

from __future__ import annotations

from sqlglot import exp

from enclave.guard.policy import GuardPolicy
from enclave.guard.violations import Violation, violation


def tables_are_views(tree: exp.Expression, policy: GuardPolicy) -> list[Violation]:
    """Every table reference names a view of the project or a CTE, and no CTE hides a view.

    >>> import sqlglot
    >>> from enclave.guard.policy import GuardPolicy
    >>> tree = sqlglot.parse_one("SELECT count(*) FROM duckdb_settings", read="duckdb")
    >>> [v.code for v in tables_are_views(tree, GuardPolicy(views={}))]
    ['QRY_UNKNOWN_TABLE']
    """
    views = {name.lower() for name in policy.views}
    listing = ", ".join(sorted(views)) or "-"
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found = [
        violation("QRY_CTE_SHADOWS_VIEW", cte, detail=cte.alias_or_name)
        for cte in tree.find_all(exp.CTE)
        if cte.alias_or_name.lower() in views
    ]
    reported: set[str] = set()
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or table.args.get("db") or table.args.get("catalog"):
            continue  # reported by nodes_allowed
        name = table.name.lower()
        if name in views or name in ctes or name in reported:
            continue
        reported.add(name)
        found.append(violation("QRY_UNKNOWN_TABLE", table, detail=repr(table.name), views=listing))
    if tree.find(exp.Table) is None:
        found.append(violation("QRY_NO_SOURCE", None))
    return found
