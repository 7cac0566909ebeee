"""The differencing ledger (ARCHITECTURE §3.6, docs/guard.md "The differencing ledger").

Two released values whose populations differ by 1 to k-1 persons give those persons' values away
by subtraction (attack classes 4 and 5). For every released value the guard records a compact
sketch of its population, and a new value whose population differs from any recorded one (in the
same query or earlier in the project, by any analyst) by 1..k-1 persons is suppressed.

The sketch is an invertible Bloom lookup table (IBLT) over 64-bit person hashes: ``TABLES``
sub-tables of ``CELLS_PER_TABLE`` cells, each person in one cell per sub-table; a cell holds the
count, the XOR of the hashes and the XOR of a check value. Subtracting two sketches leaves the
symmetric difference of the two populations, which peels into its members when it is small (here
at most k-1, far below the table's capacity) and fails to peel when it is large. The person set
itself is never stored: 20 bytes per cell per population, whatever its size (1,000,000 persons
included; 3 × 16 cells for k = 5), where a bitmap of person ordinals would grow with the
population. Candidates are found by size first: two populations can differ by at most k-1
persons only if their sizes do. Because the sketch is linear, a tracker (three released
populations with A - B - C = the target) is found the same way, by peeling A - (B + C); it is
looked for among the latest ``TRACKER_WINDOW`` released populations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from enclave.audit import now_iso
from enclave.db.models import GuardLedgerEntry

TABLES = 3
TRACKER_WINDOW = 500  # three-population trackers are looked for among the latest released ones


def cells_per_table(k: int) -> int:
    """The sketch's width for a project's k: room to peel a difference of k-1 persons with margin."""
    return max(16, 4 * (k - 1))


def check_value(person: int) -> int:
    """A value that XOR does not commute with (the product of the hash's two halves), so that a cell
    holding one person can be told from a cell holding several."""
    return (person >> 32) * (person & 0xFFFFFFFF)


def cells_of(person: int, width: int) -> list[int]:
    return [t * width + ((person >> (16 * t)) % width) for t in range(TABLES)]


@dataclass(frozen=True)
class Sketch:
    """One population: its size and its IBLT."""

    size: int
    counts: np.ndarray  # int64[CELLS]
    hashes: np.ndarray  # uint64[CELLS]
    checks: np.ndarray  # uint64[CELLS]

    @property
    def width(self) -> int:
        return len(self.counts) // TABLES

    @classmethod
    def of(cls, persons: Iterable[int], k: int) -> Sketch:
        """The sketch of a set of person hashes (tests and reference)."""
        width = cells_per_table(k)
        counts = np.zeros(TABLES * width, np.int64)
        hashes = np.zeros(TABLES * width, np.uint64)
        checks = np.zeros(TABLES * width, np.uint64)
        size = 0
        for person in set(persons):
            size += 1
            for cell in cells_of(person, width):
                counts[cell] += 1
                hashes[cell] ^= np.uint64(person)
                checks[cell] ^= np.uint64(check_value(person))
        return cls(size, counts, hashes, checks)

    def to_bytes(self) -> bytes:
        return (
            self.counts.astype("<i4").tobytes()
            + self.hashes.astype("<u8").tobytes()
            + self.checks.astype("<u8").tobytes()
        )

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> Sketch:
        cells = len(blob) // 20
        counts = np.frombuffer(blob, "<i4", cells, 0).astype(np.int64)
        hashes = np.frombuffer(blob, "<u8", cells, cells * 4).astype(np.uint64)
        checks = np.frombuffer(blob, "<u8", cells, cells * 12).astype(np.uint64)
        return cls(size, counts, hashes, checks)


def difference(a: Sketch, b: Sketch, limit: int) -> int | None:
    """The number of persons in exactly one of the two populations, if at most ``limit``.

    None means "more than ``limit``" (the difference did not peel, or peeled past the limit).
    """
    width = a.width
    counts = a.counts - b.counts
    hashes = a.hashes ^ b.hashes
    checks = a.checks ^ b.checks
    found = 0
    progress = True
    while progress:
        progress = False
        for cell in np.flatnonzero((counts == 1) | (counts == -1)):
            sign = int(counts[cell])
            person = int(hashes[cell])
            if sign not in (1, -1) or check_value(person) != int(checks[cell]):
                continue  # no longer pure: an earlier peel in this pass emptied or changed it
            for other in cells_of(person, width):
                counts[other] -= sign
                hashes[other] ^= np.uint64(person)
                checks[other] ^= np.uint64(check_value(person))
            found += 1
            progress = True
            if found > limit:
                return None
    if counts.any() or hashes.any() or checks.any():
        # Did not peel: a large difference, unless the sizes are close and few cells are touched,
        # which a small difference that happened not to peel would look like (be conservative).
        touched = int(np.count_nonzero(counts | (hashes != 0)))
        if abs(a.size - b.size) <= limit and touched <= TABLES * limit:
            return limit
        return None
    return found


def merged(a: Sketch, b: Sketch) -> Sketch:
    """The sketch of the disjoint union of two populations (what a tracker adds up)."""
    return Sketch(a.size + b.size, a.counts + b.counts, a.hashes ^ b.hashes, a.checks ^ b.checks)


class Pool:
    """Released populations to look for trackers in, with their sizes and cell counts stacked once."""

    def __init__(self, sketches: Sequence[Sketch]) -> None:
        self.sketches = list(sketches)
        self._stacked: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, sketch: Sketch) -> None:
        self.sketches.append(sketch)
        self._stacked = None

    def stacked(self) -> tuple[np.ndarray, np.ndarray]:
        if self._stacked is None:
            sizes = np.array([p.size for p in self.sketches], dtype=np.int64)
            counts = np.stack([p.counts for p in self.sketches]) if self.sketches else np.zeros((0, 0))
            self._stacked = (sizes, counts)
        return self._stacked


def tracked(new: Sketch, pool: Pool | Sequence[Sketch], k: int) -> bool:
    """Is ``new`` within 1..k-1 persons of the sum of two released populations, or is a released one
    within 1..k-1 persons of ``new`` plus another (a three-query tracker: A - B - C = {target})?

    Cheap filters first, in numpy over the whole pool: the sizes must add up to within k-1, and the
    cell counts of the residue must sum to at most ``TABLES`` (k-1) in absolute value (each person
    of a small difference touches ``TABLES`` cells); only the few pairs left are peeled.
    """
    pool = pool if isinstance(pool, Pool) else Pool(pool)
    if len(pool.sketches) < 2 or any(len(p.counts) != len(new.counts) for p in pool.sketches[:1]):
        return False
    sizes, counts = pool.stacked()
    if counts.shape[1] != len(new.counts):
        return False
    limit = TABLES * (k - 1)
    # A tracker's part lies (nearly) inside its whole, cell by cell: keep only the released
    # populations that fit inside ``new`` (then ``new`` is the whole) or that ``new`` fits inside.
    inside_new = np.clip(counts - new.counts, 0, None).sum(axis=1) <= limit
    around_new = np.clip(new.counts - counts, 0, None).sum(axis=1) <= limit
    # ... and a third population of the right size must exist for the pair (sorted sizes, at once).
    order = np.sort(sizes)
    for keep, target in ((inside_new, new.size - sizes), (around_new, sizes - new.size)):
        low = np.searchsorted(order, target - (k - 1), side="left")
        high = np.searchsorted(order, target + (k - 1), side="right")
        keep &= (high > low) & (target > 0)
    for i in np.flatnonzero(inside_new | around_new):
        x = pool.sketches[int(i)]
        roles = ([(new, x)] if inside_new[i] else []) + ([(x, new)] if around_new[i] else [])
        for whole, part in roles:
            target = whole.size - part.size
            if target <= 0:
                continue
            near = np.flatnonzero(np.abs(sizes - target) <= k - 1)
            if near.size == 0:
                continue
            residue = (whole.counts - part.counts)[None, :] - counts[near]
            near = near[np.abs(residue).sum(axis=1) <= limit]
            for j in near:
                y = pool.sketches[int(j)]
                if y is x or y is whole:
                    continue
                found = difference(whole, merged(part, y), k - 1)
                if found is not None and 1 <= found <= k - 1:
                    return True
    return False


def differs_by_few(new: Sketch, old: Sketch, k: int) -> bool:
    """Do the two populations differ by 1..k-1 persons?"""
    if abs(new.size - old.size) > k - 1 or len(new.counts) != len(old.counts):
        return False
    found = difference(new, old, k - 1)
    return found is not None and 1 <= found <= k - 1


def _same(a: Sketch, b: Sketch) -> bool:
    return (
        a.size == b.size
        and len(a.counts) == len(b.counts)
        and bool((a.counts == b.counts).all() and (a.hashes == b.hashes).all())
    )


class Ledger:
    """Where released populations are kept; ``admit`` decides and records in one step."""

    def admit(self, sketches: Sequence[Sketch], k: int, *, label: str = "") -> list[bool]:
        """For each sketch (in order): may it be released? Admitted ones are recorded."""
        raise NotImplementedError

    def _decide(
        self,
        sketches: Sequence[Sketch],
        k: int,
        stored: Callable[[int, int], list[Sketch]],
        recent: Callable[[], list[Sketch]],
    ):
        admitted: list[Sketch] = []
        verdicts = [True] * len(sketches)
        pool = Pool([p for p in recent() if len(p.counts) == len(sketches[0].counts)] if sketches else [])
        # Decided in an order fixed by the populations themselves, not by the order the engine
        # returned the rows in: of two cells a few persons apart, the larger is always the one released.
        for i in sorted(range(len(sketches)), key=lambda i: (-sketches[i].size, sketches[i].to_bytes())):
            sketch = sketches[i]
            if sketch.size == 0:
                continue
            earlier = stored(sketch.size - (k - 1), sketch.size + (k - 1)) + admitted
            clash = any(differs_by_few(sketch, old, k) for old in earlier) or tracked(sketch, pool, k)
            verdicts[i] = not clash
            if not clash and not any(_same(sketch, old) for old in earlier):
                admitted.append(sketch)
                pool.add(sketch)
        return verdicts, admitted


class MemoryLedger(Ledger):
    """A ledger in memory: one analysis session, or a test."""

    def __init__(self) -> None:
        self.entries: list[Sketch] = []
        self._lock = threading.Lock()

    def admit(self, sketches: Sequence[Sketch], k: int, *, label: str = "") -> list[bool]:
        with self._lock:
            verdicts, admitted = self._decide(
                sketches,
                k,
                lambda low, high: [e for e in self.entries if low <= e.size <= high],
                lambda: self.entries[-TRACKER_WINDOW:],
            )
            self.entries += admitted
            return verdicts


OpenSession = Callable[[], AbstractContextManager[Session]]


class DatabaseLedger(Ledger):
    """The project's ledger in the state database: shared by every gateway, kept across restarts."""

    def __init__(self, open_session: OpenSession, project_id: str) -> None:
        self.open_session = open_session
        self.project_id = project_id

    def admit(self, sketches: Sequence[Sketch], k: int, *, label: str = "") -> list[bool]:
        with self.open_session() as session:
            if session.get_bind().dialect.name == "postgresql":
                # One decision at a time per project, across gateway replicas.
                session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:p))"), {"p": self.project_id})

            def stored(low: int, high: int) -> list[Sketch]:
                rows = session.execute(
                    select(GuardLedgerEntry.size, GuardLedgerEntry.sketch).where(
                        GuardLedgerEntry.project_id == self.project_id,
                        GuardLedgerEntry.size.between(low, high),
                    )
                )
                return [Sketch.from_bytes(size, blob) for size, blob in rows]

            def recent() -> list[Sketch]:
                rows = session.execute(
                    select(GuardLedgerEntry.size, GuardLedgerEntry.sketch)
                    .where(GuardLedgerEntry.project_id == self.project_id)
                    .order_by(GuardLedgerEntry.id.desc())
                    .limit(TRACKER_WINDOW)
                )
                return [Sketch.from_bytes(size, blob) for size, blob in rows]

            verdicts, admitted = self._decide(sketches, k, stored, recent)
            now = now_iso()
            session.add_all(
                GuardLedgerEntry(
                    project_id=self.project_id,
                    size=s.size,
                    sketch=s.to_bytes(),
                    created_at=now,
                    label=label[:200],
                )
                for s in admitted
            )
            return verdicts


def clear(session: Session, project_id: str) -> int:
    """Forget a project's released populations (project destruction)."""
    result = session.execute(delete(GuardLedgerEntry).where(GuardLedgerEntry.project_id == project_id))
    return int(result.rowcount or 0)
