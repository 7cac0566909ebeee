"""``%%sql`` for IPython: ``%load_ext enclave_client``, then a cell starting with ``%%sql``.

    %%sql --synthetic --out df
    SELECT sex, count(*) AS n FROM patients GROUP BY sex

Without an option the cell runs on the gateway (the guard decides what comes back);
``--synthetic`` runs it there on the synthetic twin. ``--twin`` runs it in the workspace on the
twin's DuckDB file (``enclave_client.twin()``, no guard: the twin is synthetic) and ``--rows`` on
the prepared rows (``access: rows`` projects only). Refusals are shown as a short bilingual message
instead of a traceback.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from enclave_client import local
from enclave_client.connection import Connection, connect
from enclave_client.errors import QueryError

_connection: Connection | None = None
_local: dict[tuple[str, str], Any] = {}  # (--twin or --rows, the file) -> its DuckDB connection
TARGETS = ("--synthetic", "--twin", "--rows")


def _db() -> Connection:
    global _connection
    if _connection is None:
        _connection = connect()
    return _connection


def run_cell(
    line: str, cell: str, namespace: dict[str, Any] | None = None, db: Connection | None = None
) -> Any:
    """What ``%%sql`` does: one of ``--synthetic``, ``--twin``, ``--rows``, and ``--out NAME``."""
    args = shlex.split(line)
    unknown = [a for a in args if a not in (*TARGETS, "--out")]
    out = None
    if "--out" in args:
        index = args.index("--out")
        if index + 1 >= len(args):
            raise ValueError("--out needs a variable name")
        out = args[index + 1]
        if out in unknown:
            unknown.remove(out)
    if unknown:
        raise ValueError(f"%%sql: unknown options {unknown}; use --synthetic, --twin, --rows, --out NAME")
    targets = [a for a in args if a in TARGETS]
    if len(targets) > 1:
        raise ValueError(f"%%sql: {' and '.join(targets)} exclude each other")
    if targets and targets[0] in ("--twin", "--rows"):
        frame = _local_frame(targets[0], cell)
    else:
        frame = (db or _db()).sql(cell, synthetic=targets == ["--synthetic"])
    if out and namespace is not None:
        namespace[out] = frame
    return frame


def _local_frame(target: str, cell: str) -> Any:
    """The cell's result from the workspace's own DuckDB file, opened once per file."""
    env = local.TWIN_DB_ENV if target == "--twin" else local.ROWS_DB_ENV
    key = (target, os.environ.get(env, ""))
    if key not in _local:
        _local[key] = local.twin() if target == "--twin" else local.rows()
    frame = _local[key].sql(cell).df()
    frame.attrs.update(synthetic=target == "--twin", local=True, suppressed_groups=0, notices=[])
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
