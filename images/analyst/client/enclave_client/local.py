"""``twin()`` and ``rows()``: the project's published data, read in the workspace with DuckDB.

The spawner mounts the project's data read-only and names its files in the environment:
``ENCLAVE_TWIN_DB``, the synthetic twin (every project), and ``ENCLAVE_ROWS_DB``, the prepared
rows (``access: rows`` projects only). Each file holds views over Parquet files in the folder of
the same name beside it (``twin.duckdb`` reads ``twin/``). Queries here do not go through the
gateway, its guard or its ledger: the twin is synthetic (same schema, fake rows), for writing and
testing code; real answers from an ``aggregate`` project come only through ``connect()``.

    import enclave_client as enclave
    twin = enclave.twin()                  # read-only DuckDB connection to the synthetic twin
    twin.sql("SELECT * FROM patients LIMIT 5").df()
    rows = enclave.rows()                  # access: rows only; QueryError no_row_access otherwise

The connection is read-only, loads no extension and reads no file but the database and its own
folder; its configuration is locked, so a query cannot widen that.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from enclave_client.errors import QueryError, error_entry

if TYPE_CHECKING:
    import duckdb

TWIN_DB_ENV = "ENCLAVE_TWIN_DB"
ROWS_DB_ENV = "ENCLAVE_ROWS_DB"
ACCESS_ENV = "ENCLAVE_ACCESS"


def _error(code: str, en: str, zh: str) -> QueryError:
    return QueryError(0, [error_entry(code, en, zh)])


# One locked-down database per file for the life of the kernel: DuckDB keeps one instance per file
# and process, and its locked configuration cannot be set again, so every call hands out a cursor.
_OPEN: dict[Path, duckdb.DuckDBPyConnection] = {}


def open_views_db(path: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    """A locked-down, read-only connection to a published views file at ``path``.

    Only ``path`` and the folder named after it (``twin.duckdb`` → ``twin/``) can be read. Calling
    it again (a cell run twice) gives another cursor on the same locked database.
    """
    db = Path(os.path.abspath(path))
    if not db.is_file():
        raise _error(
            "local_data_missing",
            f"The published data file {db} is not there (is this the project's workspace?)",
            f"找不到已发布的数据文件 {db}（当前是否在该项目的工作空间中？）",
        )
    base = _OPEN.get(db)
    if base is None:
        base = _OPEN[db] = _locked(db)
    return base.cursor()


def _locked(db: Path) -> duckdb.DuckDBPyConnection:
    import duckdb

    try:
        con = duckdb.connect(
            str(db),
            read_only=True,
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
    except duckdb.ConnectionException as error:
        raise _error(
            "local_data_in_use",
            f"{db} is already open in this kernel through another DuckDB connection ({error}). Close "
            "that connection (or restart the kernel) and use this one",
            f"{db} 已在此内核中通过另一个 DuckDB 连接打开（{error}）。"
            "请关闭该连接（或重启内核）后再使用本连接",
        ) from None
    try:
        # allowed_directories can be set only while external access is still on, hence SET, in order.
        folder = str(db.with_suffix("")).replace("'", "''")
        con.execute(f"SET allowed_directories = ['{folder}/']")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def twin(path: str | os.PathLike[str] | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection to the project's synthetic twin (``ENCLAVE_TWIN_DB``)."""
    path = path or os.environ.get(TWIN_DB_ENV)
    if not path:
        raise _error(
            "twin_not_available",
            f"No synthetic twin here: {TWIN_DB_ENV} is set in the enclave's workspaces only",
            f"此处没有合成孪生数据：只有领地的工作空间会设置 {TWIN_DB_ENV}",
        )
    return open_views_db(path)


def rows(path: str | os.PathLike[str] | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection to the prepared rows (``ENCLAVE_ROWS_DB``, ``access: rows``)."""
    path = path or os.environ.get(ROWS_DB_ENV)
    if not path:
        access = os.environ.get(ACCESS_ENV, "aggregate")
        raise _error(
            "no_row_access",
            f"This project has no row access (access: {access}): its rows are not in the workspace. "
            "Query them through the gateway (enclave_client.connect()), or use enclave_client.twin()",
            f"该项目没有行级访问权限（access: {access}）：工作空间中没有其数据行。"
            "请通过网关查询（enclave_client.connect()），或使用 enclave_client.twin()",
        )
    return open_views_db(path)
