"""Dates as day numbers (days since 1970-01-01), the representation of Arrow's date32."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

EPOCH = date(1970, 1, 1)
REFERENCE_DATE = date(2026, 1, 1)  # ages are completed years on this day
VISITS_FROM = date(2018, 1, 1)
VISITS_TO = date(2025, 12, 31)


def day_number(day: date) -> int:
    return (day - EPOCH).days


def year_month_day(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calendar year, month (1-12) and day (1-31) of day numbers."""
    stamps = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    months = stamps.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (stamps - months).astype(np.int64) + 1
    return year, month, day


def completed_years(birth_days: np.ndarray, on: date) -> np.ndarray:
    """Age in completed years on the given day."""
    year, month, day = year_month_day(birth_days)
    before_birthday = (month > on.month) | ((month == on.month) & (day > on.day))
    return (on.year - year - before_birthday).astype(np.int32)


def to_arrow(days: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """A date32 array; rows where ``missing`` is true are null."""
    values = pa.array(np.asarray(days, dtype=np.int32), mask=missing)
    return values.cast(pa.date32())
