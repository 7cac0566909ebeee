"""Admission control: which guarded queries run now, and in what order the others wait (issue #17).

DuckDB's memory limit belongs to a database instance (one per views file and process), so queries
on the same project share it, and without spilling a query that finds it full fails. Instead of
failing, each query is given a memory *budget* from the estimate the guard already computes (the
largest cardinality in DuckDB's ``EXPLAIN`` plan, ``enclave.guard.execute``) and waits until its
budget fits in its pool.

* **Two lanes.** A query estimated at no more than ``light_rows`` rows is *light*; the rest are
  *heavy*. Light queries are considered first. Heavy queries run at most ``heavy_slots`` at a time
  and may take only the pool's share left after ``light_memory_share``, so light queries always
  find a free slot and memory; light queries leave one slot for heavy ones, so neither starves.
* **Fair per user.** Waiting queries are kept per user (project and user) and, within a lane, the
  user served least recently goes first (round robin); each user runs at most ``user_slots``
  queries per lane. One analyst's flood of heavy queries cannot starve another's.
* **Exclusive retries.** A query that ran out of memory or time *while sharing* the server is run
  once more, alone in its pool's heavy lane; only the outcome of a run that had the server to itself
  is the analyst's (``enclave.gateway.runner``).

A failure caused by the server, not by the query, is a ``ServerUnavailable`` (HTTP 503 with
``Retry-After``, defined by ``enclave.query_service``): it is audited as a server failure and never
counted by the monitoring rules that lock users (``enclave.gateway.monitor``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable

from enclave.errors import BadInput, EnclaveError
from enclave.guard.limits import parse_bytes
from enclave.query_service import SERVER_BUSY, SERVER_SHUTDOWN, ServerUnavailable

__all__ = ["SERVER_BUSY", "Admission", "ServerUnavailable", "Ticket", "parse_bytes"]


@dataclass(eq=False)
class Ticket:
    """One query's place: its user, its memory pool and budget, its lane, and where it is."""

    user: tuple[str, str]  # (project, user)
    pool: Hashable  # the DuckDB instance it runs in: (project, synthetic)
    cost: int  # bytes of the pool it holds while it runs
    light: bool
    exclusive: bool = False
    seq: int = 0
    enqueued: float = field(default_factory=time.monotonic)
    state: str = "queued"  # queued → running → done
    contended: bool = False  # another query ran beside it at some point

    @property
    def lane(self) -> str:
        return "light" if self.light else "heavy"


class Admission(LoggingConfigurable):
    """Memory budgets from the plan estimate, a fast lane for light queries, round robin per user."""

    bytes_per_row = Integer(
        128,
        min=1,
        help="Memory budget per row of the plan's largest estimated cardinality (bytes). A query's budget "
        "is this times its estimate, at least `min_query_bytes`, at most its lane's share of the pool.",
    ).tag(config=True)
    min_query_bytes = Integer(16 * 1024**2, min=0, help="Smallest memory budget of a query (bytes).").tag(
        config=True
    )
    light_rows = Integer(
        1_000_000,
        min=0,
        help="A query whose plan estimates at most this many rows at any step is light: it takes the fast "
        "lane and never waits behind heavy queries.",
    ).tag(config=True)
    light_memory_share = Float(
        0.25,
        min=0.0,
        max=0.9,
        help="Share of each memory pool kept for light queries; heavy ones share the rest.",
    ).tag(config=True)
    heavy_slots = Integer(
        1,
        min=1,
        help="Heavy queries running at once (at most the gateway's `workers` less one). DuckDB runs one "
        "query on all `query_threads`, so on a small host a second heavy query adds no throughput and "
        "slows the light ones (bench/gateway.py, 2 cores); raise it with the cores.",
    ).tag(config=True)
    user_slots = Integer(2, min=1, help="Queries one user runs at once in each lane; more wait.").tag(
        config=True
    )
    max_waiting = Integer(
        128, min=1, help="Queries waiting at most; a query beyond this is answered `server_busy` (503)."
    ).tag(config=True)
    user_max_waiting = Integer(
        32, min=1, help="Queries one user may have waiting; a query beyond this is answered `server_busy`."
    ).tag(config=True)
    queue_timeout_s = Float(
        600.0, min=0.1, help="A query waiting longer than this is answered `server_busy` (503)."
    ).tag(config=True)
    retry_after_s = Integer(30, min=1, help="The `Retry-After` sent with a 503 (seconds).").tag(config=True)

    def __init__(self, *, memory_limit: str = "2GB", workers: int = 4, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_bytes = parse_bytes(memory_limit)
        self.workers = workers
        self._cond = threading.Condition()
        self._waiting: list[Ticket] = []
        self._running: set[Ticket] = set()
        self._used: dict[Hashable, int] = {}  # pool → bytes held (both lanes)
        self._used_heavy: dict[Hashable, int] = {}
        self._served: dict[tuple[tuple[str, str], bool], int] = {}  # (user, light) → last grant
        self._counter = itertools.count(1)  # tickets, in the order they arrive
        self._grants = itertools.count(1)  # grants, for the round robin
        self._closed = False

    # -- budgets -------------------------------------------------------------------------------

    @property
    def heavy_capacity(self) -> int:
        return max(1, int(self.pool_bytes * (1.0 - self.light_memory_share)))

    @property
    def heavy_limit(self) -> int:
        """Heavy queries at once: never every worker, so a light query always finds one free."""
        return max(1, min(self.heavy_slots, self.workers - 1))

    def ticket(
        self, user: tuple[str, str], pool: Hashable, estimate: int | None, *, exclusive: bool = False
    ) -> Ticket:
        """A ticket for a query of ``estimate`` rows (None: not known, treated as heavy)."""
        light = estimate is not None and estimate <= self.light_rows and not exclusive
        rows = estimate if estimate is not None else self.light_rows + 1
        cost = max(self.min_query_bytes, rows * self.bytes_per_row)
        cost = self.heavy_capacity if exclusive else min(cost, self.heavy_capacity)
        return Ticket(user, pool, cost, light, exclusive)

    # -- waiting and running -------------------------------------------------------------------

    def acquire(self, ticket: Ticket, cancelled: Callable[[], bool]) -> None:
        """Wait until the ticket may run. Raises ``query_cancelled`` or a ``ServerUnavailable``."""
        with self._cond:
            if self._closed:
                raise ServerUnavailable(SERVER_SHUTDOWN, retry_after_s=self.retry_after_s)
            mine = sum(1 for t in self._waiting if t.user == ticket.user)
            if len(self._waiting) >= self.max_waiting or mine >= self.user_max_waiting:
                raise ServerUnavailable(SERVER_BUSY, retry_after_s=self.retry_after_s, waited_s=0.0)
            ticket.seq = next(self._counter)
            ticket.enqueued = time.monotonic()
            self._waiting.append(ticket)
            self._schedule()
            deadline = ticket.enqueued + self.queue_timeout_s
            while ticket.state == "queued":
                error: EnclaveError | None = None
                if self._closed:
                    error = ServerUnavailable(SERVER_SHUTDOWN, retry_after_s=self.retry_after_s)
                elif cancelled():
                    error = BadInput(
                        "query_cancelled",
                        "The query was cancelled.",
                        "查询已被取消。",
                        details={"cancelled": True},
                    )
                elif time.monotonic() >= deadline:
                    waited = round(time.monotonic() - ticket.enqueued, 1)
                    error = ServerUnavailable(SERVER_BUSY, retry_after_s=self.retry_after_s, waited_s=waited)
                if error is not None:
                    self._waiting.remove(ticket)
                    ticket.state = "done"
                    self._schedule()
                    raise error
                self._cond.wait(0.2)

    def release(self, ticket: Ticket) -> None:
        """The query ended (or never started): free its budget and let the next ones in."""
        with self._cond:
            if ticket.state == "running":
                self._running.discard(ticket)
                self._used[ticket.pool] -= ticket.cost
                if not ticket.light:
                    self._used_heavy[ticket.pool] -= ticket.cost
            elif ticket in self._waiting:
                self._waiting.remove(ticket)
            ticket.state = "done"
            self._schedule()

    def close(self) -> None:
        """The gateway is stopping: every waiting query ends with ``server_shutdown``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def position(self, ticket: Ticket) -> int | None:
        """About how many queries of its lane run before this one, itself included (round robin)."""
        with self._cond:
            if ticket.state != "queued":
                return None
            lane = [t for t in self._waiting if t.light == ticket.light]
            mine = [t for t in lane if t.user == ticket.user]
            rank = 1 + sum(1 for t in mine if t.seq < ticket.seq)  # its round
            heads = {t.user: t for t in self._order(lane)}
            turn = {user: (self._served.get((user, ticket.light), 0), t.seq) for user, t in heads.items()}
            ahead = rank - 1
            for user in set(heads) - {ticket.user}:
                count = sum(1 for t in lane if t.user == user)
                ahead += min(count, rank if turn[user] < turn[ticket.user] else rank - 1)
            return ahead + 1

    def snapshot(self) -> dict[str, int]:
        """Queries waiting and running, per lane (metrics, tests)."""
        with self._cond:
            return {
                "waiting_light": sum(1 for t in self._waiting if t.light),
                "waiting_heavy": sum(1 for t in self._waiting if not t.light),
                "running_light": sum(1 for t in self._running if t.light),
                "running_heavy": sum(1 for t in self._running if not t.light),
            }

    # -- the scheduler (called with the lock held) ---------------------------------------------

    def _fits(self, ticket: Ticket) -> bool:
        if len(self._running) >= self.workers:
            return False
        same_lane = [t for t in self._running if t.light == ticket.light]
        if sum(1 for t in same_lane if t.user == ticket.user) >= self.user_slots:
            return False
        if ticket.light:
            if len(same_lane) >= max(1, self.workers - 1):  # a slot stays free for heavy queries
                return False
            return self._used.get(ticket.pool, 0) + ticket.cost <= self.pool_bytes or not self._running
        if len(same_lane) >= self.heavy_limit:
            return False
        return self._used_heavy.get(ticket.pool, 0) + ticket.cost <= self.heavy_capacity

    def _order(self, lane: list[Ticket]) -> list[Ticket]:
        """Each user's oldest ticket, the user served least recently in this lane first."""
        heads: dict[tuple[str, str], Ticket] = {}
        for t in lane:
            if t.user not in heads or t.seq < heads[t.user].seq:
                heads[t.user] = t
        return sorted(heads.values(), key=lambda t: (self._served.get((t.user, t.light), 0), t.seq))

    def _schedule(self) -> None:
        granted = True
        while granted:
            granted = False
            for light in (True, False):
                blocked: set[Hashable] = set()  # pools where an older heavy query waits for memory
                for ticket in self._order([t for t in self._waiting if t.light == light]):
                    if ticket.pool in blocked:
                        continue
                    if self._fits(ticket):
                        self._grant(ticket)
                        granted = True
                        break
                    if not light and len(self._running) < self.workers:
                        memory_short = (
                            self._used_heavy.get(ticket.pool, 0) + ticket.cost > self.heavy_capacity
                        )
                        if memory_short:
                            blocked.add(ticket.pool)  # reserve: no younger heavy query overtakes it
                if granted:
                    break
        self._cond.notify_all()

    def _grant(self, ticket: Ticket) -> None:
        self._waiting.remove(ticket)
        if self._running:
            ticket.contended = True
            for other in self._running:
                other.contended = True
        ticket.state = "running"
        self._running.add(ticket)
        self._used[ticket.pool] = self._used.get(ticket.pool, 0) + ticket.cost
        if not ticket.light:
            self._used_heavy[ticket.pool] = self._used_heavy.get(ticket.pool, 0) + ticket.cost
        self._served[ticket.user, ticket.light] = next(self._grants)
