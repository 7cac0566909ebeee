"""The differencing ledger's sketches against the sets they stand for (docs/guard.md, the ledger).

Random populations of realistic sizes: a difference of 1..k-1 persons must always be found, a large
one (or a disjoint population of the same size) must not be mistaken for a small one, and a
three-population tracker must be found through the sketches' linearity.
"""

from __future__ import annotations

import random

import pytest

from enclave.guard.ledger import MemoryLedger, Sketch, differs_by_few, tracked

K = 5


def _persons(rng: random.Random, n: int) -> list[int]:
    return [rng.getrandbits(64) for _ in range(n)]


@pytest.mark.parametrize("difference", [1, 2, 3, 4])
def test_every_small_difference_is_found(difference: int) -> None:
    rng = random.Random(difference)
    for _ in range(500):
        base = _persons(rng, rng.choice((5, 40, 700, 5000)))
        extra = _persons(rng, difference)
        split = rng.randint(0, difference)
        a = Sketch.of(base + extra[:split], K)
        b = Sketch.of(base + extra[split:], K)
        assert differs_by_few(a, b, K)


def test_identical_and_large_differences_are_not_small() -> None:
    rng = random.Random(7)
    for _ in range(300):
        base = _persons(rng, rng.randint(5, 3000))
        assert not differs_by_few(Sketch.of(base, K), Sketch.of(list(base), K), K)
        far = base + _persons(rng, rng.randint(K, 60))
        assert not differs_by_few(Sketch.of(base, K), Sketch.of(far, K), K) or len(far) - len(base) < K


def test_disjoint_populations_of_similar_size_are_not_confused() -> None:
    rng = random.Random(11)
    alarms = 0
    for _ in range(2000):
        n = rng.randint(5, 40)
        a = Sketch.of(_persons(rng, n), K)
        b = Sketch.of(_persons(rng, n + rng.randint(0, K - 1)), K)
        alarms += differs_by_few(a, b, K)
    assert alarms <= 2  # a rare conservative false alarm is allowed, a pattern is not


def test_sketches_survive_storage() -> None:
    rng = random.Random(3)
    sketch = Sketch.of(_persons(rng, 123), K)
    again = Sketch.from_bytes(sketch.size, sketch.to_bytes())
    assert (again.counts == sketch.counts).all() and (again.hashes == sketch.hashes).all()
    assert (again.checks == sketch.checks).all() and len(sketch.to_bytes()) == 20 * len(sketch.counts)
    # The sketch's size does not grow with its population.
    assert len(Sketch.of(_persons(rng, 100_000), K).to_bytes()) == len(sketch.to_bytes())


def test_a_three_population_tracker_is_found() -> None:
    rng = random.Random(5)
    zip_100, zip_999_men, target = _persons(rng, 80), _persons(rng, 6), _persons(rng, 1)
    both_zips = Sketch.of(zip_100 + zip_999_men + target, K)
    pool = [Sketch.of(zip_100, K), Sketch.of(zip_999_men, K)]
    assert tracked(both_zips, pool, K)
    assert not tracked(Sketch.of(zip_100 + zip_999_men, K), pool, K)  # exactly the sum: nothing new
    # In either order: the whole first, then a part.
    assert tracked(Sketch.of(zip_999_men, K), [both_zips, Sketch.of(zip_100, K)], K)


def test_admit_records_and_refuses_within_one_call_and_across_calls() -> None:
    rng = random.Random(9)
    everyone = _persons(rng, 200)
    ledger = MemoryLedger()
    all_but_one = Sketch.of(everyone[1:], K)
    assert ledger.admit([Sketch.of(everyone, K), all_but_one], K) == [True, False]
    assert ledger.admit([all_but_one], K) == [False]
    assert ledger.admit([Sketch.of(everyone, K)], K) == [True]  # the same population again
    assert ledger.admit([Sketch.of(everyone[10:], K)], K) == [True]  # ten persons apart
    assert len(ledger.entries) == 2


def test_verdicts_do_not_depend_on_the_order_of_the_cells() -> None:
    """Two cells of one answer a few persons apart: the same one is released whatever order the engine
    returned the rows in (the twin, and the first release on real data, are deterministic)."""
    rng = random.Random(7)
    base = _persons(rng, 40)
    cells = [Sketch.of(base, 5), Sketch.of(base[:-2], 5), Sketch.of(_persons(rng, 40), 5)]
    forward = MemoryLedger().admit(cells, 5)
    backward = MemoryLedger().admit(cells[::-1], 5)[::-1]
    assert forward == backward
    assert forward == [True, False, True]  # the larger of the two close cells, whatever the order
