"""A stored file and what the checks read out of it: tables, text and images.

Everything is read from the vault copy, never from the workspace. Tables come back as frames of
strings so that every format (CSV, Excel, JSON, HTML, notebook outputs) is checked the same way.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from export_review.checks.html_tables import html_tables

KIND_ALIASES = {"jpeg": "jpg", "htm": "html"}
TEXT_KINDS = frozenset({"csv", "tsv", "json", "txt", "md", "svg", "html", "ipynb"})
IMAGE_KINDS = frozenset({"png", "jpg", "svg", "pdf"})
TAG = re.compile(r"<[^>]*>")


def kind_of(name: str) -> str:
    """The file's type from its extension, lower case, with aliases folded (``x.JPEG`` → ``jpg``)."""
    suffix = Path(name).suffix.lower().lstrip(".")
    return KIND_ALIASES.get(suffix, suffix)


@dataclass(frozen=True)
class Table:
    label: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class Text:
    label: str
    text: str


@dataclass
class Content:
    tables: list[Table] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StoredFile:
    """A file as the checks see it: its name, the vault copy, hash, size and type."""

    name: str
    path: Path
    sha256: str
    size: int

    @property
    def kind(self) -> str:
        return kind_of(self.name)

    @cached_property
    def raw(self) -> bytes:
        return self.path.read_bytes()

    def text(self) -> str | None:
        """The bytes as strict UTF-8 without NUL characters, else ``None``."""
        try:
            decoded = self.raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return None if "\x00" in decoded else decoded.removeprefix("\ufeff")

    @cached_property
    def content(self) -> Content:
        content = Content()
        try:
            _EXTRACTORS.get(self.kind, _nothing)(self, content)
        except Exception as error:  # any parser failure is a finding, never a crash
            content.errors.append(f"{type(error).__name__}: {str(error)[:200]}")
        return content


def _nothing(stored: StoredFile, content: Content) -> None:
    if stored.kind in IMAGE_KINDS:
        content.images.append(stored.name)


def _strings(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.fillna("").astype(str)
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _delimited(stored: StoredFile, content: Content) -> None:
    text = stored.text()
    if text is None:
        raise ValueError("not UTF-8 text")
    sep = "\t" if stored.kind == "tsv" else ","
    frame = pd.read_csv(
        stored.path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig", on_bad_lines="error"
    )
    content.tables.append(Table(stored.name, _strings(frame)))


def _xlsx(stored: StoredFile, content: Content) -> None:
    sheets = pd.read_excel(stored.path, sheet_name=None, dtype=str, engine="openpyxl")
    for sheet, frame in sheets.items():
        content.tables.append(Table(f"{stored.name}:{sheet}", _strings(frame)))


def _json_frame(value: Any) -> pd.DataFrame | None:
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        return pd.DataFrame(value)
    if (
        isinstance(value, dict)
        and isinstance(value.get("columns"), list)
        and isinstance(value.get("data"), list)
    ):
        return pd.DataFrame(value["data"], columns=value["columns"])
    if (
        isinstance(value, dict)
        and value
        and all(isinstance(v, list) for v in value.values())
        and len({len(v) for v in value.values()}) == 1
    ):
        return pd.DataFrame(value)
    return None


def _string_leaves(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *_string_leaves(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _string_leaves(v)]
    return [] if value is None else [str(value)]


def _json(stored: StoredFile, content: Content) -> None:
    value = json.loads(stored.text() or "")
    frame = _json_frame(value)
    if frame is not None:
        content.tables.append(Table(stored.name, _strings(frame)))
    content.texts.append(Text(stored.name, "\n".join(_string_leaves(value))))


def _joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _notebook(stored: StoredFile, content: Content) -> None:
    notebook = json.loads(stored.text() or "")
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        raise ValueError("not a Jupyter notebook: no cells")
    for number, cell in enumerate(cells, start=1):
        content.texts.append(Text(f"cell {number} source", _joined(cell.get("source", ""))))
        for index, output in enumerate(cell.get("outputs") or [], start=1):
            label = f"cell {number} output {index}"
            if output.get("output_type") == "stream":
                content.texts.append(Text(label, _joined(output.get("text", ""))))
            elif output.get("output_type") == "error":
                content.texts.append(Text(label, "\n".join(map(str, output.get("traceback", [])))))
            for mime, data in (output.get("data") or {}).items():
                if mime.startswith("image/"):
                    content.images.append(f"{label} ({mime})")
                elif mime == "text/html":
                    html = _joined(data)
                    for t, frame in enumerate(html_tables(html), start=1):
                        content.tables.append(Table(f"{label} table {t}", _strings(frame)))
                    content.texts.append(Text(f"{label} html", TAG.sub(" ", html)))
                elif mime.startswith("text/") or mime.endswith("json"):
                    content.texts.append(Text(f"{label} {mime}", _joined(data)))


def _html(stored: StoredFile, content: Content) -> None:
    html = stored.text()
    if html is None:
        raise ValueError("not UTF-8 text")
    for t, frame in enumerate(html_tables(html), start=1):
        content.tables.append(Table(f"{stored.name} table {t}", _strings(frame)))
    content.texts.append(Text(stored.name, TAG.sub(" ", html)))


def _plain(stored: StoredFile, content: Content) -> None:
    text = stored.text()
    if text is None:
        raise ValueError("not UTF-8 text")
    content.texts.append(Text(stored.name, TAG.sub(" ", text) if stored.kind == "svg" else text))
    if stored.kind == "svg":
        content.images.append(stored.name)


_EXTRACTORS = {
    "csv": _delimited,
    "tsv": _delimited,
    "xlsx": _xlsx,
    "json": _json,
    "ipynb": _notebook,
    "html": _html,
    "txt": _plain,
    "md": _plain,
    "svg": _plain,
}


def is_xlsx(raw: bytes, path: Path) -> bool:
    if not raw.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False
