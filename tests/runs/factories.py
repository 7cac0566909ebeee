"""Notebooks, prepared-looking projects and an analyst's Ctrl-C for the batch-run tests."""

from __future__ import annotations

import _thread
import json
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from enclave.config import Paths
from enclave.prepare import layout


def fake_prepared(paths: Paths, project: str, version: int = 1) -> None:
    """Make ``project`` look prepared at ``version`` (what ``layout.current_version`` reads)."""
    root = layout.prepared_root(paths, project)
    build = root / layout.BUILDS / f"v{version}-test"
    build.mkdir(parents=True, exist_ok=True)
    (build / layout.VIEWS_DB).write_bytes(b"")
    link = layout.version_link(root, version)
    if not link.is_symlink():
        os.symlink(build, link)
    current = root / layout.CURRENT
    if current.is_symlink():
        current.unlink()
    os.symlink(f"v{version}", current)


def code_cell(source: str, *, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": tags or []},
        "outputs": [],
        "source": source,
    }


def notebook(*sources: str, parameters: str | None = None) -> dict[str, Any]:
    """An nbformat 4 Python notebook; ``parameters`` becomes the cell tagged ``parameters``."""
    cells = [code_cell(parameters, tags=["parameters"])] if parameters is not None else []
    cells += [code_cell(source) for source in sources]
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": cells,
    }


def notebook_bytes(*sources: str, parameters: str | None = None) -> bytes:
    return json.dumps(notebook(*sources, parameters=parameters)).encode()


TABLE_NOTEBOOK = notebook_bytes(
    "import csv\nrows = [['group', 'n'], ['a', 10 * scale], ['b', 20 * scale]]\n"
    "with open('table.csv', 'w', newline='') as f:\n    csv.writer(f).writerows(rows)",
    parameters="scale = 1",
)


def interrupted(after_s: float, call: Callable[[], object]) -> None:
    """``call`` interrupted as by Ctrl-C (a ``KeyboardInterrupt`` in the main thread) after ``after_s``
    seconds; fails if it returns first."""
    timer = threading.Timer(after_s, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            call()
    finally:
        timer.cancel()  # never let the interrupt land in a later test
