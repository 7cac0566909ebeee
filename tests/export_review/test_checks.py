"""The automated checks, each fed real files; every rule is tried on both sides of its line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from enclave.filestore import sha256_of
from export_review import checks
from export_review.acro import acro_summary
from export_review.checks import CheckPolicy, Severity, StoredFile, run_checks
from export_review.policy import CheckLimits
from tests.export_review.factories import PSEUDONYMS

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
POLICY = CheckPolicy(k=5, limits=CheckLimits(), key_space=PSEUDONYMS)


def stored(tmp_path: Path, name: str, content: str | bytes) -> StoredFile:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return StoredFile(name, path, sha256_of(path), path.stat().st_size)


def codes(tmp_path: Path, name: str, content: str | bytes, policy: CheckPolicy = POLICY) -> list[str]:
    return [f.code for f in run_checks(stored(tmp_path, name, content), policy)]


def test_every_check_is_registered_once() -> None:
    names = [c.__name__ for c in checks.CHECKS]
    assert len(names) == len(set(names))
    assert {
        "file_type",
        "size_cap",
        "small_cells",
        "dominance",
        "person_keys",
        "row_level",
        "free_text",
        "unrounded",
        "human_review",
    } <= set(names)


@pytest.mark.parametrize(("count", "fails"), [(4, True), (5, False), (1, True), (0, False)])
def test_small_cells_at_k(tmp_path: Path, count: int, fails: bool) -> None:
    found = run_checks(stored(tmp_path, "t.csv", f"dx,n\nI10,{count}\nE11,40\n"), POLICY)
    small = [f for f in found if f.code == "small_cell"]
    assert bool(small) is fails
    if fails:
        assert small[0].location == {"table": "t.csv", "row": 1, "column": "n"}
        assert small[0].severity is Severity.FAIL


def test_small_cells_use_the_projects_k(tmp_path: Path) -> None:
    strict = CheckPolicy(k=10, limits=CheckLimits(), key_space=PSEUDONYMS)
    assert "small_cell" in codes(tmp_path, "t.csv", "dx,n\nI10,7\n", strict)
    assert "small_cell" not in codes(tmp_path, "u.csv", "dx,n\nI10,7\n")


def test_cross_tabulation_cells_are_counts(tmp_path: Path) -> None:
    found = run_checks(stored(tmp_path, "x.csv", "dx,male,female\nI10,30,2\nE11,25,40\n"), POLICY)
    assert [(f.location["row"], f.location["column"]) for f in found if f.code == "small_cell"] == [
        (1, "female")
    ]


def test_dominance_over_few_contributors(tmp_path: Path) -> None:
    found = codes(tmp_path, "d.csv", "dx,n,income_sum\nI10,2,9000\nE11,40,80000\n")
    assert found.count("dominance_few_contributors") == 1


@pytest.mark.parametrize(
    ("total", "top1", "top2", "dominated"),
    [(1000, 950, 10, True), (1000, 300, 200, False), (1000, 600, 330, True)],
)
def test_nk_and_p_percent(tmp_path: Path, total: int, top1: int, top2: int, dominated: bool) -> None:
    found = codes(tmp_path, "d.csv", f"dx,cost_total,max,top2\nI10,{total},{top1},{top2}\n")
    assert ("dominance" in found) is dominated


def test_magnitudes_without_contributors_go_to_a_human(tmp_path: Path) -> None:
    found = run_checks(stored(tmp_path, "m.csv", "dx,mean_cost\nI10,12.5\n"), POLICY)
    assert [f.severity for f in found if f.code == "dominance_unchecked"] == [Severity.REVIEW]


def test_pseudonyms_of_the_project_are_found_in_cells_and_text(tmp_path: Path) -> None:
    key = sorted(PSEUDONYMS)[3]
    found = run_checks(stored(tmp_path, "k.csv", f"who,n\n{key},10\nx,12\n"), POLICY)
    hits = [f for f in found if f.code == "pseudonym_cell"]
    assert [h.location["row"] for h in hits] == [1]
    assert key not in json.dumps([f.to_dict() for f in found])  # coordinates only, never the value
    assert "pseudonym_in_text" in codes(tmp_path, "notes.txt", f"look at {key} again")
    assert "person_key_column" in codes(tmp_path, "p.csv", "patient_id,n\n1,10\n")


def test_without_a_key_space_the_check_fails_closed(tmp_path: Path) -> None:
    blind = CheckPolicy(k=5, limits=CheckLimits(), key_space=None)
    found = run_checks(stored(tmp_path, "t.csv", "dx,n\nI10,10\n"), blind)
    assert [f.severity for f in found if f.code == "key_space_unavailable"] == [Severity.FAIL]
    assert "pseudonym_shaped_cell" in codes(tmp_path, "s.csv", "who,n\np_00ff00ff00ff,10\n", blind)


def test_row_level_shapes(tmp_path: Path) -> None:
    limits = CheckLimits(max_result_rows=100)
    policy = CheckPolicy(k=5, limits=limits, key_space=PSEUDONYMS)
    many = "g,n\n" + "".join(f"{i % 7},{10 + i}\n" for i in range(101))
    assert "too_many_rows" in codes(tmp_path, "many.csv", many, policy)
    assert "too_many_rows" not in codes(tmp_path, "ok.csv", "g,n\n" + "a,10\n" * 100, policy)
    per_person = "age,sex\n" + "".join(f"{20 + i % 50},M\n" for i in range(60))
    assert "row_per_person" in codes(tmp_path, "pp.csv", per_person)  # 60 rows, 100 persons
    ids = "code,v\n" + "".join(f"id{i},{i % 3}\n" for i in range(60))
    assert "unique_row_key" in codes(tmp_path, "ids.csv", ids)
    years = "year,n\n" + "".join(f"{1950 + i},{10}\n" for i in range(60))
    assert "unique_row_key" not in codes(tmp_path, "years.csv", years)


def test_free_text(tmp_path: Path) -> None:
    text = "dx,note\n" + "I10,patient reported chest pain after a long walk home\n" * 3
    assert "free_text_column" in codes(tmp_path, "f.csv", text)
    assert "free_text_column" not in codes(tmp_path, "g.csv", "dx,label\nI10,hypertension\n")
    chinese = "dx,备注\nI10,患者自述长时间步行回家后出现胸痛并伴有呼吸困难症状\n"
    assert "free_text_column" in codes(tmp_path, "h.csv", chinese)
    assert "free_text_document" in codes(tmp_path, "r.md", "# Results\nall fine")


def test_unrounded_small_counts_warn(tmp_path: Path) -> None:
    found = run_checks(stored(tmp_path, "u.csv", "dx,n\nI10,12\nE11,15\nJ18,150\n"), POLICY)
    warn = [f for f in found if f.code == "unrounded_small_counts"]
    assert [w.severity for w in warn] == [Severity.WARN]
    assert warn[0].details["cells"] == [{"row": 1, "column": "n"}]


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("run.exe", b"MZ\x90\x00", "file_type_not_allowed"),
        ("data.parquet", b"PAR1", "file_type_not_allowed"),
        ("noext", "dx,n", "file_type_not_allowed"),
        ("fake.png", "dx,n\nI10,3\n", "file_type_mismatch"),
        ("fake.pdf", PNG, "file_type_mismatch"),
        ("bad.json", "{not json", "file_type_mismatch"),
        ("bin.csv", b"dx,n\x00\xff\n", "file_type_mismatch"),
        ("page.html", "<p onclick='x()'>hi</p>", "active_content"),
        ("pic.svg", "<svg><script>fetch('x')</script></svg>", "active_content"),
    ],
)
def test_blocked_files(tmp_path: Path, name: str, content: str | bytes, code: str) -> None:
    found = run_checks(stored(tmp_path, name, content), POLICY)
    assert code in [f.code for f in found]
    assert any(f.severity is Severity.BLOCK for f in found)


def test_size_cap(tmp_path: Path) -> None:
    policy = CheckPolicy(k=5, limits=CheckLimits(max_file_bytes=10), key_space=PSEUDONYMS)
    assert codes(tmp_path, "t.csv", "dx,n\nI10,25\n", policy) == ["file_too_large"]


def test_images_and_pdfs_go_to_human_eyes(tmp_path: Path) -> None:
    assert codes(tmp_path, "fig.png", PNG) == ["image_for_review"]
    assert codes(tmp_path, "paper.pdf", b"%PDF-1.7\n") == ["image_for_review"]
    assert codes(tmp_path, "photo.JPEG", b"\xff\xd8\xff\xe0") == ["image_for_review"]


def notebook(outputs: list[dict]) -> str:
    cell = {"cell_type": "code", "source": ["df.groupby('dx').size()"], "outputs": outputs, "metadata": {}}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_notebook_outputs_get_the_same_checks(tmp_path: Path) -> None:
    key = sorted(PSEUDONYMS)[0]
    html = "<table><tr><th>dx</th><th>n</th></tr><tr><td>I10</td><td>2</td></tr></table>"
    nb = notebook(
        [
            {"output_type": "execute_result", "data": {"text/html": [html], "text/plain": ["..."]}},
            {"output_type": "stream", "name": "stdout", "text": [f"first {key}\n"]},
            {"output_type": "display_data", "data": {"image/png": "iVBOR"}},
        ]
    )
    found = run_checks(stored(tmp_path, "a.ipynb", nb), POLICY)
    by_code = {f.code: f for f in found}
    assert by_code["small_cell"].location["table"] == "cell 1 output 1 table 1"
    assert by_code["pseudonym_in_text"].location == {"text": "cell 1 output 2"}
    assert "image_for_review" in by_code
    clean = notebook([{"output_type": "stream", "name": "stdout", "text": ["mean 3.2\n"]}])
    assert not [f for f in run_checks(stored(tmp_path, "b.ipynb", clean), POLICY) if f.severity != "info"]


def test_excel_and_json_tables(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"dx": ["I10", "E11"], "n": [3, 40]}).to_excel(buffer, index=False, sheet_name="T1")
    found = run_checks(stored(tmp_path, "t.xlsx", buffer.getvalue()), POLICY)
    assert [f.location["table"] for f in found if f.code == "small_cell"] == ["t.xlsx:T1"]
    records = json.dumps([{"dx": "I10", "n": 2}, {"dx": "E11", "n": 30}])
    assert "small_cell" in codes(tmp_path, "t.json", records)
    assert "file_type_mismatch" in codes(tmp_path, "zip.xlsx", b"PK\x03\x04garbage")


def test_a_broken_table_fails_rather_than_passing(tmp_path: Path) -> None:
    found = run_checks(stored(tmp_path, "t.csv", 'dx,n\n"I10,3\nE11,4,5,6\n'), POLICY)
    assert "file_unreadable" in [f.code for f in found]


def test_a_crashing_check_is_a_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(stored_file, policy):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(checks, "CHECKS", (*checks.CHECKS, broken))
    found = run_checks(stored(tmp_path, "t.csv", "dx,n\nI10,25\n"), POLICY)
    assert [(f.code, f.severity) for f in found if f.check == "broken"] == [("check_crashed", Severity.FAIL)]


def test_acro_results_are_summarised(tmp_path: Path) -> None:
    results = {
        "version": "0.4.5",
        "results": {
            "output_0": {
                "status": "fail",
                "type": "table",
                "summary": "fail; threshold: 2 cells",
                "files": [{"name": "output_0.csv"}],
                "comments": ["suppress"],
            },
        },
    }
    summary = acro_summary([stored(tmp_path, "results.json", json.dumps(results))])
    assert summary is not None
    assert summary["outputs"][0]["status"] == "fail"
    assert summary["outputs"][0]["files"] == ["output_0.csv"]
    assert acro_summary([stored(tmp_path, "other.json", "{}")]) is None
