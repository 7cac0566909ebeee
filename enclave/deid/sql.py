"""Quoting for SQL text that the de-identification builders assemble.

Only identifiers and file paths are ever quoted into SQL; secrets travel as bound parameters so
they never appear in SQL text (R-PREP-15).
"""

from __future__ import annotations

from pathlib import Path


def quote_ident(name: str) -> str:
    """A DuckDB identifier in double quotes, with embedded quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A DuckDB string literal in single quotes, with embedded quotes doubled."""
    return "'" + text.replace("'", "''") + "'"


def parquet_relation(path: Path) -> str:
    """``read_parquet('<absolute path>')`` for a local file."""
    return f"read_parquet({quote_literal(str(path.resolve()))})"
