"""Building millions of strings without a Python loop per row.

Fixed-width codes (IDs, phone numbers) are laid out as a byte matrix and handed to Arrow as one
buffer; categorical text is a dictionary array over a small vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DICTIONARY = pa.dictionary(pa.int32(), pa.string())
_PAIRS = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], dtype=np.uint8)


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII digits of non-negative integers, zero-padded on the left: a (rows x width) uint8 matrix."""
    number = np.asarray(values, dtype=np.int64).copy()
    if number.size and (number.min() < 0 or number.max() >= 10**width):
        raise ValueError(f"values must lie in [0, 10**{width})")
    out = np.empty((number.size, width), dtype=np.uint8)
    position = width
    while position >= 2:
        out[:, position - 2 : position] = _PAIRS[number % 100]
        number //= 100
        position -= 2
    if position == 1:
        out[:, 0] = 48 + number % 10
    return out


def literal(text: str, rows: int) -> np.ndarray:
    """An ASCII literal repeated on every row, as a (rows x len) matrix to stack beside digits."""
    return np.broadcast_to(np.frombuffer(text.encode("ascii"), dtype=np.uint8), (rows, len(text)))


def fixed_width(*columns: np.ndarray) -> pa.StringArray:
    """One string per row from ASCII byte matrices placed side by side."""
    matrix = np.ascontiguousarray(np.hstack(columns))
    rows, width = matrix.shape
    if rows * width >= 2**31:
        raise ValueError("too many bytes for one string array")
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(matrix))


@lru_cache(maxsize=64)
def _distinct(vocabulary: tuple[str, ...]) -> tuple[pa.Array, np.ndarray]:
    """The distinct words of a vocabulary, and where each vocabulary entry lands among them."""
    words = list(dict.fromkeys(vocabulary))
    position = {word: i for i, word in enumerate(words)}
    return pa.array(words, pa.string()), np.array([position[w] for w in vocabulary], dtype=np.int64)


def categorical(indices: np.ndarray, vocabulary: Sequence[str]) -> pa.DictionaryArray:
    """A dictionary array over the vocabulary entries that occur, each distinct word once.

    Parquet writes such an array as its dictionary page directly; a repeated word in the dictionary
    makes it fall back to plain encoding, whose output was not byte-for-byte reproducible in our runs.
    """
    words, remap = _distinct(tuple(vocabulary))
    codes = remap[np.asarray(indices, dtype=np.int64)]
    used = np.flatnonzero(np.bincount(codes, minlength=len(words)))
    compact = np.zeros(len(words), dtype=np.int32)
    compact[used] = np.arange(used.size, dtype=np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(compact[codes]), words.take(pa.array(used)))


def join(*parts: pa.Array) -> pa.Array:
    """Row-wise concatenation of string arrays."""
    return pc.binary_join_element_wise(*parts, "")


def take(vocabulary: Sequence[str], indices: np.ndarray) -> pa.Array:
    """Plain strings picked from a vocabulary."""
    return pa.array(list(vocabulary), pa.string()).take(pa.array(np.asarray(indices, dtype=np.int64)))
