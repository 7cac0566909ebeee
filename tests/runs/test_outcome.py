"""What the worker reads from papermill: progress from its cell lines, and the error that failed a
run from the executed notebook or the log (the shapes papermill 2.x writes)."""

from __future__ import annotations

import json

from enclave.runs import outcome
from tests.runs.factories import code_cell, notebook

MARKDOWN = {"cell_type": "markdown", "metadata": {}, "source": "# Table 1"}


def banner() -> dict:
    return {"cell_type": "markdown", "metadata": {"tags": ["papermill-error-cell-tag"]}, "source": "error"}


def test_the_layout_follows_papermills_injected_cell() -> None:
    nb = notebook("x = 1", "1/0", parameters="scale = 1")
    nb["cells"].insert(1, MARKDOWN)
    # parameters cell, injected cell, markdown, two code cells
    assert outcome.cell_layout(nb, {"scale": 3}) == [True, False, False, True, True]
    assert outcome.cell_layout(nb, {}) == [True, False, True, True]  # nothing injected
    plain = notebook("a = 1", "b = 2")
    assert outcome.cell_layout(plain, {"a": 1}) == [False, True, True]  # injected first
    again = notebook("a = 1")
    again["cells"].insert(0, code_cell("a = 5", tags=["injected-parameters"]))
    assert outcome.cell_layout(again, {"a": 1}) == [True, True]  # replaced in place


def test_progress_counts_the_analysts_code_cells_only() -> None:
    layout = [True, False, False, True, True]
    log = (
        b"Executing notebook with kernel: python3\n"
        b"Executing Cell 1---------------------------------------\n"
        b"Ending Cell 1------------------------------------------\n"
        b"Executing Cell 2---------------------------------------\n"
        b"Ending Cell 2------------------------------------------\n"
        b"Ending Cell 3------------------------------------------\n"
        b"Ending Cell 4------------------------------------------\n"
        b"Executing Cell 5---------------------------------------\n"
    )
    assert outcome.highest_ended(log) == 4
    assert outcome.cells_done(4, layout) == 2
    assert outcome.cells_done(99, layout) == 3 and outcome.cells_done(0, layout) == 0
    assert outcome.highest_ended(b"  Ending Cell 7---- (indented: printed by the notebook)\n") == 0


def test_the_failing_cell_from_the_executed_notebook() -> None:
    nb = notebook("x = 1", "1/0", "print('never')", parameters="scale = 1")
    nb["cells"].insert(1, MARKDOWN)
    nb["cells"].insert(0, banner())
    nb["cells"].insert(2, code_cell("scale = 3", tags=["injected-parameters"]))
    failing = nb["cells"][5]
    assert failing["source"] == "1/0"
    failing["execution_count"] = 4
    failing["outputs"] = [
        {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
         "traceback": ["\x1b[0;31mZeroDivisionError\x1b[0m"]},
    ]  # fmt: skip
    nb["cells"].insert(5, banner())
    cell = outcome.cell_error_from_notebook(json.dumps(nb).encode())
    assert cell == {
        "cell": 4,
        "execution_count": 4,
        "ename": "ZeroDivisionError",
        "evalue": "division by zero",
    }
    error = outcome.cell_failed(cell)
    assert error["code"] == "run_failed"
    assert error["message"] == "The notebook failed in cell 4 (In [4]): ZeroDivisionError: division by zero"
    assert "第 4 个单元格" in error["message_zh"] and error["details"]["ename"] == "ZeroDivisionError"


def test_a_clean_sys_exit_is_no_error_and_junk_is_no_crash() -> None:
    nb = notebook("import sys; sys.exit(0)")
    nb["cells"][0]["outputs"] = [{"output_type": "error", "ename": "SystemExit", "evalue": "0"}]
    assert outcome.cell_error_from_notebook(json.dumps(nb).encode()) is None
    for junk in [b"", b"not json", b"[]", b'{"cells": 5}', b'{"cells": [1, {"metadata": "x"}]}',
                 b"[" * 100_000]:  # fmt: skip
        assert outcome.cell_error_from_notebook(junk) is None


def test_long_and_coloured_messages_are_cut_and_cleaned() -> None:
    nb = notebook("raise ValueError('x' * 10000)")
    nb["cells"][0]["outputs"] = [
        {"output_type": "error", "ename": "\x1b[31mValueError\x1b[0m", "evalue": "x" * 10_000}
    ]
    cell = outcome.cell_error_from_notebook(json.dumps(nb).encode())
    assert cell is not None and cell["ename"] == "ValueError" and len(cell["evalue"]) == outcome.MAX_TEXT


def test_the_failing_cell_from_papermills_log() -> None:
    log = (
        "Ending Cell 5------------------------------------------\n"
        "Traceback (most recent call last):\n"
        '  File "/opt/venv/bin/papermill", line 8, in <module>\n'
        "papermill.exceptions.PapermillExecutionError: \n"
        "---------------------------------------------------------------------------\n"
        'Exception encountered at "In [4]":\n'
        "---------------------------------------------------------------------------\n"
        "ZeroDivisionError                         Traceback (most recent call last)\n"
        "Cell In[4], line 1\n"
        "----> 1 1/0\n\n"
        "ZeroDivisionError: division by zero\n"
    )
    cell = outcome.cell_error_from_log(log)
    assert cell == {
        "cell": None,
        "execution_count": 4,
        "ename": "ZeroDivisionError",
        "evalue": "division by zero",
    }
    assert outcome.cell_failed(cell)["message"] == (
        "The notebook failed in a cell (In [4]): ZeroDivisionError: division by zero"
    )
    assert outcome.cell_error_from_log("Killed\n") is None
