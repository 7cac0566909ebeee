"""``%%sql`` for IPython: ``%load_ext enclave_client``, then a cell starting with ``%%sql``.

    %%sql --synthetic --out df
    SELECT sex, count(*) AS n FROM patients GROUP BY sex

Refusals are shown as a short bilingual message instead of a traceback.
"""

from __future__ import annotations

import shlex
from typing import Any

from enclave_client.connection import Connection, connect
from enclave_client.errors import QueryError

_connection: Connection | None = None


def _db() -> Connection:
    global _connection
    if _connection is None:
        _connection = connect()
    return _connection


def run_cell(
    line: str, cell: str, namespace: dict[str, Any] | None = None, db: Connection | None = None
) -> Any:
    """What ``%%sql`` does: options ``--synthetic`` and ``--out NAME`` (store the DataFrame)."""
    args = shlex.split(line)
    unknown = [a for a in args if a not in ("--synthetic", "--out")]
    out = None
    if "--out" in args:
        index = args.index("--out")
        if index + 1 >= len(args):
            raise ValueError("--out needs a variable name")
        out = args[index + 1]
        if out in unknown:
            unknown.remove(out)
    if unknown:
        raise ValueError(f"%%sql: unknown options {unknown}; use --synthetic, --out NAME")
    frame = (db or _db()).sql(cell, synthetic="--synthetic" in args)
    if out and namespace is not None:
        namespace[out] = frame
    return frame


def _show_query_error(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    try:
        from IPython.display import HTML, display

        display(HTML(value._repr_html_()))  # type: ignore[attr-defined]
    except ImportError:
        print(value)


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%sql`` and a readable display of ``QueryError``."""

    def sql(line: str, cell: str) -> Any:
        return run_cell(line, cell, ipython.user_ns)

    ipython.register_magic_function(sql, magic_kind="cell", magic_name="sql")
    ipython.set_custom_exc((QueryError,), _show_query_error)
