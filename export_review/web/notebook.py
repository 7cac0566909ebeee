"""A notebook (.ipynb) as a reviewer previews it, rendered on the server: code and plain-text outputs
as text (the template escapes them), markdown and HTML outputs through the allowlist sanitiser, and
image outputs served one by one through a route with the preview's checks (``notebook_image``)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from enclave.errors import BadInput, NotFound
from export_review.web.sanitise import render_markdown, sanitise_html, sanitise_svg

MAX_CELLS = 500
MAX_TEXT = 20_000  # characters of one source or output shown; the rest is cut, and says so
IMAGE_MIMES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff", "image/svg+xml": None}
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
REF = re.compile(r"([0-9]{1,4})-([0-9]{1,4})")


@dataclass(frozen=True)
class NotebookOutput:
    """One output: ``text`` (shown escaped), ``html`` (sanitised), ``image`` (``ref`` names it for the
    image route) or ``omitted`` (a kind not shown; ``mime`` says which)."""

    kind: str
    text: str = ""
    html: str = ""
    ref: str = ""
    mime: str = ""
    truncated: bool = False


@dataclass(frozen=True)
class NotebookCell:
    number: int
    kind: str  # markdown, code or raw
    source: str
    html: str = ""  # markdown cells: the sanitised rendering
    outputs: list[NotebookOutput] = field(default_factory=list)
    truncated: bool = False


@dataclass(frozen=True)
class NotebookPreview:
    cells: list[NotebookCell]
    more_cells: int  # cells past MAX_CELLS, not shown


def notebook_invalid() -> BadInput:
    return BadInput(
        "export_notebook_invalid",
        "The notebook cannot be read as a Jupyter notebook",
        "无法读取该 Jupyter 笔记本",
    )


def _joined(value: Any) -> str:
    return "".join(map(str, value)) if isinstance(value, list) else str(value or "")


def _cut(text: str) -> tuple[str, bool]:
    return (text[:MAX_TEXT], True) if len(text) > MAX_TEXT else (text, False)


def _text(text: str) -> NotebookOutput:
    shown, cut = _cut(text)
    return NotebookOutput("text", text=shown, truncated=cut)


def _cells(text: str) -> list[dict[str, Any]]:
    try:
        notebook = json.loads(text)
    except ValueError:
        raise notebook_invalid() from None
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise notebook_invalid()
    return cells


def _outputs(cell: dict[str, Any]) -> list[dict[str, Any]]:
    outputs = cell.get("outputs") if cell.get("cell_type") == "code" else None
    return [o for o in outputs if isinstance(o, dict)] if isinstance(outputs, list) else []


def _image_mime(data: dict[str, Any]) -> str | None:
    return next((mime for mime in IMAGE_MIMES if mime in data), None)


def _output(output: dict[str, Any], ref: str) -> NotebookOutput:
    kind = output.get("output_type")
    if kind == "stream":
        return _text(_joined(output.get("text")))
    if kind == "error":
        shown = ANSI.sub("", "\n".join(map(str, output.get("traceback") or [])))
        return _text(shown or f"{output.get('ename')}: {output.get('evalue')}")
    data = output.get("data") if isinstance(output.get("data"), dict) else {}
    mime = _image_mime(data)
    if mime is not None:
        return NotebookOutput("image", ref=ref, mime=mime)
    if "text/html" in data:
        html, cut = _cut(_joined(data["text/html"]))
        return NotebookOutput("html", html=sanitise_html(html), truncated=cut)
    if "text/markdown" in data:
        text, cut = _cut(_joined(data["text/markdown"]))
        return NotebookOutput("html", html=render_markdown(text), truncated=cut)
    if "text/plain" in data:
        return _text(_joined(data["text/plain"]))
    return NotebookOutput("omitted", mime=", ".join(sorted(map(str, data))))


def render_notebook(text: str) -> NotebookPreview:
    """The notebook's cells, each source and output either escaped text or sanitised HTML."""
    cells = _cells(text)
    out = []
    for number, cell in enumerate(cells[:MAX_CELLS], start=1):
        kind = str(cell.get("cell_type") or "raw")
        source, cut = _cut(_joined(cell.get("source")))
        html = render_markdown(source) if kind == "markdown" else ""
        outputs = [_output(o, f"{number}-{index}") for index, o in enumerate(_outputs(cell), start=1)]
        out.append(NotebookCell(number, kind, source, html, outputs, cut))
    return NotebookPreview(out, max(len(cells) - MAX_CELLS, 0))


def _image_not_found(ref: str) -> NotFound:
    return NotFound(
        "export_image_not_found", f"The notebook has no image output {ref!r}", f"笔记本中没有图片输出 {ref!r}"
    )


def notebook_image(text: str, ref: str) -> tuple[str, bytes]:
    """The image output ``ref`` (``<cell>-<output>``, from 1) as MIME type and bytes: a PNG or JPEG
    checked by its first bytes, or an SVG sanitised like an SVG file."""
    match = REF.fullmatch(ref)
    cells = _cells(text)
    if match is None or not 1 <= int(match[1]) <= min(len(cells), MAX_CELLS):
        raise _image_not_found(ref)
    outputs = _outputs(cells[int(match[1]) - 1])
    if not 1 <= int(match[2]) <= len(outputs):
        raise _image_not_found(ref)
    data = outputs[int(match[2]) - 1].get("data")
    mime = _image_mime(data) if isinstance(data, dict) else None
    if mime is None or not isinstance(data, dict):
        raise _image_not_found(ref)
    if mime == "image/svg+xml":
        return mime, sanitise_svg(_joined(data[mime]).encode("utf-8"))
    try:
        raw = base64.b64decode(_joined(data[mime]).replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise _image_not_found(ref) from None
    magic = IMAGE_MIMES[mime]
    if magic is None or not raw.startswith(magic):
        raise _image_not_found(ref)
    return mime, raw
