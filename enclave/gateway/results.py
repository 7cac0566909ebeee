"""How results travel: Arrow IPC streams (default) or JSON, with the guard's notes in the metadata."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

ARROW_STREAM = "application/vnd.apache.arrow.stream"
META_SUPPRESSED = b"enclave.suppressed_groups"
META_NOTICES = b"enclave.notices"
META_QUERY_ID = b"enclave.query_id"


def result_table(columns: list[str], rows: list[list[Any]] | list[tuple[Any, ...]]) -> pa.Table:
    """Rows to an Arrow table, one array per column (types inferred; duplicate names kept)."""
    arrays = [pa.array([row[i] for row in rows]) for i in range(len(columns))]
    return pa.Table.from_arrays(arrays, names=list(columns))


def to_arrow_ipc(result: Any, query_id: str) -> bytes:
    table = result_table(list(result.columns), list(result.rows))
    table = table.replace_schema_metadata(
        {
            META_SUPPRESSED: str(int(result.suppressed_groups)).encode(),
            META_NOTICES: json.dumps(list(result.notices), ensure_ascii=False, default=str).encode(),
            META_QUERY_ID: query_id.encode(),
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def to_json(result: Any, query_id: str) -> dict[str, Any]:
    return {
        "ok": True,
        "query_id": query_id,
        "columns": list(result.columns),
        "rows": [list(row) for row in result.rows],
        "suppressed_groups": int(result.suppressed_groups),
        "notices": list(result.notices),
    }
