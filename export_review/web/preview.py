"""Previews for reviewers: the first rows of a table, and which stored images may be shown inline.

The table comes from the same parser the checks used (``StoredFile.content``), read from the vault
copy, never from the workspace. Every value is a string here; the template escapes it (R-QRY-6).
"""

from __future__ import annotations

from dataclasses import dataclass

from enclave.config import Paths
from enclave.db.models import ExportFile
from export_review.checks import StoredFile
from export_review.submission import file_store

PREVIEW_ROWS = 20
PREVIEW_COLUMNS = 50
# SVG is never served inline: it can carry script. Only raster formats are.
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg"}


@dataclass(frozen=True)
class TablePreview:
    label: str
    columns: list[str]
    rows: list[list[str]]
    total_rows: int


def stored_file(paths: Paths, file: ExportFile) -> StoredFile:
    return StoredFile(file.name, file_store(paths).path_for(file.sha256), file.sha256, file.size)


def table_previews(paths: Paths, file: ExportFile) -> list[TablePreview]:
    """The first rows of each table in a CSV/TSV/XLSX (or tabular JSON) file; none for other kinds."""
    stored = stored_file(paths, file)
    if not stored.path.is_file():
        return []
    out = []
    for table in stored.content.tables:
        frame = table.frame.iloc[:PREVIEW_ROWS, :PREVIEW_COLUMNS]
        rows = [["" if v is None else str(v) for v in row] for row in frame.itertuples(index=False)]
        out.append(TablePreview(table.label, [str(c) for c in frame.columns], rows, len(table.frame)))
    return out


def image_type(file: ExportFile) -> str | None:
    return IMAGE_TYPES.get(file.kind)
