"""Notebooks rendered for a reviewer: code and text outputs stay text, markdown and HTML outputs are
sanitised, and image outputs are served only as checked PNG/JPEG or sanitised SVG."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from enclave.errors import BadInput, NotFound
from export_review.web.notebook import MAX_TEXT, notebook_image, render_notebook

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
ATTACK_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><rect width="2" height="2"/></svg>'
)


def notebook(*cells: dict[str, Any]) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": list(cells)})


def code(source: str, *outputs: dict[str, Any]) -> dict[str, Any]:
    return {"cell_type": "code", "source": source, "outputs": list(outputs), "metadata": {}}


def display(data: dict[str, Any]) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": {}}


HOSTILE = notebook(
    {
        "cell_type": "markdown",
        "source": ["# Title\n", "<script>alert(1)</script>\n\n", "[x](javascript:alert(2))"],
    },
    code(
        "print('<b>not markup</b>')",
        {"output_type": "stream", "name": "stdout", "text": ["<script>alert(3)</script>\n"]},
        display(
            {
                "text/html": [
                    "<script>alert(4)</script><img src=x onerror=alert(5)>",
                    '<a href="javascript:alert(6)">a</a><iframe src="http://evil.example"></iframe>',
                    "<style>body{display:none}</style><table class='dataframe'><tr><td>25</td></tr></table>",
                ],
                "text/plain": ["<DataFrame>"],
            }
        ),
        display({"image/png": base64.b64encode(PNG).decode(), "text/plain": ["<Figure>"]}),
        display({"application/javascript": "alert(7)"}),
        {
            "output_type": "error",
            "ename": "E",
            "evalue": "v",
            "traceback": ["\x1b[31mTraceback<script>\x1b[0m"],
        },
    ),
)


def test_hostile_notebook_renders_inert() -> None:
    preview = render_notebook(HOSTILE)
    markdown, cell = preview.cells
    assert (
        "<h1>Title</h1>" in markdown.html and "<script" not in markdown.html and "href" not in markdown.html
    )
    assert cell.source == "print('<b>not markup</b>')"  # escaped by the template, not here
    stream, html, image, script, error = cell.outputs
    assert stream.kind == "text" and stream.text == "<script>alert(3)</script>\n"
    assert html.kind == "html" and "<td>25</td>" in html.html
    assert not re.search(r"<(script|img|a|iframe|style)\b|on\w+=|class=|href|src=", html.html), html.html
    assert image.kind == "image" and image.ref == "2-3" and image.mime == "image/png"
    assert script.kind == "omitted" and script.mime == "application/javascript" and not script.html
    assert error.kind == "text" and "\x1b" not in error.text


def test_image_outputs_are_checked_and_svg_is_sanitised() -> None:
    text = notebook(
        code(
            "plot()",
            display({"image/png": base64.b64encode(PNG).decode()}),
            display({"image/png": base64.b64encode(b"<html><script>alert(1)</script>").decode()}),
            display({"image/svg+xml": [ATTACK_SVG]}),
            display({"image/png": "not base64 !!"}),
        )
    )
    assert notebook_image(text, "1-1") == ("image/png", PNG)
    mime, svg = notebook_image(text, "1-3")
    assert mime == "image/svg+xml" and b"<script" not in svg and b"<rect" in svg
    for ref in ("1-2", "1-4", "1-5", "2-1", "0-1", "1-0", "../1", "1-1-1", "x"):
        with pytest.raises(NotFound):
            notebook_image(text, ref)


def test_long_outputs_are_cut_and_a_broken_notebook_is_refused() -> None:
    long = notebook(code("x", {"output_type": "stream", "name": "stdout", "text": "y" * (MAX_TEXT + 10)}))
    [output] = render_notebook(long).cells[0].outputs
    assert output.truncated and len(output.text) == MAX_TEXT
    for broken in ("not json", "[]", json.dumps({"cells": "no"}), json.dumps({"cells": [1]})):
        with pytest.raises(BadInput) as refused:
            render_notebook(broken)
        assert refused.value.code == "export_notebook_invalid"
