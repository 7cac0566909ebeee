"""DuckDB lockdown for every connection that runs analyst SQL (ARCHITECTURE §3.7, R-QRY-8, R-QRY-10).

The prepared views database is opened read-only; the Parquet files its views read are the only
paths allowed; then external access is switched off (no other files, no network, no COPY, no
extension install or load, no replacement scans of Python objects), memory and threads are capped,
and the configuration is locked so analyst SQL cannot undo any of it. DuckDB has no per-statement
timeout, so ``run_with_timeout`` interrupts the connection from a timer thread.

Views over objects in a bucket (``storage: s3``) are read through DuckDB's httpfs, loaded from the
binary that the ``duckdb-extension-httpfs`` wheel ships (never installed from the network), with one
temporary secret scoped to the project's key prefix. Those URLs join ``allowed_paths`` as exact
objects: ``allowed_directories`` is not used for them, because DuckDB 1.5 does not normalise
``..`` in an ``s3://`` URL, so a prefix would let ``s3://bucket/project/../other/`` through.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import duckdb
import sqlglot
from sqlglot import exp

from enclave.errors import BadInput
from enclave.guard.limits import DEFAULT_LIMITS, QueryLimits

T = TypeVar("T")
GLOB_CHARS = ("*", "?", "[", "{")
HTTPFS_PACKAGE = "duckdb_extension_httpfs"

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


@dataclass(frozen=True)
class S3Access:
    """How a locked connection reads views over objects: one key, scoped to ``scope`` (``s3://b/p/``)."""

    scope: str
    endpoint: str
    key_id: str = field(repr=False)
    secret: str = field(repr=False)
    region: str = "us-east-1"
    url_style: str = "path"
    use_ssl: bool = True


def httpfs_extension() -> Path:
    """The httpfs binary of the ``duckdb-extension-httpfs`` wheel that matches this DuckDB."""
    spec = importlib.util.find_spec(HTTPFS_PACKAGE)
    path = None
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "extensions" / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    if path is None or not path.is_file():
        raise BadInput(
            "httpfs_extension_missing",
            f"Object storage needs the duckdb-extension-httpfs=={duckdb.__version__} package",
            f"对象存储需要安装 duckdb-extension-httpfs=={duckdb.__version__} 软件包",
        )
    return path


def load_httpfs(con: duckdb.DuckDBPyConnection) -> None:
    """Load httpfs from the wheel's file (signed; unsigned extensions stay refused)."""
    con.execute(f"LOAD {_literal(str(httpfs_extension()))}")


def _literal(value: str) -> str:
    return exp.Literal.string(value).sql(dialect="duckdb")


_OPEN: dict[str, duckdb.DuckDBPyConnection] = {}  # private parents, never handed out
_LOCK = threading.Lock()


def open_locked(
    database: Path, limits: QueryLimits = DEFAULT_LIMITS, *, s3: S3Access | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the project's prepared views database read-only and lock it down.

    The memory and thread limits apply to the database instance, so they are those of the first
    open of a file in this process; the query's time limit travels with its call to
    ``enclave.guard.run``. ``s3`` is used only when the views read ``s3://`` objects, which must
    then all lie under its scope.
    """
    database = Path(database)
    if not database.is_file():
        raise BadInput(
            "views_database_missing",
            f"The prepared views database does not exist: {database}",
            f"预处理视图数据库不存在：{database}",
        )
    key = str(database.resolve())
    with _LOCK:
        parent = _OPEN.get(key)
        if parent is None or not _alive(parent):
            parent = _open_parent(database, key, limits.memory, limits.threads, s3)
            _OPEN[key] = parent
        # DuckDB keeps one instance per file and process. Callers get their own cursor, which shares
        # the locked configuration, can be interrupted and closed without touching the others.
        return parent.cursor()


def _open_parent(
    database: Path, key: str, memory_limit: str, threads: int, s3: S3Access | None
) -> duckdb.DuckDBPyConnection:
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
        remote = {path for path in files | directories if path.startswith("s3:")}
        if remote:
            _check_remote(remote, directories, s3)
            assert s3 is not None
            load_httpfs(con)
            con.execute(secret_sql(s3, "enclave_views"))
        if files:
            con.execute(f"SET allowed_paths = {_list_literal(files)}")
        if directories:
            con.execute(f"SET allowed_directories = {_list_literal(directories)}")
        con.execute("SET enable_external_access = false")
        con.execute("SET enable_progress_bar = false")
        con.execute("SET lock_configuration = true")
    except BadInput:
        con.close()
        raise
    except duckdb.Error:
        con.close()
        raise BadInput(
            "lockdown_failed",
            "Could not lock down the query database",
            "无法锁定查询数据库",
        ) from None
    return con


def _check_remote(remote: set[str], directories: set[str], s3: S3Access | None) -> None:
    """Every object a view reads is one exact object under the project's scope, or nothing opens."""
    if s3 is None:
        raise BadInput(
            "storage_access_missing",
            "The views read objects in a bucket, but no object storage is configured (storage: s3)",
            "视图读取存储桶中的对象，但未配置对象存储（storage: s3）",
        )
    scope = s3.scope if s3.scope.endswith("/") else s3.scope + "/"
    for url in remote:
        rest = url[len(scope) :]
        parts = rest.split("/")
        if (
            url in directories
            or not url.startswith(scope)
            or any(p in ("", ".", "..") for p in parts)
            or any(ch in url for ch in ("?", "#", "\\", *GLOB_CHARS))
        ):
            raise BadInput(
                "view_source_outside_scope",
                f"A view reads {url}, outside the project's objects under {scope}",
                f"某视图读取 {url}，超出了项目对象范围 {scope}",
            )


def secret_sql(s3: S3Access, name: str) -> str:
    """A temporary DuckDB secret for ``s3``, valid for URLs under its scope only."""
    return (
        f"CREATE OR REPLACE TEMPORARY SECRET {name} (TYPE s3, KEY_ID {_literal(s3.key_id)}, "
        f"SECRET {_literal(s3.secret)}, ENDPOINT {_literal(s3.endpoint)}, REGION {_literal(s3.region)}, "
        f"URL_STYLE {_literal(s3.url_style)}, USE_SSL {'true' if s3.use_ssl else 'false'}, "
        f"SCOPE {_literal(s3.scope)})"
    )


def _alive(con: duckdb.DuckDBPyConnection) -> bool:
    try:
        con.execute("SELECT 1").fetchall()
    except duckdb.Error:
        return False
    return True


def _list_literal(values: set[str]) -> str:
    return "[" + ", ".join(_literal(v) for v in sorted(values)) + "]"


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
    return [p for p in paths if p.startswith(("/", "s3:"))]


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
