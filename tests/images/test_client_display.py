"""How the analyst client shows a query in a notebook (issue 16 item 4), without a gateway: the progress
line of a long query, the note under a result with suppressed groups, and refusals that say how to
rewrite the query and link to the guard docs the client ships."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import enclave_client
import pyarrow as pa
import pytest
from enclave_client import QueryError, QueryFrame, progress
from enclave_client.connection import ARROW_STREAM, Connection, _dataframe

from enclave.guard.violations import MESSAGES, guidance

CAPTION_EN = "groups below the minimum cell count were suppressed"
CAPTION_ZH = "个低于最小单元格计数的组已被隐藏"


def answer(suppressed: int = 0) -> tuple[str, bytes]:
    body = {"columns": ["sex", "n"], "rows": [["F", 10], ["M", 12]], "suppressed_groups": suppressed}
    return "application/json", json.dumps(body).encode()


def slow_connection(monkeypatch: pytest.MonkeyPatch, seconds: float) -> Connection:
    """A connection whose gateway answers after ``seconds``; nothing is queued."""
    db = Connection("http://gateway.invalid/", "token", "cardio")

    def request(method: str, path: str, body: Any = None, **_: Any) -> tuple[str, bytes]:
        if method == "GET":  # the status of the query
            return "application/json", json.dumps({"state": "queued", "position": 3}).encode()
        time.sleep(seconds)
        return answer()

    monkeypatch.setattr(db, "_request", request)
    monkeypatch.setattr(progress, "_in_kernel", lambda: False)
    return db


# ---- progress ----------------------------------------------------------------------------------------


def test_a_query_of_a_second_and_a_half_shows_no_progress(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slow_connection(monkeypatch, 1.5).sql("SELECT 1")
    assert capsys.readouterr().err == ""


def test_a_long_query_shows_its_state_and_time_then_clears_the_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = slow_connection(monkeypatch, 1.5)
    db.progress_after_s = 0.2
    db.sql("SELECT 1")
    err = capsys.readouterr().err
    assert "queued… position 3" in err and " s (interrupt to cancel" in err
    assert "\n" not in err and err.endswith("\r")  # rewritten in place, then wiped
    assert err.rsplit("\r", 2)[-2].strip() == ""


class FakeHandle:
    def __init__(self, shown: list[str]) -> None:
        self.shown = shown

    def update(self, obj: Any) -> None:
        self.shown.append(obj.data)


def test_in_a_notebook_the_progress_is_one_output_that_updates_and_empties(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import IPython.display

    shown: list[str] = []

    def display(obj: Any, display_id: bool = False) -> FakeHandle:
        assert display_id is True
        shown.append(obj.data)
        return FakeHandle(shown)

    db = slow_connection(monkeypatch, 1.0)
    monkeypatch.setattr(progress, "_in_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    db.progress_after_s = 0.2
    db.sql("SELECT 1")
    assert len(shown) > 2 and "queued… position 3" in shown[0] and "<code>" in shown[0]
    assert shown[-1] == ""  # the indicator is gone once the result is there
    assert capsys.readouterr().err == ""


# ---- suppressed groups -------------------------------------------------------------------------------


def arrow_answer(suppressed: int) -> tuple[str, bytes]:
    table = pa.table({"sex": ["F", "M"], "n": [10, 12]}).replace_schema_metadata(
        {"enclave.suppressed_groups": str(suppressed), "enclave.query_id": "q1"}
    )
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return ARROW_STREAM, sink.getvalue()


@pytest.mark.parametrize("make", [answer, arrow_answer])
def test_suppressed_groups_are_shown_under_the_result(make: Any) -> None:
    frame = _dataframe(*make(2), synthetic=False)
    assert isinstance(frame, QueryFrame) and frame.attrs["suppressed_groups"] == 2
    for shown in (repr(frame), frame._repr_html_()):
        assert f"2 {CAPTION_EN}" in shown and f"2 {CAPTION_ZH}" in shown
    # ordinary pandas use: the data and attrs as ever, operations give plain frames
    assert frame["n"].sum() == 22 and frame.attrs["synthetic"] is False
    totals = frame.groupby("sex")["n"].sum().to_frame()
    assert type(totals) is type(frame[["n"]]) is type(frame.copy())
    assert CAPTION_EN not in repr(frame[["n"]])


def test_a_result_without_suppressed_groups_has_no_note() -> None:
    frame = _dataframe(*answer(0), synthetic=True)
    assert CAPTION_EN not in repr(frame) and CAPTION_EN not in frame._repr_html_()


# ---- refusals: the rule, how to rewrite, the docs ----------------------------------------------------


def test_a_refusal_names_the_rule_says_how_to_rewrite_and_shows_its_docs() -> None:
    entry = {"code": "QRY_FANOUT", "message": {"en": "The join can multiply rows", "zh": "该连接"}}
    error = QueryError(422, [{**entry, **guidance("QRY_FANOUT")}])
    text = str(error)
    assert "[QRY_FANOUT]" in text
    assert "How to rewrite: Aggregate per person" in text and "如何改写：请在连接前按人员标识汇总" in text
    assert "docs/guard.md#joins-and-fan-out" in text
    html = error._repr_html_()
    assert "How to rewrite" in html and "<details" in html
    assert "Joins and fan-out" in html  # the section itself, from the client's copy: no network needed
    assert "<script" not in html


def test_an_error_without_guidance_reads_as_before() -> None:
    error = QueryError(400, [{"code": "sql_missing", "message": {"en": "Send the query", "zh": "请发送"}}])
    assert str(error) == "[sql_missing] Send the query\n    请发送"
    assert "<details" not in error._repr_html_()


@pytest.mark.parametrize("code", sorted(MESSAGES))
def test_every_rule_has_a_hint_and_a_docs_section_the_client_can_open(code: str) -> None:
    found = guidance(code)
    assert found["hint"]["en"].strip() and found["hint"]["zh"].strip()
    section = enclave_client.guard_docs(found["doc"]["en"])
    assert section.startswith("## "), found["doc"]
    assert code in enclave_client.guard_docs(code)  # every code is in "Rules and their codes"
