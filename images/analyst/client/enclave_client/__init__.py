"""The analyst's client for the query gateway (installed in the analyst image).

    import enclave_client as enclave
    db = enclave.connect()                 # gateway URL and token from the server's environment
    db.tables()                            # the project's views
    db.describe("patients")                # columns and their roles
    df = db.sql("SELECT sex, count(*) AS n FROM patients GROUP BY sex")
    df.attrs["suppressed_groups"]          # groups hidden because fewer than k persons were behind them
                                           # (the frame's display says so under the table)
    db.sql("...", synthetic=True)          # the same query on the synthetic twin
    enclave.twin().sql("SELECT ...").df()  # the twin in the workspace itself, without the guard
    enclave.rows()                         # the prepared rows, in ``access: rows`` projects only

``twin()`` and ``rows()`` (``enclave_client.local``) are read-only DuckDB connections to the files
the spawner mounts (``ENCLAVE_TWIN_DB``, ``ENCLAVE_ROWS_DB``). In IPython, ``%load_ext
enclave_client`` adds a ``%%sql`` cell magic (``--twin``, ``--rows`` run a cell on those). Refusals raise
``QueryError``, which carries the codes and the English and Chinese messages, how to rewrite the query
and the guard docs' section for the rule (``guard_docs(code)``: the docs ship with the client, so they
open offline). A query that takes more than two seconds shows its state (queued, running) and elapsed
time; interrupting the kernel cancels it on the gateway.
"""

from __future__ import annotations

from enclave_client import runs
from enclave_client.connection import Connection, QueryError, connect
from enclave_client.errors import RunError
from enclave_client.frame import QueryFrame
from enclave_client.guide import guard_docs
from enclave_client.local import rows, twin
from enclave_client.magic import load_ipython_extension

__all__ = [
    "Connection",
    "QueryError",
    "QueryFrame",
    "RunError",
    "connect",
    "guard_docs",
    "load_ipython_extension",
    "rows",
    "runs",
    "twin",
]
