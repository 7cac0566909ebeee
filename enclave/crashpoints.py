"""Named points where a crash-safety test may stop a service, to ``kill -9`` it at exactly that step.

Inert unless the process's environment names the point: ``ENCLAVE_TEST_PAUSE_AT=<point>`` and
``ENCLAVE_TEST_PAUSE_DIR=<folder>`` (both required, test-only settings, never set by a deployment).
A thread that reaches the named point creates ``<folder>/<point>`` and then waits (at most
``PAUSE_S``) so the test, which polls for that file, can send SIGKILL while the step is half done.
``tests/gateway/test_crash.py`` and ``tests/export_review/web/test_crash.py`` use them.

The points, in the order a service reaches them:

* ``query-admitted``: the gateway's differencing ledger has admitted a result's populations, and
  neither they nor the query's audit record are committed yet.
* ``query-committed``: the ledger rows and the audit record are committed; the result has not been
  sent to the client.
* ``release-staged``: the export's signed manifest is staged in the vault; the request is not yet
  released in the state database and nothing is in the outbox.
* ``release-publishing``: the release is committed (state and audit record); the outbox holds some
  of the files and no manifest.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PAUSE_AT_ENV = "ENCLAVE_TEST_PAUSE_AT"
PAUSE_DIR_ENV = "ENCLAVE_TEST_PAUSE_DIR"
PAUSE_S = 600.0
POINTS = frozenset({"query-admitted", "query-committed", "release-staged", "release-publishing"})


def reach(point: str) -> None:
    """Pause here if, and only if, a test named this point in the environment."""
    assert point in POINTS, point
    if os.environ.get(PAUSE_AT_ENV) != point:
        return
    folder = os.environ.get(PAUSE_DIR_ENV)
    if not folder:
        return
    Path(folder, point).touch()
    time.sleep(PAUSE_S)
