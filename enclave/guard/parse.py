"""Parse once, cheaply, and never raise: hostile input becomes a ``QRY_*`` violation.

The input is capped in characters and sqlglot's parser in nodes, so a huge or deeply nested
statement costs little. Comments are dropped: the SQL that runs is regenerated from the tree.

A parse error gets our own words in English and Chinese (``parse_detail``) with the line and column
where sqlglot has them: sqlglot's own text (token dumps, Python exception names) never reaches the
analyst.
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
        return None, [violation("QRY_PARSE", **_detail("not_text"))]
    if len(sql) > max_chars:
        return None, [violation("QRY_TOO_LARGE", detail=f"{len(sql)} characters, at most {max_chars}")]
    if "\x00" in sql:
        return None, [violation("QRY_PARSE", **_detail("nul"))]
    try:
        dialect = Dialect.get_or_raise(DIALECT)
        tokens = dialect.tokenize(sql)
        too_big = _token_limits(tokens, max_nodes)
        if too_big:
            return None, [too_big]
        statements = dialect.parser(max_nodes=max_nodes).parse(tokens, sql)
    except ParseError as exc:
        return None, [_parse_violation(exc)]
    except TokenError:
        return None, [violation("QRY_PARSE", **_detail("unclosed"))]
    except SqlglotError as exc:
        text = str(exc)
        if "max_nodes" in text or "nodes" in text.lower():
            return None, [violation("QRY_TOO_LARGE", detail=f"more than {max_nodes} syntax nodes")]
        return None, [violation("QRY_PARSE", **parse_detail(text))]
    except RecursionError:
        return None, [violation("QRY_TOO_LARGE", detail="nested too deeply")]
    except Exception:
        return None, [violation("QRY_PARSE", **_detail("syntax"))]
    statements = [s for s in statements if s is not None]
    if not statements:
        return None, [violation("QRY_PARSE", **_detail("empty"))]
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
            params=parse_detail(str(first.get("description") or ""), first.get("highlight")),
            line=first.get("line"),
            col=first.get("col"),
            highlight=first.get("highlight"),
        )
    return violation("QRY_PARSE", **parse_detail(str(exc)))


# What sqlglot's description starts with -> our words for it (English, Chinese).
PARSE_PROBLEMS: dict[str, tuple[str, str]] = {
    "not_text": ("the query must be text", "查询必须是文本"),
    "nul": ("the query contains a NUL character", "查询包含 NUL 字符"),
    "empty": ("the query is empty", "查询为空"),
    "unclosed": ("a quote, quoted name or comment is not closed", "有引号、带引号的名称或注释未闭合"),
    "Expected table name": ("a table name is missing", "缺少表名"),
    "Expecting )": ("a closing parenthesis is missing", "缺少右括号"),
    "Expecting (": ("an opening parenthesis is missing", "缺少左括号"),
    "Expected TYPE after CAST": ("CAST needs a type after AS", "CAST 的 AS 之后需要类型"),
    "Required keyword": ("an expression is incomplete", "表达式不完整"),
    "Invalid expression / Unexpected token": ("unexpected text", "出现了意外的内容"),
    "syntax": ("syntax error", "语法错误"),
}
MAX_HIGHLIGHT = 40


def _detail(problem: str, near: str | None = None) -> dict[str, str]:
    en, zh = PARSE_PROBLEMS[problem]
    near = " ".join((near or "").split())
    if near:
        near = near if len(near) <= MAX_HIGHLIGHT else near[: MAX_HIGHLIGHT - 3] + "..."
        en, zh = f'{en} near "{near}"', f"{zh}（在“{near}”附近）"
    return {"detail": en, "detail_zh": zh}


def parse_detail(description: str, highlight: str | None = None) -> dict[str, str]:
    """Our message params (``detail``, ``detail_zh``) for a sqlglot error description; the analyst's own
    SQL (``highlight``) may be quoted, sqlglot's text never is."""
    for prefix in PARSE_PROBLEMS:
        if prefix[0].isupper() and description.startswith(prefix):
            return _detail(prefix, highlight)
    return _detail("syntax", highlight)
