"""DuckDB lockdown for every connection that runs analyst SQL (ARCHITECTURE §3.7, R-QRY-8, R-QRY-10).

The prepared views database is opened read-only; the Parquet files its views read are the only
paths allowed; then external access is switched off (no other files, no network, no COPY, no
extension install or load, no replacement scans of Python objects), memory and threads are capped,
and the configuration is locked so analyst SQL cannot undo any of it. DuckDB has no per-statement
timeout, so ``run_with_timeout`` interrupts the connection from a timer thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb
import sqlglot
from sqlglot import exp

from enclave.errors import BadInput

T = TypeVar("T")
GLOB_CHARS = ("*", "?", "[", "{")

# Startup settings; ``enable_external_access`` and ``lock_configuration`` follow once paths are allowed.
STARTUP_CONFIG: dict[str, object] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "python_enable_replacements": False,
    "python_scan_all_frames": False,
    "allow_persistent_secrets": False,
    "temp_directory": "",
}

_TIMEOUTS: dict[int, float] = {}
_OPEN: dict[str, duckdb.DuckDBPyConnection] = {}  # private parents, never handed out
_LOCK = threading.Lock()


def open_locked(
    database: Path, *, memory_limit: str = "2GB", threads: int = 2, timeout_s: float = 30.0
) -> duckdb.DuckDBPyConnection:
    """Open the project's prepared views database read-only and lock it down.

    The memory and thread limits apply to the database instance, so they are those of the first
    open of a file in this process; the timeout is per returned connection.
    """
    database = Path(database)
    if not database.is_file():
        raise BadInput(
            "views_database_missing",
            f"The prepared views database does not exist: {database}",
            f"预处理视图数据库不存在：{database}",
        )
    if threads < 1 or timeout_s <= 0:
        raise BadInput("lockdown_invalid", "threads and timeout must be positive", "线程数和超时必须为正数")
    key = str(database.resolve())
    with _LOCK:
        parent = _OPEN.get(key)
        if parent is None or not _alive(parent):
            parent = _open_parent(database, key, memory_limit, threads)
            _OPEN[key] = parent
        # DuckDB keeps one instance per file and process. Callers get their own cursor, which shares
        # the locked configuration, can be interrupted and closed without touching the others.
        cursor = parent.cursor()
    _TIMEOUTS[id(cursor)] = timeout_s
    return cursor


def _open_parent(database: Path, key: str, memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    config = dict(STARTUP_CONFIG, memory_limit=memory_limit, threads=threads)
    try:
        con = duckdb.connect(key, read_only=True, config=config)
    except duckdb.Error:
        raise BadInput(
            "views_database_unavailable",
            f"The prepared views database cannot be opened: {database}",
            f"无法打开预处理视图数据库：{database}",
        ) from None
    try:
        files, directories = view_sources(con)
        if files:
            con.execute(f"SET allowed_paths = {_list_literal(files)}")
        if directories:
            con.execute(f"SET allowed_directories = {_list_literal(directories)}")
        con.execute("SET enable_external_access = false")
        con.execute("SET enable_progress_bar = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error:
        con.close()
        raise BadInput(
            "lockdown_failed",
            "Could not lock down the query database",
            "无法锁定查询数据库",
        ) from None
    return con


def _alive(con: duckdb.DuckDBPyConnection) -> bool:
    try:
        con.execute("SELECT 1").fetchall()
    except duckdb.Error:
        return False
    return True


def _list_literal(values: set[str]) -> str:
    return "[" + ", ".join(exp.Literal.string(v).sql(dialect="duckdb") for v in sorted(values)) + "]"


def view_sources(con: duckdb.DuckDBPyConnection) -> tuple[set[str], set[str]]:
    """The files and glob directories the database's views read, from their definitions."""
    definitions = [
        row[0] for row in con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall()
    ]
    files: set[str] = set()
    directories: set[str] = set()
    for definition in definitions:
        for path in _paths_in(definition or ""):
            if any(ch in path for ch in GLOB_CHARS):
                prefix = path[: min(path.index(ch) for ch in GLOB_CHARS if ch in path)]
                directories.add(prefix if prefix.endswith("/") else str(Path(prefix).parent) + "/")
            else:
                files.add(path)
    return files, directories


def _paths_in(definition: str) -> list[str]:
    try:
        tree = sqlglot.parse_one(definition, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return []
    paths = []
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func):
            paths += [lit.this for lit in table.this.find_all(exp.Literal) if lit.is_string]
        elif isinstance(table.this, exp.Identifier) and table.this.quoted and "/" in table.name:
            paths.append(table.name)
    for function in tree.find_all(exp.ReadParquet, exp.ReadCSV, exp.Anonymous):
        if not isinstance(function.parent, exp.Table):
            paths += [lit.this for lit in function.find_all(exp.Literal) if lit.is_string]
    return [p for p in paths if p.startswith("/")]


def timeout_for(con: duckdb.DuckDBPyConnection, default: float = 30.0) -> float:
    return _TIMEOUTS.get(id(con), default)


def run_with_timeout(con: duckdb.DuckDBPyConnection, timeout_s: float, work: Callable[[], T]) -> T:
    """Run ``work`` (which uses ``con``); interrupt the connection if it takes longer than ``timeout_s``.

    Our own timer's interrupt becomes ``TimeoutError``; an interrupt from anyone else (a cancel)
    stays ``duckdb.InterruptException``, so the two are reported differently.
    """
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        con.interrupt()

    timer = threading.Timer(timeout_s, interrupt)
    timer.daemon = True
    timer.start()
    try:
        return work()
    except duckdb.InterruptException:
        if timed_out.is_set():
            raise TimeoutError(timeout_s) from None
        raise
    finally:
        timer.cancel()
