"""Tables out of HTML (notebook outputs, exported pages) with the standard library's parser."""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._depth = 0
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._depth += 1
            if self._depth == 1:
                self.tables.append([])
        elif self._depth == 1 and tag == "tr":
            self._row = []
        elif self._depth == 1 and tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._depth = max(0, self._depth - 1)
        elif self._depth == 1 and tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif self._depth == 1 and tag == "tr" and self._row is not None:
            if self._row:
                self.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(text: str) -> list[pd.DataFrame]:
    """Each top-level ``<table>`` as a frame of strings, its first row the header.

    >>> html_tables("<table><tr><th>dx</th><th>n</th></tr><tr><td>I10</td><td>3</td></tr></table>")[0]
        dx  n
    0  I10  3
    """
    parser = _TableParser()
    parser.feed(text)
    parser.close()
    frames = []
    for rows in parser.tables:
        if not rows:
            continue
        width = max(len(r) for r in rows)
        padded = [r + [""] * (width - len(r)) for r in rows]
        header = [h or f"column_{i}" for i, h in enumerate(padded[0])]
        frames.append(pd.DataFrame(padded[1:], columns=_unique(header)))
    return frames


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}.{seen[name] - 1}")
    return out
