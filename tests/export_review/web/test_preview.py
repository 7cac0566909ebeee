"""Table previews mark the cells the checks name, show the marked rows past the first ones, and the
comparison marks the cells that differ between two versions."""

from __future__ import annotations

import pandas as pd

from export_review.checks.cells import cell_location
from export_review.web.compare import changed_cells
from export_review.web.preview import PREVIEW_ROWS, finding_marks, table_preview


def finding(code: str, row: int, column: str, **details: object) -> dict[str, object]:
    return {
        "code": code,
        "message": f"{code} here",
        "message_zh": f"{code} 在此",
        "location": cell_location("t.csv", row, column),
        **({"details": details} if details else {}),
    }


def test_cells_are_marked_by_kind_and_far_rows_are_shown() -> None:
    frame = pd.DataFrame({"dx": [f"X{i}" for i in range(40)], "n": [str(20 + i) for i in range(40)]})
    findings = [
        finding("small_cell", 1, "n", k=5),
        finding("pseudonym_shaped_cell", 1, "dx"),
        finding("dominance", 34, "n"),
        {"code": "free_text", "message": "m", "message_zh": "m", "location": {"item": "x"}},
        finding("small_cell", 2, "gone", k=5),  # a column the table does not have
    ]
    preview = table_preview("t.csv", frame, finding_marks(findings))
    numbers = [row.number for row in preview.rows]
    assert numbers == [*range(1, PREVIEW_ROWS + 1), 35]
    assert [row.gap for row in preview.rows][-2:] == [False, True]
    second = preview.rows[1].cells
    assert second[0].classes == "finding-cell" and second[1].classes == "below-k"
    assert second[1].mark is not None and second[1].mark.k == 5
    assert preview.rows[-1].cells[1].classes == "finding-cell"
    assert preview.rows[0].cells[1].classes == "" and preview.marked_hidden == 1


def test_changed_cells_cover_values_rows_and_columns() -> None:
    old = pd.DataFrame({"dx": ["a", "b"], "n": ["1", "2"]})
    new = pd.DataFrame({"dx": ["a", "b", "c"], "n": ["1", "3", "4"], "extra": ["x", "y", "z"]})
    count, left, right = changed_cells(old, new)
    assert left == {(2, "n")}
    assert right == {(2, "n"), (3, "dx"), (3, "n"), (1, "extra"), (2, "extra"), (3, "extra")}
    assert count == 6
    assert changed_cells(old, old) == (0, set(), set())
