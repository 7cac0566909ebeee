"""Resident ID numbers (GB 11643) and mobile numbers, vectorised.

An ID number is 6 digits of area code, the birth date as YYYYMMDD, a 3-digit sequence whose last digit
is odd for men and even for women, and an ISO 7064 MOD 11-2 check character (0-9 or X). These are
the direct identifiers that preparation must remove (R-PREP-6, R-PREP-26), so the demo data must
look like the real thing to test that it does.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from enclave.demo_data import strings
from enclave.demo_data.dates import year_month_day

# Weight of position i (from the left) is 2**(17 - i) mod 11.
CHECK_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
CHECK_CHARACTERS = "10X98765432"  # indexed by (weighted sum mod 11)
_CHECK_BYTES = np.frombuffer(CHECK_CHARACTERS.encode("ascii"), dtype=np.uint8)
SEQUENCE_PAIRS = 499  # sequences 001-998: odd for men, even for women


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("an ID number body is exactly 17 ASCII digits")
    total = sum(int(ch) * int(w) for ch, w in zip(first17, CHECK_WEIGHTS, strict=True))
    return CHECK_CHARACTERS[total % 11]


def draw_sequences(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    """Sequence codes 1..998 whose parity encodes sex (odd: male)."""
    return (2 * rng.integers(0, SEQUENCE_PAIRS, male.size) + np.where(male, 1, 2)).astype(np.int64)


def identity_keys(area_codes: np.ndarray, birth_days: np.ndarray, sequences: np.ndarray) -> np.ndarray:
    """One integer per ID number body, to find duplicates cheaply."""
    return (area_codes.astype(np.int64) * 100_000 + (birth_days.astype(np.int64) + 50_000)) * 1000 + sequences


class IdRegistry:
    """ID numbers issued so far, so that no two patients share one across chunks."""

    def __init__(self) -> None:
        self._issued = np.empty(0, dtype=np.int64)

    def assign_sequences(
        self, rng: np.random.Generator, area_codes: np.ndarray, birth_days: np.ndarray, male: np.ndarray
    ) -> np.ndarray:
        """Sequence codes making every (area, birth date, sequence) unique, and record them."""
        sequences = draw_sequences(rng, male)
        for _ in range(1000):
            keys = identity_keys(area_codes, birth_days, sequences)
            clash = np.isin(keys, self._issued)
            _, first = np.unique(keys, return_index=True)
            repeated = np.ones(keys.size, dtype=bool)
            repeated[first] = False
            clash |= repeated
            if not clash.any():
                # Two sorted runs: the stable sort (timsort) merges them in linear time.
                self._issued = np.sort(np.concatenate([self._issued, np.sort(keys)]), kind="stable")
                return sequences
            sequences[clash] = draw_sequences(rng, male[clash])
        raise RuntimeError("could not find unique ID sequence numbers; the cohort is too dense")


def id_numbers(area_codes: np.ndarray, birth_days: np.ndarray, sequences: np.ndarray) -> pa.StringArray:
    """18-character resident ID numbers with a valid check character."""
    year, month, day = year_month_day(birth_days)
    body = np.hstack(
        [
            strings.digits(area_codes, 6),
            strings.digits(year, 4),
            strings.digits(month, 2),
            strings.digits(day, 2),
            strings.digits(sequences, 3),
        ]
    )
    total = (body.astype(np.int64) - 48) @ CHECK_WEIGHTS
    check = _CHECK_BYTES[total % 11][:, None]
    return strings.fixed_width(body, check)


def mobile_numbers(rng: np.random.Generator, prefixes: tuple[int, ...], rows: int) -> pa.StringArray:
    """11-digit mobile numbers: a network prefix and 8 random digits."""
    prefix = np.asarray(prefixes, dtype=np.int64)[rng.integers(0, len(prefixes), rows)]
    return strings.fixed_width(strings.digits(prefix, 3), strings.digits(rng.integers(0, 10**8, rows), 8))
