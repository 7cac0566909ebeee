"""The reproducibility comparison (enclave.runs.compare): per-file statuses, table diffs, notebook
normalisation and the plain naming of nondeterminism."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from enclave.runs import compare as cmp
from enclave.runs.compare import Exported, Produced, compare
from enclave.runs.values import as_number, is_timestamp


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_file(data: bytes) -> Exported:
    """An exported file taken unchanged from the run."""
    return Exported(data, sha(data))


def one(name: str, exported: bytes, rerun: bytes | None, **kwargs) -> dict:
    result = compare({name: run_file(exported)}, {} if rerun is None else {name: Produced(rerun)}, **kwargs)
    json.dumps(result)  # always JSON-ready
    assert len(result["files"]) == 1
    return result


def csv(rows: list[list[object]]) -> bytes:
    return "\n".join(",".join(str(v) for v in row) for row in rows).encode() + b"\n"


TABLE = [["group", "n", "mean"], ["a", 10, 1.5], ["b", 12, 2.25], ["c", 30, 3.0]]


def test_identical_files_reproduce() -> None:
    result = compare(
        {"t.csv": run_file(csv(TABLE)), "note.txt": run_file(b"done\n")},
        {"t.csv": Produced(csv(TABLE)), "note.txt": Produced(b"done\n"), "extra.png": Produced(b"x")},
    )
    assert result["verdict"] == "reproduced"
    assert [f["status"] for f in result["files"]] == ["identical", "identical"]
    assert result["counts"] == {"identical": 2}
    assert result["rerun_only"] == ["extra.png"]
    assert "Reproduced" in result["summary"] and "已复现" in result["summary_zh"]


def test_no_files_is_not_reproduced() -> None:
    assert compare({}, {"a.csv": Produced(b"x")})["verdict"] == "not_reproduced"


def test_changed_text_cell_is_a_real_difference() -> None:
    after = [row[:] for row in TABLE]
    after[2][0] = "B"
    result = one("t.csv", csv(TABLE), csv(after))
    assert result["verdict"] == "not_reproduced"
    f = result["files"][0]
    assert f["status"] == "different"
    assert f["table"]["changed_cells"] == 1
    table = f["table"]["tables"][0]
    assert table["examples"] == [[2, "group", "b", "B"]]
    assert table["compared_cells"] == 9 and not table["shape_changed"]
    assert "nondeterminism" not in f
    assert "1 cell(s) changed" in f["reason"] and "1 个单元格" in f["reason_zh"]
    assert "t.csv" in result["summary"] and "t.csv" in result["summary_zh"]


def test_numbers_that_differ_are_named_with_the_largest_gaps() -> None:
    after = [row[:] for row in TABLE]
    after[1][2] = 1.5000001
    after[3][2] = 3.3
    f = one("t.csv", csv(TABLE), csv(after))["files"][0]
    assert f["status"] == "different"
    assert f["nondeterminism"] == "numbers differ (unseeded randomness or floating point)"
    assert "随机" in f["nondeterminism_zh"]
    assert f["numbers"]["cells"] == 2
    assert f["numbers"]["max_abs_diff"] == pytest.approx(0.3)
    assert f["numbers"]["max_rel_diff"] == pytest.approx(0.3 / 3.3)
    result = one("t.csv", csv(TABLE), csv(after))
    assert result["verdict"] == "not_reproduced"  # named, never excused
    assert result["notes"][0]["file"] == "t.csv" and result["notes"][0]["numbers"]["cells"] == 2


def test_timestamps_only() -> None:
    before = csv([["made", "n"], ["2026-01-05T10:00:01Z", 5], ["2026-01-05 10:00:01.5", 6]])
    after = csv([["made", "n"], ["2026-01-06T11:30:00Z", 5], ["2026-01-06 11:30:00.25", 6]])
    f = one("t.csv", before, after)["files"][0]
    assert f["nondeterminism"] == "timestamps"
    assert "numbers" not in f
    assert "(timestamps)" in f["reason"]


def test_timestamps_and_numbers() -> None:
    before = csv([["made", "x"], ["2026-01-05", 0.1]])
    after = csv([["made", "x"], ["2026-01-07", 0.2]])
    f = one("t.csv", before, after)["files"][0]
    assert f["nondeterminism"].startswith("timestamps and numbers")
    assert f["numbers"]["max_abs_diff"] == pytest.approx(0.1)


def test_numbers_mixed_with_text_changes_are_not_called_nondeterminism() -> None:
    after = [row[:] for row in TABLE]
    after[1][2] = 1.6
    after[2][0] = "z"
    f = one("t.csv", csv(TABLE), csv(after))["files"][0]
    assert "nondeterminism" not in f
    assert f["numbers"]["cells"] == 1  # the numeric gap is still shown


def test_shape_change_rows_and_columns() -> None:
    after = [[*row, "x"] for row in TABLE] + [["d", 1, 1.0, "x"]]
    after[1][2] = 1.7
    f = one("t.csv", csv(TABLE), csv(after))["files"][0]
    table = f["table"]["tables"][0]
    assert table["shape_before"] == [3, 3] and table["shape_after"] == [4, 4]
    assert table["shape_changed"] and table["rows_added"] == 1 and table["columns_added"] == ["x"]
    assert table["changed_cells"] == 1
    assert "nondeterminism" not in f  # a new row is not noise
    assert "shape" in f["reason"] and "形状" in f["reason_zh"]


def test_removed_and_reordered_columns() -> None:
    before = csv([["a", "b", "c"], [1, 2, 3]])
    after = csv([["c", "a"], [3, 1]])
    table = one("t.csv", before, after)["files"][0]["table"]["tables"][0]
    assert table["columns_removed"] == ["b"] and table["columns_reordered"]
    assert table["changed_cells"] == 0


def test_examples_are_capped_but_counted() -> None:
    before = csv([["i", "v"], *[[i, i] for i in range(100)]])
    after = csv([["i", "v"], *[[i, i + 1] for i in range(100)]])
    f = one("t.csv", before, after, max_examples=5)["files"][0]
    assert f["table"]["changed_cells"] == 100
    assert len(f["table"]["tables"][0]["examples"]) == 5


def test_same_cells_other_bytes() -> None:
    before = b'a,b\n"1",2\n'
    after = b"a,b\r\n1,2\r\n"
    f = one("t.csv", before, after)["files"][0]
    assert f["status"] == "different"
    assert f["table"]["changed_cells"] == 0
    assert f["table"]["same_cells_other_bytes"]
    assert "nondeterminism" not in f


def test_tsv_and_chinese_headers() -> None:
    before = "组别\t人数\n甲\t10\n".encode()
    after = "组别\t人数\n甲\t11\n".encode()
    f = one("t.tsv", before, after)["files"][0]
    assert f["table"]["tables"][0]["examples"] == [[1, "人数", "10", "11"]]


def test_unparsable_csv_falls_back_to_lines() -> None:
    before = b'a,b\n1,2,3,4\n"unterminated\n'
    after = b'a,b\n1,2,3,5\n"unterminated\n'
    f = one("t.csv", before, after)["files"][0]
    assert f["status"] == "different"
    assert "table_unreadable" in f
    assert f["text"]["changed_lines"] == 1
    assert f["nondeterminism"].startswith("numbers")


def test_edited_after_run_is_never_reproduced() -> None:
    original = csv(TABLE)
    edited = csv([*TABLE, ["d", 1, 1]])
    # The export holds edited bytes; the rerun happens to write exactly those bytes: still not reproduced.
    result = compare({"t.csv": Exported(edited, sha(original))}, {"t.csv": Produced(edited)})
    f = result["files"][0]
    assert result["verdict"] == "not_reproduced"
    assert f["status"] == "edited_after_run"
    assert f["sha256"] == sha(edited) and f["run_sha256"] == sha(original)
    assert "edited after the run" in f["reason"] and "运行后被修改" in f["reason_zh"]


def test_edited_after_run_still_shows_the_diff() -> None:
    original = csv(TABLE)
    after = [row[:] for row in TABLE]
    after[1][1] = 11
    edited = csv(after)
    f = compare({"t.csv": Exported(edited, sha(original))}, {"t.csv": Produced(original)})["files"][0]
    assert f["status"] == "edited_after_run"
    assert f["table"]["tables"][0]["examples"] == [[1, "n", "11", "10"]]


def test_missing_not_in_run_and_changed_rerun_output() -> None:
    data = csv(TABLE)
    result = compare(
        {
            "gone.csv": run_file(data),
            "mine.txt": Exported(b"typed by hand", None),
            "swapped.csv": run_file(data),
        },
        {"swapped.csv": Produced(data, sha256=sha(b"what the rerun recorded"))},
    )
    statuses = {f["name"]: f["status"] for f in result["files"]}
    assert statuses == {
        "gone.csv": "missing",
        "mine.txt": "not_in_run",
        "swapped.csv": "rerun_output_changed",
    }
    assert result["verdict"] == "not_reproduced"
    assert result["counts"] == {"missing": 1, "not_in_run": 1, "rerun_output_changed": 1}


def test_rerun_output_matching_its_record_is_compared() -> None:
    data = csv(TABLE)
    f = compare({"t.csv": run_file(data)}, {"t.csv": Produced(data, sha256=sha(data))})["files"][0]
    assert f["status"] == "identical"


def test_paths_are_read_and_a_missing_stored_file_is_caught(tmp_path: Path) -> None:
    data = csv(TABLE)
    stored = tmp_path / "stored.csv"
    stored.write_bytes(data)
    rerun = tmp_path / "rerun.csv"
    rerun.write_bytes(data)
    assert (
        compare({"t.csv": Exported(stored, sha(data))}, {"t.csv": Produced(rerun)})["verdict"] == "reproduced"
    )
    gone = compare({"t.csv": Exported(tmp_path / "nope", sha(data))}, {"t.csv": Produced(rerun)})
    assert gone["files"][0]["status"] == "edited_after_run" and gone["files"][0]["sha256"] is None
    lost = compare({"t.csv": Exported(stored, sha(data))}, {"t.csv": Produced(tmp_path / "nope")})
    assert lost["files"][0]["status"] == "rerun_output_changed"


def test_empty_against_content() -> None:
    f = one("t.txt", b"", b"something\n")["files"][0]
    assert f["status"] == "different"
    assert f["text"]["lines_before"] == 0 and "nondeterminism" not in f


def test_binary_files_differ_without_a_guess() -> None:
    f = one("plot.png", b"\x89PNG\r\n\x1a\n\x00\x01", b"\x89PNG\r\n\x1a\n\x00\x02\x03")["files"][0]
    assert f["status"] == "different"
    assert f["binary"] == {"size_before": 10, "size_after": 11}
    assert "nondeterminism" not in f


def test_text_file_with_timestamps() -> None:
    before = b"model fitted at 2026-03-01 10:00:00\nrows 120\n"
    after = b"model fitted at 2026-03-02 09:12:44\nrows 120\n"
    f = one("log.txt", before, after)["files"][0]
    assert f["nondeterminism"] == "timestamps"
    assert f["text"]["examples"][0][0] == 1


def test_text_with_changed_words_is_real() -> None:
    f = one("r.md", b"effect: positive 0.2\n", b"effect: negative 0.3\n")["files"][0]
    assert "nondeterminism" not in f and f["numbers"]["cells"] == 1


# Notebooks ----------------------------------------------------------------------------------


def notebook(value: str, *, count: int = 1, start: str = "2026-01-01T00:00:00", source: str = "x") -> bytes:
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "papermill": {"start_time": start, "end_time": start, "duration": 1.5, "parameters": {"n": 1}},
        },
        "cells": [
            {
                "id": f"cell-{count}",
                "cell_type": "code",
                "execution_count": count,
                "metadata": {
                    "papermill": {"start_time": start, "status": "completed", "duration": 0.1},
                    "execution": {"iopub.status.busy": start},
                    "tags": ["keep"],
                },
                "source": source,
                "outputs": [
                    {
                        "output_type": "execute_result",
                        "execution_count": count,
                        "data": {"text/plain": [value]},
                        "metadata": {},
                    }
                ],
            }
        ],
    }
    return json.dumps(nb).encode()


def test_notebook_execution_metadata_is_ignored() -> None:
    before = notebook("mean 1.5", count=1, start="2026-01-01T00:00:00")
    after = notebook("mean 1.5", count=7, start="2026-02-02T12:00:00")
    result = one("report.ipynb", before, after)
    f = result["files"][0]
    assert result["verdict"] == "reproduced"
    assert f["status"] == "identical" and "execution metadata" in f["ignored"]
    assert "identical apart from" in f["reason"] and "除" in f["reason_zh"]


def test_notebook_outputs_with_other_numbers() -> None:
    f = one("report.ipynb", notebook("mean 1.5"), notebook("mean 1.75", count=2))["files"][0]
    assert f["status"] == "different"
    assert f["notebook"]["cells"] == [{"cell": 1, "parts": ["outputs"]}]
    assert f["nondeterminism"].startswith("numbers differ")
    assert f["numbers"]["max_abs_diff"] == pytest.approx(0.25)
    assert f["notebook"]["examples"] == [[1, "1.5", "1.75"]]


def test_notebook_source_change_is_real() -> None:
    f = one("report.ipynb", notebook("1"), notebook("2", source="y"))["files"][0]
    assert f["notebook"]["cells"][0]["parts"] == ["outputs", "source"]
    assert "nondeterminism" not in f


def test_notebook_tags_are_kept() -> None:
    before = notebook("1")
    nb = json.loads(before)
    nb["cells"][0]["metadata"]["tags"] = ["other"]
    f = one("report.ipynb", before, json.dumps(nb).encode())["files"][0]
    assert f["status"] == "different"


def test_broken_notebook_json_is_compared_as_text() -> None:
    f = one("report.ipynb", b'{"cells": [', b'{"cells": [1')["files"][0]
    assert f["status"] == "different" and "text" in f


def test_a_json_list_named_ipynb_does_not_crash() -> None:
    f = one("report.ipynb", b"[1, 2]", b"[1, 3]")["files"][0]
    assert f["status"] == "different"


# XLSX and PDF -------------------------------------------------------------------------------


def xlsx(frames: dict[str, pd.DataFrame], created: str = "2026-01-01T00:00:00Z") -> bytes:
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in frames.items():
            frame.to_excel(writer, sheet_name=name, index=False)
    return _with_core(buffer.getvalue(), created)


def _with_core(data: bytes, created: str) -> bytes:
    """The same workbook with its created/modified times set to ``created``."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info)
            if info.filename == "docProps/core.xml":
                body = (
                    b'<?xml version="1.0"?><cp:coreProperties xmlns:cp="x" xmlns:dcterms="y">'
                    b"<dcterms:created>" + created.encode() + b"</dcterms:created></cp:coreProperties>"
                )
            target.writestr(info.filename, body)
    return out.getvalue()


FRAME = pd.DataFrame({"group": ["a", "b"], "n": [10, 12]})


def test_xlsx_creation_time_is_ignored() -> None:
    before = xlsx({"Sheet1": FRAME}, "2026-01-01T00:00:00Z")
    after = xlsx({"Sheet1": FRAME}, "2027-05-05T05:05:05Z")
    assert before != after
    f = one("t.xlsx", before, after)["files"][0]
    assert f["status"] == "identical" and "docProps" in f["ignored"]


def test_xlsx_cell_change_per_sheet() -> None:
    changed = FRAME.copy()
    changed.loc[1, "n"] = 13
    before = xlsx({"counts": FRAME, "other": FRAME})
    after = xlsx({"counts": changed, "extra": FRAME})
    f = one("t.xlsx", before, after)["files"][0]
    assert f["status"] == "different"
    assert f["table"]["sheets_added"] == ["extra"] and f["table"]["sheets_removed"] == ["other"]
    counts = f["table"]["tables"][0]
    assert counts["sheet"] == "counts" and counts["examples"] == [[2, "n", "12", "13"]]
    assert "nondeterminism" not in f  # a sheet went missing


def test_not_a_workbook_named_xlsx() -> None:
    f = one("t.xlsx", b"PK\x03\x04garbage", b"PK\x03\x04garbagf")["files"][0]
    assert f["status"] == "different" and "table_unreadable" in f


def test_a_workbook_that_expands_too_far_is_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    from enclave.runs import normalise, tablediff

    monkeypatch.setattr(tablediff, "MAX_XLSX_UNCOMPRESSED", 10)
    monkeypatch.setattr(normalise, "MAX_XLSX_UNCOMPRESSED", 10)
    changed = FRAME.copy()
    changed.loc[0, "n"] = 11
    f = one("t.xlsx", xlsx({"s": FRAME}), xlsx({"s": changed}))["files"][0]
    assert f["status"] == "different" and "cap" in f["table_unreadable"] and "binary" in f


def test_pdf_dates_are_ignored_but_content_is_not() -> None:
    before = b"%PDF-1.4\n/CreationDate (D:20260101000000Z) /ModDate (D:20260101000000Z)\nBT (1.5) ET\n"
    after = b"%PDF-1.4\n/CreationDate (D:20270202020202Z) /ModDate (D:20270202020202Z)\nBT (1.5) ET\n"
    assert one("fig.pdf", before, after)["files"][0]["status"] == "identical"
    other = after.replace(b"1.5", b"1.6")
    assert one("fig.pdf", before, other)["files"][0]["status"] == "different"


# Results without a comparison ---------------------------------------------------------------


def test_not_reproduced_shape() -> None:
    result = cmp.not_reproduced("rerun_failed", "the rerun failed", "重跑失败", state="failed")
    assert result["verdict"] == "not_reproduced"
    assert result["reason"] == {
        "code": "rerun_failed",
        "message": "the rerun failed",
        "message_zh": "重跑失败",
        "state": "failed",
    }
    assert "重跑失败" in result["summary_zh"] and result["files"] == []


# Values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["2026-01-05", "2026-01-05T10:00:01Z", "2026-01-05 10:00:01.123+08:00", "2026/01/05", "10:00:01"]
)
def test_timestamps(value: str) -> None:
    assert is_timestamp(value)
    assert as_number(value) is None


@pytest.mark.parametrize(
    ("value", "number"), [("12", 12.0), ("-3.5e-2", -0.035), ("40%", 40.0), (" .5 ", 0.5)]
)
def test_numbers(value: str, number: float) -> None:
    assert as_number(value) == pytest.approx(number)


@pytest.mark.parametrize("value", ["nan", "inf", "1e999", "1,234", "12a", "", "2026"])
def test_not_numbers_or_years(value: str) -> None:
    if value == "2026":
        assert as_number(value) == 2026 and not is_timestamp(value)
    else:
        assert as_number(value) is None
