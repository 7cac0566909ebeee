"""Seeded, vectorised draws shared by the table builders.

Every (table, chunk) pair gets its own random stream derived from the user's seed, so a table never
shifts another table's draws and the output is reproducible (R-PREP-19: same input, same output).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Stable stream numbers: changing one changes every generated data set.
STREAMS = {"patients": 1, "visits": 2, "labs": 3, "prescriptions": 4, "planted": 5}


def stream(seed: int, name: str, chunk: int = 0) -> np.random.Generator:
    """The random stream of one table (or planting step) for one chunk of patients."""
    sequence = np.random.SeedSequence([seed, STREAMS[name], chunk])
    return np.random.Generator(np.random.PCG64(sequence))


def cumulative(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """Normalised cumulative weights, the last exactly 1."""
    values = np.asarray(weights, dtype=np.float64)
    if values.ndim != 1 or values.size == 0 or (values < 0).any() or values.sum() <= 0:
        raise ValueError("weights must be a non-empty list of non-negative numbers with a positive sum")
    cdf = np.cumsum(values / values.sum())
    cdf[-1] = 1.0
    return cdf


def weighted(rng: np.random.Generator, weights: Sequence[float] | np.ndarray, size: int) -> np.ndarray:
    """``size`` indices drawn with the given relative weights."""
    cdf = cumulative(weights)
    return np.searchsorted(cdf, rng.random(size), side="right").astype(np.int32)


def conditional(rng: np.random.Generator, table: np.ndarray, group: np.ndarray) -> np.ndarray:
    """One index per row, drawn from the weights in ``table[group[row]]``.

    ``table`` is (groups x options); every row must have a positive sum. All rows are sampled in one
    ``searchsorted`` over the concatenated cumulative rows, each shifted by its group number.
    """
    weights = np.asarray(table, dtype=np.float64)
    sums = weights.sum(axis=1, keepdims=True)
    if (sums <= 0).any():
        raise ValueError("every group needs at least one option with a positive weight")
    cdf = np.cumsum(weights / sums, axis=1)
    cdf[:, -1] = 1.0
    options = weights.shape[1]
    shifted = (cdf + np.arange(weights.shape[0])[:, None]).ravel()
    targets = group + rng.random(group.size)
    flat = np.searchsorted(shifted, targets, side="right")
    flat = np.minimum(flat, group.astype(np.int64) * options + options - 1)  # guard float ties at the edge
    return (flat - group.astype(np.int64) * options).astype(np.int32)


def segment_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For segments of the given lengths laid end to end: each row's segment and its place in it."""
    owners = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    return owners, np.arange(owners.size, dtype=np.int64) - starts[owners]
