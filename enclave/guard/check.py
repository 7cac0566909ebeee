"""``check``: parse once, apply the syntactic rules, put the query into the algebra, and compile it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.qualify import qualify

from enclave.errors import Reason
from enclave.guard.analyze import analyze
from enclave.guard.compile import Compiled, compile_plan
from enclave.guard.limits import QueryLimits
from enclave.guard.parse import DIALECT, parse_detail, parse_statement
from enclave.guard.policy import GuardPolicy
from enclave.guard.rules import RULES, statement_is_select
from enclave.guard.rules.syntax import nodes_allowed
from enclave.guard.violations import STRUCTURAL_CODES, Violation, violation
from enclave.specs import AccessMode


@dataclass(frozen=True)
class Verdict:
    """The guard's answer: allowed with the SQL to run, or refused with every broken rule."""

    allowed: bool
    reasons: list[Reason]
    sql: str | None
    compiled: Compiled | None = field(default=None, repr=False, compare=False)
    advisory: bool = field(default=False, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Exactly the ``enclave guard check`` contract (ARCHITECTURE §9)."""
        return {"allowed": self.allowed, "reasons": [r.to_dict() for r in self.reasons], "sql": self.sql}


def check(sql: str, policy: GuardPolicy, *, max_rows: int = QueryLimits.rows) -> Verdict:
    """The verdict on ``sql`` under ``policy``; never raises on any input (ARCHITECTURE §3).

    ``max_rows`` is the row limit of the query that will run (``QueryLimits.rows``): the compiled
    SQL fetches one cell more, so a larger result is refused without being read in full.
    """
    try:
        return _check(sql, policy, max_rows)
    except RecursionError:
        return _refuse([violation("QRY_TOO_LARGE", None, detail="nested too deeply")])
    except Exception:
        if os.environ.get("ENCLAVE_GUARD_DEBUG"):
            raise
        return _refuse([violation("QRY_GUARD_ERROR", None)])


def _check(sql: str, policy: GuardPolicy, max_rows: int) -> Verdict:
    tree, problems = parse_statement(sql, max_chars=policy.max_sql_chars, max_nodes=policy.max_nodes)
    if tree is None:
        return _refuse(problems)
    problems = statement_is_select(tree, policy)
    if problems:
        return _refuse(problems)
    for rule in RULES:
        problems += rule(tree, policy)
    if problems:
        return _refuse(problems)
    written = _written_names(tree)
    try:
        qualified = qualify(
            tree,
            schema=policy.schema(),
            dialect=DIALECT,
            validate_qualify_columns=True,
            quote_identifiers=True,
            identify=True,
        )
    except OptimizeError as exc:
        return _refuse([violation("QRY_UNKNOWN_COLUMN", None, detail=_short(str(exc)))])
    except SqlglotError as exc:
        return _refuse([violation("QRY_PARSE", None, **parse_detail(str(exc)))])
    if not isinstance(qualified, exp.Select):
        return _refuse([violation("QRY_NOT_SELECT", None, detail=qualified.key.upper())])
    problems = nodes_allowed(qualified, policy)  # qualify can turn a bare name into a row struct
    if problems:
        return _refuse(problems)
    for node in qualified.walk():
        node.comments = None  # comments never reach the SQL that runs, nor the guard's comparisons
    plan, problems = analyze(qualified, policy)
    if policy.mode is AccessMode.ROWS:
        return _advisory(sql, problems)
    if problems or plan is None:
        return _refuse(problems or [violation("QRY_GUARD_ERROR", None)])
    names = (
        written
        if len(written) == len(qualified.expressions)
        else [p.alias_or_name for p in qualified.expressions]
    )
    compiled = compile_plan(plan, policy, names, max_rows)
    return Verdict(allowed=True, reasons=[], sql=compiled.sql, compiled=compiled)


def _written_names(original: exp.Select) -> list[str]:
    """The analyst's column names: aliases as written, bare column names, else the expression."""
    names = []
    for projection in original.expressions:
        if isinstance(projection, exp.Alias):
            names.append(projection.alias)
        elif isinstance(projection, exp.Column):
            names.append(projection.name)
        else:
            names.append(projection.sql(dialect=DIALECT, comments=False))
    return names


def _advisory(sql: str, problems: list[Violation]) -> Verdict:
    """Rows mode: structural problems still refuse; disclosure rules are advice only."""
    structural = [p for p in problems if p.code in STRUCTURAL_CODES]
    if structural:
        return _refuse(structural)
    tree, _ = parse_statement(sql, max_chars=len(sql) + 1, max_nodes=10**6)
    return Verdict(
        allowed=True,
        reasons=[p.to_reason() for p in problems],
        sql=tree.sql(dialect=DIALECT, comments=False),
        advisory=True,
    )


def _refuse(problems: list[Violation]) -> Verdict:
    return Verdict(allowed=False, reasons=[p.to_reason() for p in problems], sql=None)


def _short(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown"
    return line if len(line) <= 200 else line[:197] + "..."
