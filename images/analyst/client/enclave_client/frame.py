"""A query's result: a pandas DataFrame whose display says how many groups the guard suppressed.

Operations on it return plain DataFrames; ``attrs`` hold the same values as ever.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd


def suppressed_caption(count: int) -> str:
    """The bilingual note under a result with suppressed groups.

    >>> suppressed_caption(2)
    '2 groups below the minimum cell count were suppressed / 2 个低于最小单元格计数的组已被隐藏'
    """
    en = f"{count} groups below the minimum cell count were suppressed"
    return f"{en} / {count} 个低于最小单元格计数的组已被隐藏"


class QueryFrame(pd.DataFrame):
    """The gateway's answer; shows ``attrs["suppressed_groups"]`` in its ``repr`` and notebook display."""

    @property
    def _constructor(self) -> Any:
        return pd.DataFrame

    def _caption(self) -> str:
        count = int(self.attrs.get("suppressed_groups", 0) or 0)
        return suppressed_caption(count) if count else ""

    def __repr__(self) -> str:
        caption = self._caption()
        return super().__repr__() + (f"\n[{caption}]" if caption else "")

    def _repr_html_(self) -> str | None:
        table = super()._repr_html_()
        caption = self._caption()
        if not caption or table is None:
            return table
        note = f'<p class="enclave-suppressed"><strong>{html.escape(caption)}</strong></p>'
        return table + note
