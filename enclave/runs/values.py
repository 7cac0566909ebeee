"""What a differing value looks like: a timestamp, a number, or anything else.

The reproducibility check names the likely cause of a difference plainly (a clock read, unseeded
randomness or floating point) instead of hiding it; these helpers decide which cells or tokens
qualify. Pure functions, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

# ISO 8601 dates and date-times (with optional fraction and zone), slashed dates, and clock times.
TIMESTAMP = (
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{4}/\d{2}/\d{2}(?: \d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
    r"|\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?"
)
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?%?"
_TIMESTAMP = re.compile(TIMESTAMP)
_NUMBER = re.compile(NUMBER)
# A token is a timestamp, a number, a word, or any other single visible character.
_TOKEN = re.compile(rf"{TIMESTAMP}|{NUMBER}|\w+|\S")


class Kind(StrEnum):
    TIMESTAMP = "timestamp"
    NUMBER = "number"
    OTHER = "other"


NOTES = {
    "timestamps": ("timestamps", "时间戳不同"),
    "numbers": (
        "numbers differ (unseeded randomness or floating point)",
        "数值不同（未设随机种子或浮点误差）",
    ),
    "both": (
        "timestamps and numbers differ (a clock, unseeded randomness or floating point)",
        "时间戳和数值不同（时钟、未设随机种子或浮点误差）",
    ),
}


def is_timestamp(value: str) -> bool:
    return _TIMESTAMP.fullmatch(value.strip()) is not None


def as_number(value: str) -> float | None:
    """The finite number a cell or token spells (``12``, ``-3.5e-2``, ``40%``), else ``None``."""
    text = value.strip()
    if not _NUMBER.fullmatch(text):  # never a timestamp: those have separators inside
        return None
    number = float(text.removesuffix("%"))
    return number if math.isfinite(number) else None


def _classify(before: str, after: str) -> tuple[Kind, float, float]:
    a, b = as_number(before), as_number(after)
    if a is not None and b is not None:
        return Kind.NUMBER, a, b
    if is_timestamp(before) and is_timestamp(after):
        return Kind.TIMESTAMP, 0.0, 0.0
    return Kind.OTHER, 0.0, 0.0


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


@dataclass
class Tally:
    """The differing pairs seen so far: how many of each kind and the largest numeric gaps."""

    timestamps: int = 0
    numbers: int = 0
    other: int = 0
    structural: bool = False  # shapes, lines or tokens that do not line up: not a value change
    max_abs: float = 0.0
    max_rel: float = 0.0

    def add(self, before: str, after: str) -> Kind:
        kind, a, b = _classify(before, after)
        if kind is Kind.TIMESTAMP:
            self.timestamps += 1
        elif kind is Kind.NUMBER:
            self.numbers += 1
            gap = abs(a - b)
            scale = max(abs(a), abs(b))
            self.max_abs = max(self.max_abs, gap)
            self.max_rel = max(self.max_rel, gap / scale if scale else 0.0)
        else:
            self.other += 1
        return kind

    def add_all(self, pairs: Iterable[tuple[str, str]]) -> None:
        for before, after in pairs:
            self.add(before, after)

    def note(self) -> dict[str, object] | None:
        """The nondeterminism note when every difference is a timestamp and/or a number, else None."""
        if self.structural or self.other or not (self.timestamps or self.numbers):
            return None
        key = "both" if self.timestamps and self.numbers else "timestamps" if self.timestamps else "numbers"
        en, zh = NOTES[key]
        out: dict[str, object] = {"nondeterminism": en, "nondeterminism_zh": zh}
        if self.numbers:
            out["numbers"] = self.numbers_dict()
        return out

    def numbers_dict(self) -> dict[str, float | int]:
        return {"cells": self.numbers, "max_abs_diff": self.max_abs, "max_rel_diff": self.max_rel}


def token_pairs(before: str, after: str) -> list[tuple[str, str]] | None:
    """The differing token pairs of two texts, or ``None`` when their tokens do not line up."""
    left, right = tokens(before), tokens(after)
    if len(left) != len(right):
        return None
    return [(a, b) for a, b in zip(left, right, strict=True) if a != b]
