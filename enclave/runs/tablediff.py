"""Cell by cell differences between two versions of a table (CSV, TSV, or each sheet of an XLSX).

Tables are read as strings (no type guessing, so ``1.0`` and ``1`` differ as the files do). Columns
are matched by name, rows by position; the result names the shape change, the columns and rows
added or removed, and the changed cells as ``(row, column, before, after)`` with ``row`` counted
from 1 below the header. Pure: bytes in, a JSON-ready dict out.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np
import pandas as pd

from enclave.runs.normalise import MAX_XLSX_UNCOMPRESSED
from enclave.runs.values import Tally

DEFAULT_EXAMPLES = 20


def read_tables(data: bytes, kind: str) -> dict[str | None, pd.DataFrame]:
    """The tables of a file as frames of strings: ``{None: frame}`` for CSV/TSV, one per sheet for
    XLSX. Raises ``ValueError`` when the bytes are not a table of that kind."""
    try:
        if kind in ("csv", "tsv"):
            frame = pd.read_csv(
                io.BytesIO(data),
                sep="\t" if kind == "tsv" else ",",
                dtype=str,
                keep_default_na=False,
                encoding="utf-8-sig",
                on_bad_lines="error",
            )
            return {None: _strings(frame)}
        if kind == "xlsx":
            if not _expands_safely(data):
                raise ValueError("the workbook expands beyond the comparison's cap")
            sheets = pd.read_excel(io.BytesIO(data), sheet_name=None, dtype=str, engine="openpyxl")
            return {str(name): _strings(frame) for name, frame in sheets.items()}
    except pd.errors.EmptyDataError:
        return {None: pd.DataFrame()}
    except Exception as error:  # any parser failure: the caller compares the bytes as text instead
        raise ValueError(f"{type(error).__name__}: {str(error)[:200]}") from None
    raise ValueError(f"not a table kind: {kind}")


def _expands_safely(data: bytes) -> bool:
    """A workbook is a zip: refuse to expand one whose parts add up past the cap (a zip bomb)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return sum(i.file_size for i in archive.infolist()) <= MAX_XLSX_UNCOMPRESSED


def _strings(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.fillna("").astype(str)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def diff_frames(
    before: pd.DataFrame, after: pd.DataFrame, tally: Tally, max_examples: int = DEFAULT_EXAMPLES
) -> dict[str, Any]:
    """One table's differences; adds every changed cell to ``tally``."""
    cols_before, cols_after = list(before.columns), list(after.columns)
    common = [c for c in cols_before if c in set(cols_after)]
    rows = min(len(before), len(after))
    out: dict[str, Any] = {
        "shape_before": [len(before), len(cols_before)],
        "shape_after": [len(after), len(cols_after)],
        "columns_added": [c for c in cols_after if c not in set(cols_before)],
        "columns_removed": [c for c in cols_before if c not in set(cols_after)],
        "columns_reordered": common != [c for c in cols_after if c in set(cols_before)],
        "rows_added": max(0, len(after) - len(before)),
        "rows_removed": max(0, len(before) - len(after)),
    }
    changed_cells = 0
    examples: list[list[Any]] = []
    if common and rows:
        left = before[common].iloc[:rows].to_numpy(dtype=object)
        right = after[common].iloc[:rows].to_numpy(dtype=object)
        mask = left != right
        changed_cells = int(mask.sum())
        for r, c in zip(*np.nonzero(mask), strict=True):
            tally.add(str(left[r, c]), str(right[r, c]))
            if len(examples) < max_examples:
                examples.append([int(r) + 1, common[c], str(left[r, c]), str(right[r, c])])
    out["changed_cells"] = changed_cells
    out["compared_cells"] = rows * len(common)
    out["examples"] = examples
    out["shape_changed"] = out["shape_before"] != out["shape_after"]
    if out["shape_changed"] or out["columns_added"] or out["columns_removed"] or out["columns_reordered"]:
        tally.structural = True
    return out


def diff_tables(
    before: bytes, after: bytes, kind: str, tally: Tally, max_examples: int = DEFAULT_EXAMPLES
) -> dict[str, Any]:
    """The differences of every table in two files of the same kind (raises ``ValueError`` when
    either is not readable as that kind)."""
    left, right = read_tables(before, kind), read_tables(after, kind)
    out: dict[str, Any] = {
        "sheets_added": [s for s in right if s not in left],
        "sheets_removed": [s for s in left if s not in right],
        "tables": [],
    }
    if out["sheets_added"] or out["sheets_removed"]:
        tally.structural = True
    budget = max_examples
    for sheet, frame in left.items():
        if sheet not in right:
            continue
        table = diff_frames(frame, right[sheet], tally, budget)
        budget -= len(table["examples"])
        out["tables"].append({"sheet": sheet, **table})
    out["changed_cells"] = sum(t["changed_cells"] for t in out["tables"])
    return out
