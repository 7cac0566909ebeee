"""Runs analysts' queries on worker threads through ``enclave.query_service.run_query``.

It keeps the DuckDB connection of each running query under the client's query id, so a cancel
request can interrupt it, and calls the monitor after every query (R-QRY-4, R-QRY-5).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb

from enclave import query_service
from enclave.config import Paths
from enclave.errors import BadInput, EnclaveError, Forbidden, NotFound
from enclave.gateway.auth import Caller
from enclave.gateway.monitor import MonitorOutcome, QueryMonitor
from enclave.query_service import OpenSession

QUERY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
CANCEL_PATIENCE_S = 60.0


@dataclass(frozen=True)
class QueryLimits:
    """Per-query limits (R-QRY-4): DuckDB time and memory, rows in a result."""

    timeout_s: float
    memory_limit: str
    threads: int
    max_rows: int


@dataclass
class _Running:
    caller: Caller
    connection: duckdb.DuckDBPyConnection | None = None
    cancelled: bool = False


def check_query_id(query_id: str | None) -> str:
    """A client-chosen id (lowercase letters, digits, dashes), or a new one."""
    if query_id is None:
        return uuid.uuid4().hex
    if not (1 <= len(query_id) <= 64) or not set(query_id) <= QUERY_ID_CHARS:
        raise BadInput(
            "query_id_invalid",
            "query_id must be 1-64 lowercase letters, digits or dashes",
            "query_id 必须由 1-64 个小写字母、数字或连字符组成",
        )
    return query_id


class QueryRunner:
    """Queries on a thread pool; a registry of running ones for cancellation; monitoring after each."""

    def __init__(
        self,
        open_session: OpenSession,
        paths: Paths,
        monitor: QueryMonitor,
        limits: QueryLimits,
        *,
        workers: int,
        on_lock: Callable[[Caller], Any] | None = None,
    ) -> None:
        self.open_session = open_session
        self.paths = paths
        self.monitor = monitor
        self.limits = limits
        self.on_lock = on_lock
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="enclave-query")
        self._running: dict[str, _Running] = {}
        self._registry_lock = threading.Lock()
        self._monitor_locks: dict[tuple[str, str], threading.Lock] = {}

    async def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run blocking work (database, DuckDB) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    def _register(self, query_id: str, caller: Caller) -> _Running:
        with self._registry_lock:
            if query_id in self._running:
                raise BadInput(
                    "query_id_in_use",
                    f"A query with id {query_id} is already running",
                    f"ID 为 {query_id} 的查询正在运行",
                )
            running = self._running[query_id] = _Running(caller)
            return running

    def _attach(self, running: _Running, con: duckdb.DuckDBPyConnection) -> None:
        with self._registry_lock:
            running.connection = con
            if running.cancelled:
                raise BadInput("query_cancelled", "The query was cancelled", "查询已被取消")

    def cancel(self, query_id: str, caller: Caller) -> bool:
        """Interrupt a running query of the same user and project; False when it already finished."""
        with self._registry_lock:
            running = self._running.get(query_id)
            if running is None:
                return False
            if running.caller != caller:
                raise NotFound(
                    "query_not_found", f"No running query {query_id}", f"没有正在运行的查询 {query_id}"
                )
            running.cancelled = True
        threading.Thread(target=self._interrupt_until_done, args=(query_id, running), daemon=True).start()
        return True

    def _interrupt_until_done(self, query_id: str, running: _Running) -> None:
        """Interrupt until the query ends: an interrupt that lands between two statements is lost."""
        deadline = time.monotonic() + CANCEL_PATIENCE_S
        while time.monotonic() < deadline:
            with self._registry_lock:
                if self._running.get(query_id) is not running:
                    return
                con = running.connection
            if con is not None:
                con.interrupt()
            time.sleep(0.05)

    async def run(self, caller: Caller, sql: str, *, synthetic: bool, source: str, query_id: str) -> Any:
        """Register the query (so it can be cancelled even while it waits for a worker), then run it."""
        running = self._register(query_id, caller)
        try:
            return await self.call(self._run_blocking, running, query_id, sql, synthetic, source)
        except BaseException:
            if running.connection is None:  # never reached a worker
                with self._registry_lock:
                    self._running.pop(query_id, None)
            raise

    def _run_blocking(self, running: _Running, query_id: str, sql: str, synthetic: bool, source: str) -> Any:
        """One query, start to end, on a worker thread: run, audit (in run_query), then monitor."""
        caller = running.caller
        try:
            try:
                result = query_service.run_query(
                    self.open_session,
                    self.paths,
                    caller.project,
                    caller.user,
                    sql,
                    synthetic=synthetic,
                    source=source,
                    memory_limit=self.limits.memory_limit,
                    threads=self.limits.threads,
                    timeout_s=self.limits.timeout_s,
                    max_rows=self.limits.max_rows,
                    on_connection=lambda con: self._attach(running, con),
                )
            except EnclaveError as error:
                if not isinstance(error, Forbidden | NotFound):
                    self._monitor(caller, source, sql)
                raise
            self._monitor(caller, source, sql)
            return result
        finally:
            with self._registry_lock:
                self._running.pop(query_id, None)

    def _monitor(self, caller: Caller, source: str, sql: str) -> MonitorOutcome:
        key = (caller.project, caller.user)
        with self._registry_lock:
            lock = self._monitor_locks.setdefault(key, threading.Lock())
        with lock, self.open_session() as session:
            outcome = self.monitor.evaluate(session, caller.project, caller.user, source=source, sql=sql)
        if outcome.locked and self.on_lock is not None:
            self.on_lock(caller)
        return outcome

    def shutdown(self) -> None:
        with self._registry_lock:
            for running in self._running.values():
                running.cancelled = True
                if running.connection is not None:
                    running.connection.interrupt()
        self.executor.shutdown(wait=True, cancel_futures=True)
