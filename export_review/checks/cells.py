"""Reading table cells: numbers, and which columns hold person counts or magnitudes."""

from __future__ import annotations

import re

import pandas as pd

COUNT_WORDS = (
    "n|count|counts|cnt|freq|frequency|num|number|cases|patients|persons|people|subjects|individuals"
    "|deaths|admissions|events|人数|例数|频数|计数|病例数|人次"
)
COUNT_NAME = re.compile(rf"^(?:(?:{COUNT_WORDS})(?:[_ ].*)?|.*[_ ](?:{COUNT_WORDS}))$", re.IGNORECASE)
MAGNITUDE_NAME = re.compile(
    r"(sum|mean|avg|average|median|total|amount|cost|income|spend|金额|费用|均值|总和|合计)", re.IGNORECASE
)
TOP1_NAME = re.compile(r"^(?:.*[_ ])?(max|top_?1|largest|first_largest|最大)$", re.IGNORECASE)
TOP2_NAME = re.compile(r"^(?:.*[_ ])?(top_?2|second|second_largest|第二)$", re.IGNORECASE)
NUMBER = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")


def parse_number(cell: str) -> float | None:
    text = cell.strip()
    if not NUMBER.match(text):
        return None
    return float(text.replace(",", ""))


def numbers(column: pd.Series) -> list[float | None]:
    return [parse_number(str(v)) for v in column]


def is_numeric(column: pd.Series, share: float = 0.9) -> bool:
    values = [v for v in numbers(column) if v is not None]
    filled = sum(1 for v in column if str(v).strip())
    return filled > 0 and len(values) >= share * filled


def is_integer_column(column: pd.Series) -> bool:
    values = [v for v in numbers(column) if v is not None]
    return is_numeric(column) and all(v == int(v) and v >= 0 for v in values)


def count_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that count persons: named like counts, or the body of a cross-tabulation
    (a label column followed only by non-negative whole numbers)."""
    named = [c for c in frame.columns if COUNT_NAME.match(c.strip()) and is_integer_column(frame[c])]
    if named:
        return named
    columns = list(frame.columns)
    if len(columns) >= 2 and not is_numeric(frame[columns[0]]):
        body = columns[1:]
        if all(is_integer_column(frame[c]) for c in body) and not any(MAGNITUDE_NAME.search(c) for c in body):
            return body
    return []


def magnitude_columns(frame: pd.DataFrame) -> list[str]:
    counts = set(count_columns(frame))
    return [
        c
        for c in frame.columns
        if c not in counts
        and MAGNITUDE_NAME.search(c)
        and not TOP1_NAME.match(c)
        and not TOP2_NAME.match(c)
        and is_numeric(frame[c])
    ]


def cell_location(label: str, row: int, column: str) -> dict[str, object]:
    """Rows are numbered from 1, as a reviewer reads them under the header."""
    return {"table": label, "row": row + 1, "column": column}
