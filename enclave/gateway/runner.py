"""Runs analysts' queries on worker threads through ``enclave.query_service.run_query``.

Each query is registered under the client's query id as a ``_Running``, which is also the
``QueryHooks`` of its run: it keeps the query's DuckDB connection, so a cancel request can interrupt
it, and its place in admission control. The runner calls ``run_query`` with the gateway's
``QueryLimits`` and that object, and the monitor after every query (R-QRY-4, R-QRY-5).

Between the guard's checks and the query's execution, admission control (``enclave.gateway.admission``)
decides when it runs: a query waits (``queued``, with a position the client can ask for) rather
than failing for want of memory. A query that ran out of memory or time while sharing the server is
run once more, alone; such server-caused failures, a full queue and a shutdown are
``ServerUnavailable`` (503): audited as server failures and never counted by the monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import duckdb

from enclave import query_service
from enclave.config import Paths
from enclave.errors import BadInput, EnclaveError, Forbidden, NotFound
from enclave.gateway.admission import Admission, Ticket
from enclave.gateway.monitor import MonitorOutcome, QueryMonitor
from enclave.guard.limits import QueryLimits
from enclave.query_service import (
    SERVER_BUSY,
    SERVER_RESOURCES,
    SERVER_SHUTDOWN,
    SERVER_TIMEOUT,
    OpenSession,
    ServerUnavailable,
)
from enclave.services.auth import Caller

QUERY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
CANCEL_PATIENCE_S = 60.0


@dataclass(eq=False)
class _Running:
    """One registered query, and the ``QueryHooks`` of its runs (``enclave.query_service``)."""

    caller: Caller
    synthetic: bool
    admission: Admission
    lock: threading.Lock = field(repr=False)  # the runner's registry lock
    connection: duckdb.DuckDBPyConnection | None = None
    cancelled: bool = False
    shutdown: bool = False  # interrupted because the gateway is stopping: the server's failure
    ticket: Ticket | None = None  # its place in admission control, while it waits or runs
    exclusive: bool = False  # run alone: the retry of a failure while sharing the server
    started: float = 0.0

    def opened(self, con: duckdb.DuckDBPyConnection) -> None:
        """Keep the connection for a cancel; a query cancelled meanwhile stops here."""
        with self.lock:
            self.connection = con
            if self.cancelled:
                raise BadInput("query_cancelled", "The query was cancelled", "查询已被取消")

    def admit(self, estimate: int | None) -> None:
        """The guard's plan estimate: wait until admission control lets the query run."""
        user, pool = (self.caller.project, self.caller.user), (self.caller.project, self.synthetic)
        ticket = self.admission.ticket(user, pool, estimate, exclusive=self.exclusive)
        with self.lock:
            self.ticket = ticket
        self.admission.acquire(ticket, lambda: self.cancelled)

    def release(self) -> None:
        """Give its place in admission control back (after each run)."""
        with self.lock:
            ticket, self.ticket = self.ticket, None
        if ticket is not None:
            self.admission.release(ticket)

    def classify(self, error: EnclaveError) -> EnclaveError:
        """The server's failures as ``ServerUnavailable``; every other error stays the analyst's."""
        if isinstance(error, ServerUnavailable):
            return error
        retry_after_s = self.admission.retry_after_s
        if self.shutdown and error.code == "query_cancelled":
            return ServerUnavailable(SERVER_SHUTDOWN, retry_after_s=retry_after_s)
        ticket = self.ticket
        shared = ticket is not None and ticket.state == "running"
        shared = shared and ticket.contended and not ticket.exclusive
        if shared and error.code == "query_resources":
            return ServerUnavailable(SERVER_RESOURCES, retry_after_s=retry_after_s, retry=True)
        if shared and error.code == "query_timeout":
            return ServerUnavailable(SERVER_TIMEOUT, retry_after_s=retry_after_s, retry=True)
        return error


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
        admission: Admission | None = None,
    ) -> None:
        self.open_session = open_session
        self.paths = paths
        self.monitor = monitor
        self.limits = limits
        self.on_lock = on_lock
        self.admission = admission or Admission(memory_limit=limits.memory, workers=workers)
        # Threads for queries that run and for those that wait in admission control; at most `workers`
        # run at once. Short blocking work (access checks, views) has threads of its own, so it never
        # waits behind queued queries.
        self.max_in_flight = workers + self.admission.max_waiting
        self.executor = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="enclave-query")
        self.helpers = ThreadPoolExecutor(max_workers=max(4, workers), thread_name_prefix="enclave-gateway")
        self._running: dict[str, _Running] = {}
        self._registry_lock = threading.Lock()
        self._monitor_locks: dict[tuple[str, str], threading.Lock] = {}

    async def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run short blocking work (database reads) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.helpers, func, *args)

    def _register(self, query_id: str, caller: Caller, synthetic: bool) -> _Running:
        with self._registry_lock:
            if query_id in self._running:
                raise BadInput(
                    "query_id_in_use",
                    f"A query with id {query_id} is already running",
                    f"ID 为 {query_id} 的查询正在运行",
                )
            # The analyst's queries from every client (their server and their batch runs) count together.
            who = (caller.project, caller.user)
            mine = sum(1 for r in self._running.values() if (r.caller.project, r.caller.user) == who)
            per_user = self.admission.user_max_waiting + 2 * self.admission.user_slots
            if len(self._running) >= self.max_in_flight or mine >= per_user:
                raise ServerUnavailable(SERVER_BUSY, retry_after_s=self.admission.retry_after_s, waited_s=0.0)
            running = _Running(
                caller, synthetic, self.admission, self._registry_lock, started=time.monotonic()
            )
            self._running[query_id] = running
            return running

    def status(self, query_id: str, caller: Caller) -> dict[str, Any]:
        """Where the caller's query is: ``starting`` (checks), ``queued`` (with its position), ``running``."""
        with self._registry_lock:
            running = self._running.get(query_id)
            if running is None or running.caller != caller:
                raise NotFound(
                    "query_not_found", f"No running query {query_id}", f"没有正在运行的查询 {query_id}"
                )
            ticket = running.ticket
        status: dict[str, Any] = {
            "query_id": query_id,
            "state": "starting",
            "position": None,
            "lane": None,
            "elapsed_s": round(time.monotonic() - running.started, 1),
        }
        if ticket is not None:
            position = self.admission.position(ticket)
            status["lane"] = ticket.lane
            status["state"] = "queued" if position is not None else "running"
            status["position"] = position
        elif running.connection is not None:
            status["state"] = "running"
        return status

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
                with contextlib.suppress(duckdb.ConnectionException):  # closed between two runs
                    con.interrupt()
            time.sleep(0.05)

    async def run(self, caller: Caller, sql: str, *, synthetic: bool, source: str, query_id: str) -> Any:
        """Register the query (so it can be cancelled even while it waits for a worker), then run it."""
        try:
            running = self._register(query_id, caller, synthetic)
        except ServerUnavailable as error:
            await self.call(self._audit_busy, caller, sql, error, source, synthetic, query_id)
            raise
        try:
            loop = asyncio.get_running_loop()
            work = (self._run_blocking, running, query_id, sql, source)
            return await loop.run_in_executor(self.executor, *work)
        except BaseException:
            if running.connection is None:  # never reached a worker
                with self._registry_lock:
                    self._running.pop(query_id, None)
            raise

    def _audit_busy(
        self, caller: Caller, sql: str, error: ServerUnavailable, source: str, synthetic: bool, query_id: str
    ) -> None:
        query_service.audit_server_failure(
            self.open_session,
            caller.project,
            caller.user,
            sql,
            error,
            source=source,
            synthetic=synthetic,
            run_id=caller.run_id,
            query_id=query_id,
        )

    def _run_blocking(self, running: _Running, query_id: str, sql: str, source: str) -> Any:
        """One query, start to end, on a worker thread: run, audit (in run_query), then monitor.

        A run that failed for want of memory or time while sharing the server is audited as a server
        failure and run once more, alone (``exclusive``); that run's outcome is the analyst's.
        """
        caller = running.caller
        try:
            while True:
                try:
                    result = query_service.run_query(
                        self.open_session,
                        self.paths,
                        caller.project,
                        caller.user,
                        sql,
                        synthetic=running.synthetic,
                        source=source,
                        limits=self.limits,
                        hooks=running,
                        query_id=query_id,
                        run_id=caller.run_id,
                    )
                except ServerUnavailable as error:
                    if error.retry and not running.exclusive and not running.cancelled:
                        running.exclusive = True
                        continue
                    raise  # the server's failure: nothing for the monitor to count
                except EnclaveError as error:
                    if not isinstance(error, Forbidden | NotFound):
                        self._monitor(caller, source, sql)
                    raise
                finally:
                    running.release()
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
        """Stop every query (each ends as ``server_shutdown``, not the analyst's failure), then the pools."""
        self.admission.close()
        with self._registry_lock:
            for running in self._running.values():
                running.shutdown = True
                running.cancelled = True
                if running.connection is not None:
                    with contextlib.suppress(duckdb.ConnectionException):
                        running.connection.interrupt()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.helpers.shutdown(wait=True, cancel_futures=True)
