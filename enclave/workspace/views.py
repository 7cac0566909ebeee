"""Read-only DuckDB files of views over Parquet (R-PREP-17, R-QRY-3).

The database holds only ``CREATE VIEW <dataset> AS SELECT * FROM read_parquet('<absolute path>')``:
no tables, no data, no secrets. Open it with ``duckdb.connect(path, read_only=True)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import duckdb

from enclave.deid.sql import parquet_relation, quote_ident
from enclave.workspace.files import READ_ONLY_FILE


def build_views_db(db_path: Path, parquet_files: Mapping[str, Path]) -> None:
    """Create ``db_path`` with one view per dataset, named as the dataset, then make it read-only."""
    if db_path.exists():
        raise FileExistsError(db_path)
    con = duckdb.connect(str(db_path))
    try:
        for name, parquet in sorted(parquet_files.items()):
            con.execute(f"CREATE VIEW {quote_ident(name)} AS SELECT * FROM {parquet_relation(parquet)}")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.chmod(db_path, READ_ONLY_FILE)
