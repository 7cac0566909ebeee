"""Parse once, cheaply, and never raise: hostile input becomes a ``QRY_*`` violation.

The input is capped in characters and sqlglot's parser in nodes, so a huge or deeply nested
statement costs little. Comments are dropped: the SQL that runs is regenerated from the tree.
"""

from __future__ import annotations

import logging

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokens import Token, TokenType

from enclave.guard.violations import Violation, violation

DIALECT = "duckdb"
MAX_DEPTH = 40  # parentheses nesting; deeper input is refused before the recursive parser sees it


class _QuietFallback(logging.Filter):
    """sqlglot logs a warning when it falls back to an opaque Command; the guard refuses those anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_QuietFallback())


def parse_statement(
    sql: str, *, max_chars: int, max_nodes: int
) -> tuple[exp.Expression | None, list[Violation]]:
    """The single statement in ``sql``, or the violations that stop it from being one."""
    if not isinstance(sql, str):
        return None, [violation("QRY_PARSE", detail="the query must be text")]
    if len(sql) > max_chars:
        return None, [violation("QRY_TOO_LARGE", detail=f"{len(sql)} characters, at most {max_chars}")]
    if "\x00" in sql:
        return None, [violation("QRY_PARSE", detail="the query contains a NUL character")]
    try:
        dialect = Dialect.get_or_raise(DIALECT)
        tokens = dialect.tokenize(sql)
        too_big = _token_limits(tokens, max_nodes)
        if too_big:
            return None, [too_big]
        statements = dialect.parser(max_nodes=max_nodes).parse(tokens, sql)
    except ParseError as exc:
        return None, [_parse_violation(exc)]
    except TokenError as exc:
        return None, [violation("QRY_PARSE", detail=_first_line(str(exc)))]
    except SqlglotError as exc:
        text = str(exc)
        if "max_nodes" in text or "nodes" in text.lower():
            return None, [violation("QRY_TOO_LARGE", detail=f"more than {max_nodes} syntax nodes")]
        return None, [violation("QRY_PARSE", detail=_first_line(text))]
    except RecursionError:
        return None, [violation("QRY_TOO_LARGE", detail="nested too deeply")]
    except Exception as exc:
        return None, [violation("QRY_PARSE", detail=type(exc).__name__)]
    statements = [s for s in statements if s is not None]
    if not statements:
        return None, [violation("QRY_PARSE", detail="the query is empty")]
    if len(statements) > 1:
        return None, [violation("QRY_MULTI_STATEMENT", detail=str(len(statements)))]
    return statements[0], []


def _token_limits(tokens: list[Token], max_tokens: int) -> Violation | None:
    if len(tokens) > max_tokens:
        return violation("QRY_TOO_LARGE", detail=f"{len(tokens)} tokens, at most {max_tokens}")
    depth = deepest = 0
    for token in tokens:
        if token.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE):
            depth += 1
            deepest = max(deepest, depth)
        elif token.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE):
            depth -= 1
    if deepest > MAX_DEPTH:
        return violation("QRY_TOO_LARGE", detail=f"parentheses nested {deepest} deep, at most {MAX_DEPTH}")
    return None


def _parse_violation(exc: ParseError) -> Violation:
    errors = getattr(exc, "errors", None) or []
    if errors:
        first = errors[0]
        if "max_nodes" in str(first.get("description", "")):
            return violation("QRY_TOO_LARGE", detail="too many syntax nodes")
        return Violation(
            code="QRY_PARSE",
            params={"detail": _first_line(str(first.get("description") or "syntax error"))},
            line=first.get("line"),
            col=first.get("col"),
            highlight=first.get("highlight"),
        )
    return violation("QRY_PARSE", detail=_first_line(str(exc)))


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "syntax error"
    return line if len(line) <= 200 else line[:197] + "..."
