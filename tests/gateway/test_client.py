"""The analyst client against the real gateway: connect from the environment, %%sql, errors, interrupt."""

from __future__ import annotations

import _thread
import threading
import time

import enclave_client
import pytest
from enclave_client import QueryError
from enclave_client.magic import run_cell

from enclave.audit import AuditAction
from tests.gateway.conftest import PROJECT, Enclave, Hub, RunningGateway
from tests.gateway.test_gateway import AGGREGATE, SLOW, audit_events


@pytest.fixture
def analyst_env(hub: Hub, gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the spawner sets in the analyst's server."""
    token, _ = hub.server_token("alice", PROJECT)
    monkeypatch.setenv("ENCLAVE_GATEWAY_URL", gateway.url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", token)
    monkeypatch.setenv("JUPYTERHUB_SERVER_NAME", PROJECT)
    monkeypatch.delenv("ENCLAVE_PROJECT", raising=False)


def test_connect_reads_the_environment(analyst_env: None) -> None:
    db = enclave_client.connect()
    assert db.project == PROJECT
    assert "patients" in db.tables()


def test_connect_without_environment_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENCLAVE_GATEWAY_URL", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(QueryError) as caught:
        enclave_client.connect()
    assert caught.value.code == "client_not_configured"


def test_unreachable_gateway_is_a_query_error(analyst_env: None) -> None:
    from enclave_client import Connection

    from tests.gateway.conftest import free_port

    with pytest.raises(QueryError) as caught:
        Connection(f"http://127.0.0.1:{free_port()}/", "t").tables()
    assert caught.value.code == "gateway_unreachable"


def test_sql_cell_magic(analyst_env: None) -> None:
    namespace: dict[str, object] = {}
    frame = run_cell("--out counts", AGGREGATE, namespace, db=enclave_client.connect())
    assert namespace["counts"] is frame and int(frame["n"].sum()) == 400
    synthetic = run_cell("--synthetic", AGGREGATE, db=enclave_client.connect())
    assert synthetic.attrs["synthetic"] is True
    with pytest.raises(ValueError):
        run_cell("--drop-tables", AGGREGATE, db=enclave_client.connect())


def test_refusal_reads_well_in_a_notebook(analyst_env: None) -> None:
    with pytest.raises(QueryError) as caught:
        enclave_client.connect().sql("SELECT * FROM patients")
    error = caught.value
    html = error._repr_html_()
    assert "查询被拒绝" in html and all(code in html for code in error.codes)
    assert "<script" not in html


def test_interrupt_cancels_the_query_on_the_gateway(
    analyst_env: None, enclave: Enclave, slow_query_allowed: None
) -> None:
    db = enclave_client.connect()
    db.progress_after_s = 0.2
    shown: list[float] = []
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            db.sql(SLOW, progress=shown.append)
    finally:
        timer.cancel()  # never let the interrupt land in a later test
    assert time.monotonic() - started < 5
    assert shown and shown[-1] >= 0.2  # progress was reported while it ran
    assert_cancelled_on_the_gateway(enclave)


def test_interrupted_progress_line_shows_the_state_and_is_wiped(
    analyst_env: None, enclave: Enclave, slow_query_allowed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    db = enclave_client.connect()
    db.progress_after_s = 0.3
    before = len(cancelled(enclave))
    timer = threading.Timer(1.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            db.sql(SLOW)  # the default indicator (stderr outside a notebook)
    finally:
        timer.cancel()
    err = capsys.readouterr().err
    assert "query running… / 查询运行中…" in err or "query queued… position" in err
    assert "interrupt to cancel" in err and err.endswith("\r") and "\n" not in err
    assert_cancelled_on_the_gateway(enclave, before)


def cancelled(enclave: Enclave) -> list[dict[str, object]]:
    refused = audit_events(enclave, AuditAction.QUERY_REFUSE, "alice")
    return [e for e in refused if e["sql"] == SLOW and e["code"] == "query_cancelled"]


def assert_cancelled_on_the_gateway(enclave: Enclave, before: int = 0) -> None:
    """The gateway audits the slow query as cancelled (within 15 s), after ``before`` such events."""
    deadline = time.monotonic() + 15
    while True:
        refused = [e for e in audit_events(enclave, AuditAction.QUERY_REFUSE, "alice") if e["sql"] == SLOW]
        if refused and refused[-1]["code"] == "query_cancelled" and len(cancelled(enclave)) > before:
            break
        assert time.monotonic() < deadline, (
            "the gateway never cancelled the query: "
            + repr([e for e in audit_events(enclave, AuditAction.QUERY_REFUSE) if e["sql"] == SLOW])
            + repr([e for e in audit_events(enclave, AuditAction.QUERY_RUN) if e["sql"] == SLOW])
        )
        time.sleep(0.1)


def test_a_refusal_says_which_rule_how_to_rewrite_and_where_to_read(analyst_env: None) -> None:
    with pytest.raises(QueryError) as caught:
        enclave_client.connect().sql("SELECT * FROM patients")
    error = caught.value
    assert error.refused and error.errors
    for entry in error.errors:  # every reason: its rule, a hint in both languages, its docs section
        assert entry["code"].startswith("QRY_")
        assert entry["hint"]["en"] and entry["hint"]["zh"]
        assert entry["doc"]["en"].startswith("docs/guard.md#")
        assert enclave_client.guard_docs(entry["doc"]["en"]).startswith("## ")
    text = str(error)
    assert "[QRY_NOT_AGGREGATE]" in text and "How to rewrite:" in text and "如何改写：" in text
    assert "docs/guard.md#the-algebra-four-layers" in text
    assert "The algebra: four layers" in error._repr_html_()


def test_suppressed_groups_show_in_the_frames_display(analyst_env: None) -> None:
    frame = enclave_client.connect().sql("SELECT income, count(*) AS n FROM patients GROUP BY income")
    count = frame.attrs["suppressed_groups"]
    assert count > 0
    caption = f"{count} groups below the minimum cell count were suppressed"
    caption_zh = f"{count} 个低于最小单元格计数的组已被隐藏"
    assert all(
        text in shown for text in (caption, caption_zh) for shown in (repr(frame), frame._repr_html_())
    )
