"""The analyst's client for the query gateway (installed in the analyst image).

    import enclave_client as enclave
    db = enclave.connect()                 # gateway URL and token from the server's environment
    db.tables()                            # the project's views
    db.describe("patients")                # columns and their roles
    df = db.sql("SELECT sex, count(*) AS n FROM patients GROUP BY sex")
    df.attrs["suppressed_groups"]          # groups hidden because fewer than k persons were behind them
    db.sql("...", synthetic=True)          # the same query on the synthetic twin

In IPython, ``%load_ext enclave_client`` adds a ``%%sql`` cell magic. Refusals raise
``QueryError``, which carries the codes and the English and Chinese messages. A query that takes a
while shows its elapsed time; interrupting the kernel cancels it on the gateway.
"""

from __future__ import annotations

from enclave_client import runs
from enclave_client.connection import Connection, QueryError, connect
from enclave_client.errors import RunError
from enclave_client.magic import load_ipython_extension

__all__ = ["Connection", "QueryError", "RunError", "connect", "load_ipython_extension", "runs"]
