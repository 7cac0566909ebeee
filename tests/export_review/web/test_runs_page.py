"""Exports from batch runs through the service: submit a run's outputs over the API, the request page
shows the provenance and the reproducibility check (English and Chinese), and reviewers ask for
another rerun (API and the page's form, behind the xsrf check)."""

from __future__ import annotations

from tests.export_review.factories import PROJECT
from tests.export_review.run_factories import SUMMARY, TABLE, finish_rerun, make_run
from tests.export_review.web.conftest import Stack, call
from tests.runs.factories import fake_prepared


def _submit_run(stack: Stack) -> tuple[str, str]:
    fake_prepared(stack.env.paths, PROJECT)
    run_id = make_run(stack.env)
    response = stack.submit("bob", [], run=run_id)
    assert response.status == 201, response.body
    body = response.json()
    assert body["state"] == "in_review" and body["run"] == run_id and body["reproduction"] == "pending"
    return body["request"], run_id


def _page(stack: Stack, request_id: str, user: str, lang: str = "en") -> str:
    response = call("GET", f"{stack.service_url}requests/{request_id}?lang={lang}", stack.tokens[user])
    assert response.status == 200, response.body
    return response.body.decode()


def test_a_run_export_on_the_review_page(stack: Stack) -> None:
    request_id, run_id = _submit_run(stack)
    shown = stack.api("GET", f"requests/{request_id}", "rev1").json()["request"]
    assert shown["provenance"]["run"] == run_id and shown["reproduction"]["state"] == "pending"
    page = _page(stack, request_id, "rev1")
    assert 'id="provenance"' in page and run_id in page and "SELECT dx, count(*)" in page
    assert 'data-state="pending"' in page and 'id="rerun"' not in page  # one rerun at a time
    rerun_id = shown["reproduction"]["rerun"]
    finish_rerun(stack.env, rerun_id, {"table.csv": TABLE.replace(b"b,40", b"b,41"), "summary.csv": SUMMARY})
    page = _page(stack, request_id, "rev1")
    assert 'data-state="not_reproduced"' in page
    assert 'data-status="different"' in page and "<td>40</td><td>41</td>" in page
    assert 'id="rerun"' in page and f"requests/{request_id}/rerun" in page
    chinese = _page(stack, request_id, "rev1", "zh")
    assert "来自批处理作业" in chinese and "可复现性检查" in chinese and "未复现" in chinese
    # A project member who is neither the requester nor a reviewer sees no button.
    assert 'id="rerun"' not in _page(stack, request_id, "alice")


def test_asking_for_a_rerun(stack: Stack) -> None:
    request_id, _run = _submit_run(stack)
    first = stack.api("GET", f"requests/{request_id}", "rev1").json()["request"]["reproduction"]["rerun"]
    busy = stack.api("POST", f"requests/{request_id}/rerun", "rev1")
    assert busy.status == 403 and busy.json()["errors"][0]["code"] == "export_rerun_pending"
    finish_rerun(stack.env, first, {"table.csv": TABLE, "summary.csv": SUMMARY})
    assert stack.api("GET", f"requests/{request_id}", "bob").json()["request"]["reproduction"]["state"] == (
        "reproduced"
    )
    stranger = stack.api("POST", f"requests/{request_id}/rerun", "carol")
    assert stranger.status == 403 and stranger.json()["errors"][0]["code"] == "export_not_member"
    # The page's form without its xsrf token is refused, whoever sends it.
    forged = call("POST", f"{stack.service_url}requests/{request_id}/rerun", None, body=b"")
    assert forged.status in (302, 401, 403)
    asked = stack.api("POST", f"requests/{request_id}/rerun", "rev2")
    assert asked.status == 201 and asked.json()["state"] == "pending" and asked.json()["rerun"] != first
    history = stack.api("GET", f"requests/{request_id}", "rev2").json()["request"]["reproduction"]["history"]
    assert [h["state"] for h in history] == ["pending", "reproduced"]
