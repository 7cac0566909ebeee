"""``QueryLimits``: one value per query, checked when it is made, carried by the call to ``run``."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from enclave.errors import EXIT_REFUSED, BadInput, Refused
from enclave.guard import QueryLimits, lockdown, open_locked, run
from enclave.guard import execute as guard_execute

SQL = "SELECT sex, count(*) AS n FROM patients GROUP BY sex"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"rows": 0}, "query_limits_invalid"),
        ({"threads": 0}, "query_limits_invalid"),
        ({"timeout_s": 0}, "query_limits_invalid"),
        ({"timeout_s": -1.0}, "query_limits_invalid"),
        ({"memory": "two gigabytes"}, "memory_limit_invalid"),
        ({"memory": "2 GX"}, "memory_limit_invalid"),
    ],
)
def test_invalid_limits_are_refused_when_made(fields: dict, code: str) -> None:
    with pytest.raises(BadInput) as caught:
        QueryLimits(**fields)
    assert caught.value.code == code
    assert caught.value.message_zh
    assert "must" not in caught.value.message_zh, "the Chinese message is Chinese"


def test_limits_are_one_frozen_value() -> None:
    limits = QueryLimits(rows=5, memory="512MiB", threads=1, timeout_s=2.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.rows = 6  # type: ignore[misc]
    assert QueryLimits() == QueryLimits(rows=10_000, memory="2GB", threads=2, timeout_s=30.0)


def test_each_query_has_the_time_limit_of_its_own_call(data_dir: Path, policy, monkeypatch) -> None:
    """Two connections on one database, queried at once with different limits: each DuckDB call is
    interrupted after its own query's time, never another's (no limit is kept per connection)."""
    seen: list[tuple[str, float]] = []
    real = guard_execute.run_with_timeout

    def recording(con, timeout_s, work):
        seen.append((threading.current_thread().name, timeout_s))
        return real(con, timeout_s, work)

    monkeypatch.setattr(guard_execute, "run_with_timeout", recording)
    first = open_locked(data_dir / "views.duckdb", QueryLimits(timeout_s=7.0))
    second = open_locked(data_dir / "views.duckdb")
    try:
        threads = [
            threading.Thread(
                target=run,
                args=(first, SQL, policy),
                kwargs={"limits": QueryLimits(timeout_s=7.0)},
                name="seven",
            ),
            threading.Thread(target=run, args=(second, SQL, policy), name="default"),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # A connection opened with one limit and queried with another: the call's limit holds.
        run(first, SQL, policy, limits=QueryLimits(timeout_s=11.0))
    finally:
        first.close()
        second.close()
    by_thread: dict[str, set[float]] = {}
    for name, timeout in seen:
        by_thread.setdefault(name, set()).add(timeout)
    assert by_thread["seven"] == {7.0}
    assert by_thread["default"] == {30.0}
    assert by_thread[threading.current_thread().name] == {11.0}


def test_the_guard_keeps_no_limit_per_connection() -> None:
    """The time limit travels with the call: no module-level table of connections' limits."""
    assert not hasattr(lockdown, "_TIMEOUTS") and not hasattr(lockdown, "timeout_for")
    assert "timeout_s" not in open_locked.__code__.co_varnames


def test_the_row_limit_is_the_calls_and_its_refusal_is_refused(policy, locked) -> None:
    assert len(run(locked, SQL, policy, limits=QueryLimits(rows=2)).rows) == 2
    with pytest.raises(Refused) as caught:
        run(locked, SQL, policy, limits=QueryLimits(rows=1))
    assert caught.value.code == "result_too_large"
    assert caught.value.exit_code == EXIT_REFUSED
    assert "1 rows" in caught.value.message
