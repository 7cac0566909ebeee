"""Removing what changes on every execution but is not a result, before files are compared.

* Notebooks: papermill's and Jupyter's execution records (start/end times, durations, status,
  ``execution_count``, cell ids, ``metadata.execution``); sources and outputs stay.
* XLSX: ``docProps/core.xml`` (the workbook's created/modified times, set to "now" by the writer);
  every other part of the workbook is compared decompressed, so zip timestamps do not count.
* PDF: the ``/CreationDate`` and ``/ModDate`` entries.

Anything else is compared byte for byte. Each function returns the comparable form, or ``None``
when the bytes are not of that kind (then the bytes themselves are compared).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

NOTEBOOK_METADATA = ("papermill", "execution", "widgets")
CELL_METADATA = ("papermill", "execution", "collapsed", "scrolled", "ExecuteTime")
XLSX_VOLATILE = frozenset({"docProps/core.xml"})
PDF_DATES = re.compile(rb"/(?:CreationDate|ModDate)\s*\(D:[^)]{0,64}\)")
MAX_XLSX_UNCOMPRESSED = 200 * 1024 * 1024  # a zip bomb is compared as bytes, not expanded

IGNORED = {
    "ipynb": (
        "execution metadata (papermill and Jupyter timings, execution counts, cell ids)",
        "执行元数据（papermill 与 Jupyter 的计时、执行计数、单元 id）",
    ),
    "xlsx": (
        "the workbook's created/modified times (docProps/core.xml)",
        "工作簿的创建/修改时间（docProps/core.xml）",
    ),
    "pdf": ("the document's creation/modification dates", "文档的创建/修改日期"),
}


def notebook(data: bytes) -> dict[str, Any] | None:
    """The notebook without execution metadata, or ``None`` when the bytes are not a notebook."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("cells"), list):
        return None
    meta = value.get("metadata")
    if isinstance(meta, dict):
        value["metadata"] = {k: v for k, v in meta.items() if k not in NOTEBOOK_METADATA}
    value["cells"] = [_cell(c) for c in value["cells"]]
    return value


def _cell(cell: Any) -> Any:
    if not isinstance(cell, dict):
        return cell
    out = {k: v for k, v in cell.items() if k not in ("id", "execution_count")}
    meta = out.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = {k: v for k, v in meta.items() if k not in CELL_METADATA}
    if isinstance(out.get("outputs"), list):
        out["outputs"] = [
            {k: v for k, v in o.items() if k != "execution_count"} if isinstance(o, dict) else o
            for o in out["outputs"]
        ]
    return out


def xlsx(data: bytes) -> dict[str, bytes] | None:
    """The workbook's parts by name without the volatile ones, or ``None`` when not a readable zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if sum(i.file_size for i in infos) > MAX_XLSX_UNCOMPRESSED:
                return None
            return {i.filename: archive.read(i) for i in infos if i.filename not in XLSX_VOLATILE}
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
        return None


def pdf(data: bytes) -> bytes | None:
    if not data.startswith(b"%PDF-"):
        return None
    return PDF_DATES.sub(b"", data)


def comparable(kind: str, data: bytes) -> Any:
    """What is compared for a file of ``kind``: its normal form, or the bytes when there is none."""
    normal: Any = {"ipynb": notebook, "xlsx": xlsx, "pdf": pdf}.get(kind, lambda _: None)(data)
    return data if normal is None else normal
