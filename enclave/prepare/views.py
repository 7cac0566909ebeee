"""Read-only DuckDB files of views over Parquet (R-PREP-17, R-QRY-3).

The database holds only ``CREATE VIEW <dataset> AS SELECT * FROM read_parquet('<absolute path>')``
(or ``'s3://bucket/key'`` with ``storage: s3``): no tables, no data, no secrets. Open it with
``duckdb.connect(path, read_only=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import duckdb

from enclave.deid.sql import parquet_relation, quote_ident, quote_literal
from enclave.files import READ_ONLY_FILE


def build_views_db(
    db_path: Path,
    parquet_files: Mapping[str, Path | str],
    setup: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> None:
    """Create ``db_path`` with one view per dataset, named as the dataset, then make it read-only.

    A source is a local file or an ``s3://`` URL (a string); ``setup`` prepares the connection to
    read the URLs (httpfs and a temporary secret, neither of which is stored in the file).
    """
    if db_path.exists():
        raise FileExistsError(db_path)
    # Never fetch an extension from the network, not even to bind a view over an s3:// URL.
    con = duckdb.connect(
        str(db_path), config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    try:
        if setup is not None:
            setup(con)
        for name, parquet in sorted(parquet_files.items()):
            relation = (
                f"read_parquet({quote_literal(parquet)})"
                if isinstance(parquet, str)
                else parquet_relation(parquet)
            )
            con.execute(f"CREATE VIEW {quote_ident(name)} AS SELECT * FROM {relation}")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.chmod(db_path, READ_ONLY_FILE)
