"""Previews for reviewers: tables with the cells the checks found marked, images (PNG and JPEG as they
are, SVG sanitised) and notebooks rendered to sanitised HTML.

Everything is read from the vault copy, never from the workspace, and only once its hash matches the
request's record. Tables come from the same parser the checks used (``StoredFile.content``); every
value is a string here and the template escapes it (R-QRY-6).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from enclave.config import Paths
from enclave.db.models import ExportFile
from enclave.errors import EnclaveError
from export_review.checks import StoredFile
from export_review.submission import file_store
from export_review.web.notebook import NotebookPreview, render_notebook
from export_review.web.sanitise import sanitise_svg

PREVIEW_ROWS = 20
PREVIEW_COLUMNS = 50
MAX_MARKED_ROWS = 100  # rows past the first ones shown because a cell in them is marked
# Served as they are: raster images cannot carry script. SVG is served only once sanitised.
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
SMALL_CELL = "small_cell"
BELOW_K, FINDING_CELL, CHANGED = "below-k", "finding-cell", "changed"


@dataclass(frozen=True)
class Mark:
    """Why a cell is marked: the finding codes and messages on it, the ``k`` a small cell is below,
    and whether it differs from the other version's cell."""

    codes: tuple[str, ...] = ()
    messages: tuple[tuple[str, str], ...] = ()
    k: int | None = None
    changed: bool = False

    def merged(self, other: Mark) -> Mark:
        return Mark(
            self.codes + other.codes,
            self.messages + other.messages,
            self.k if self.k is not None else other.k,
            self.changed or other.changed,
        )


# (table label, row from 1, column) -> mark
Marks = Mapping[tuple[str, int, str], Mark]


@dataclass(frozen=True)
class PreviewCell:
    value: str
    mark: Mark | None = None

    @property
    def classes(self) -> str:
        """The cell's CSS classes: ``below-k``, ``finding-cell``, ``changed``."""
        if self.mark is None:
            return ""
        found = [BELOW_K if SMALL_CELL in self.mark.codes else FINDING_CELL] if self.mark.codes else []
        return " ".join([*found, *([CHANGED] if self.mark.changed else [])])


@dataclass(frozen=True)
class PreviewRow:
    number: int  # from 1, as findings name rows
    cells: list[PreviewCell]
    gap: bool  # rows were skipped before this one


@dataclass(frozen=True)
class TablePreview:
    label: str
    columns: list[str]
    rows: list[PreviewRow]
    total_rows: int
    total_columns: int
    marked_hidden: int = 0  # marked cells outside what is shown


@dataclass(frozen=True)
class FilePreview:
    """What the page shows of one file: ``table``, ``image`` (PNG, JPEG), ``svg`` (sanitised),
    ``notebook``, ``none`` (no preview for the kind) or ``unavailable`` (``problem`` says why)."""

    kind: str
    tables: list[TablePreview] = field(default_factory=list)
    notebook: NotebookPreview | None = None
    problem: tuple[str, str] | None = None


def stored_file(paths: Paths, file: ExportFile) -> StoredFile:
    return StoredFile(file.name, file_store(paths).path_for(file.sha256), file.sha256, file.size)


def verified(paths: Paths, file: ExportFile) -> StoredFile | None:
    """The vault copy, only when it is there and its bytes still hash to the recorded sha256."""
    stored = stored_file(paths, file)
    if not stored.path.is_file() or hashlib.sha256(stored.raw).hexdigest() != file.sha256:
        return None
    return stored


def finding_marks(findings: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int, str], Mark]:
    """The cells the findings name (``checks.cells.cell_location``), with why."""
    out: dict[tuple[str, int, str], Mark] = {}
    for finding in findings:
        where = finding.get("location") or {}
        if not {"table", "row", "column"} <= set(where):
            continue
        details = finding.get("details") or {}
        k = details.get("k") if finding.get("code") == SMALL_CELL else None
        mark = Mark(
            (str(finding.get("code")),),
            ((str(finding.get("message")), str(finding.get("message_zh"))),),
            int(k) if isinstance(k, int | float) else None,
        )
        key = (str(where["table"]), int(where["row"]), str(where["column"]))
        out[key] = out[key].merged(mark) if key in out else mark
    return out


def _shown(count: int, first: int, marked: Iterable[int], cap: int) -> list[int]:
    """The first ``first`` positions, then the marked ones after them (at most ``cap``), in order."""
    extra = sorted({m for m in marked if first <= m < count})[:cap]
    return [*range(min(first, count)), *extra]


def table_preview(label: str, frame: pd.DataFrame, marks: Marks) -> TablePreview:
    """The first rows and columns, plus the rows and columns of marked cells, each cell with its mark."""
    columns = [str(c) for c in frame.columns]
    here = {(row, column): mark for (table, row, column), mark in marks.items() if table == label}
    position = {name: i for i, name in enumerate(columns)}
    marked_cols = [position[c] for _, c in here if c in position]
    col_index = _shown(len(columns), PREVIEW_COLUMNS, marked_cols, PREVIEW_COLUMNS)
    row_index = _shown(len(frame), PREVIEW_ROWS, [r - 1 for r, _ in here], MAX_MARKED_ROWS)
    rows, previous = [], -1
    for r in row_index:
        values = frame.iloc[r]
        cells = [
            PreviewCell("" if values.iloc[c] is None else str(values.iloc[c]), here.get((r + 1, columns[c])))
            for c in col_index
        ]
        rows.append(PreviewRow(r + 1, cells, r != previous + 1))
        previous = r
    shown = {(r + 1, columns[c]) for r in row_index for c in col_index}
    hidden = sum(1 for key in here if key not in shown)
    return TablePreview(label, [columns[c] for c in col_index], rows, len(frame), len(columns), hidden)


def _unavailable(en: str, zh: str) -> FilePreview:
    return FilePreview("unavailable", problem=(en, zh))


def file_preview(paths: Paths, file: ExportFile, marks: Marks) -> FilePreview:
    """What the page shows of ``file`` (read from the verified vault copy)."""
    stored = verified(paths, file)
    if stored is None:
        return _unavailable(
            "The stored copy is missing or changed: no preview", "存储副本缺失或已被更改：无法预览"
        )
    if file.kind in IMAGE_TYPES:
        return FilePreview("image")
    try:
        if file.kind == "svg":
            sanitise_svg(stored.raw)
            return FilePreview("svg")
        if file.kind == "ipynb":
            return FilePreview("notebook", notebook=render_notebook(stored.text() or ""))
    except EnclaveError as error:
        return _unavailable(error.message, error.message_zh)
    tables = [table_preview(t.label, t.frame, marks) for t in stored.content.tables]
    return FilePreview("table", tables=tables) if tables else FilePreview("none")
