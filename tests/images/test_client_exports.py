"""The analyst client's export requests (``enclave_client.exports``) against the REAL export review
behind a real hub (the ``stack`` of tests/export_review/web/conftest.py), with bob's hub token as a
workspace server has it: submit a file's bytes (also a revision), list only one's own requests in
the project, read the project's facts, and every refusal as a bilingual ``ExportError``."""

from __future__ import annotations

import hashlib
import json
import socket

import pytest
from enclave_client import QueryError
from enclave_client.exports import MAX_EXPORT_BYTES, ExportError, connect, multipart

from tests.export_review.factories import GOOD_CSV, PROJECT
from tests.export_review.web.conftest import Stack, stack

__all__ = ["stack"]  # the hub and the export review


@pytest.fixture
def bob(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """What the spawner puts in bob's workspace for the project."""
    monkeypatch.setenv("ENCLAVE_EXPORT_REVIEW_URL", stack.service_url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", stack.tokens["bob"])
    monkeypatch.setenv("ENCLAVE_PROJECT", PROJECT)
    return stack


def test_submit_sends_the_bytes_as_bob_in_the_project(bob: Stack) -> None:
    client = connect()
    data = GOOD_CSV.encode()
    answer = client.submit("table 1.csv", data, "Table 1 of the paper")
    assert answer["state"] == "in_review" and answer["request"].startswith("exp-")
    shown = bob.api("GET", f"requests/{answer['request']}", "bob").json()["request"]
    assert shown["requester"] == "bob" and shown["project"] == PROJECT and shown["abroad"] is False
    assert shown["justification"] == "Table 1 of the paper"
    (stored,) = shown["files"]
    assert stored["name"] == "table 1.csv" and stored["size"] == len(data)
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()


def test_mine_lists_only_bobs_requests_in_the_project(bob: Stack) -> None:
    own = connect().submit("mine.csv", GOOD_CSV.encode(), "mine")["request"]
    alices = bob.submit("alice", [("hers.csv", GOOD_CSV.encode())]).json()["request"]
    rows = connect().mine()
    ids = [row["id"] for row in rows]
    assert own in ids and alices not in ids
    assert set(rows[0]) == {"id", "state", "version", "previous", "files", "created_at", "updated_at"}
    assert ids == sorted(ids, key=ids.index)  # newest first, as the service lists them
    assert rows[ids.index(own)]["state"] == "in_review" and rows[ids.index(own)]["files"] == 1


def test_a_revision_of_a_request_with_changes_requested(bob: Stack) -> None:
    client = connect()
    first = client.submit("t.csv", GOOD_CSV.encode(), "first")["request"]
    assert bob.vote("rev1", first, choice="changes", comment="round").status == 200
    second = client.submit("t.csv", GOOD_CSV.encode(), "rounded", revises=first, abroad=False)["request"]
    rows = {row["id"]: row for row in client.mine()}
    assert rows[second]["version"] == 2 and rows[second]["previous"] == first
    assert rows[first]["state"] == "changes_requested"


def test_the_projects_facts(bob: Stack) -> None:
    facts = connect().project_facts()
    assert facts["project"] == PROJECT and facts["access"] == "aggregate" and facts["state"] == "active"
    assert facts["period_end"] == "2027-12-31" and isinstance(facts["days_left"], int)


def test_the_services_refusals_are_bilingual_export_errors(bob: Stack) -> None:
    client = connect()
    with pytest.raises(ExportError) as caught:
        client.submit("t.csv", GOOD_CSV.encode(), " ")
    error = caught.value
    assert isinstance(error, QueryError) and error.status == 400
    assert error.code == "export_justification_required" and error.message_zh
    assert error.errors[0]["message"]["zh"]
    with pytest.raises(ExportError) as caught:
        client.submit("../evil.csv", GOOD_CSV.encode(), "x")
    assert caught.value.code == "export_file_name_invalid"
    with pytest.raises(ExportError) as caught:
        connect(project="no-such-project").project_facts()
    assert (caught.value.status, caught.value.code) == (404, "project_not_found")
    with pytest.raises(ExportError) as caught:
        connect(token="0" * 32).mine()
    assert (caught.value.status, caught.value.code) == (401, "login_required")
    assert "Export failed / 导出失败" in caught.value._repr_html_()


def test_refused_before_sending(bob: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ExportError) as caught:
        connect().submit("big.csv", b"x" * (MAX_EXPORT_BYTES + 1), "x")
    assert (caught.value.status, caught.value.code) == (413, "export_file_too_large")
    assert caught.value.refused
    monkeypatch.delenv("ENCLAVE_PROJECT")
    monkeypatch.delenv("JUPYTERHUB_SERVER_NAME", raising=False)
    with pytest.raises(ExportError) as caught:
        connect()
    assert (caught.value.status, caught.value.code) == (503, "export_not_configured")
    monkeypatch.setenv("JUPYTERHUB_SERVER_NAME", PROJECT)  # a named server is the project
    assert connect().project == PROJECT


def test_an_unreachable_service_and_a_bad_answer(bob: Stack) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(ExportError) as caught:
        connect(url=f"http://127.0.0.1:{port}/services/export-review/").mine()
    assert (caught.value.status, caught.value.code) == (502, "export_unreachable")
    with pytest.raises(ExportError) as caught:  # the hub's own page: HTML, not the service's JSON
        connect(url=f"{bob.public_url}/hub/").mine()
    assert caught.value.code in ("export_bad_answer", "http_404"), caught.value


def test_multipart_names_cannot_break_the_form() -> None:
    body, content_type = multipart([("project", "p")], [("files", 'a"\r\nX-Evil: 1\r\n.csv', b"data")])
    boundary = content_type.split("boundary=", 1)[1]
    assert body.count(f"--{boundary}".encode()) == 3
    assert b"\r\nX-Evil" not in body and b'filename="a%22X-Evil: 1.csv"' in body
    assert json.dumps(content_type).startswith('"multipart/form-data; boundary=enclave-')
