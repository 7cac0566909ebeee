"""The REST API against a real hub: tokens, roles from the state DB, the one error shape, the audit."""

from __future__ import annotations

import io
import json
import zipfile

from tests.export_review.factories import GOOD_CSV, PROJECT
from tests.export_review.web.conftest import Stack, call

SMALL_CELL_CSV = b"dx,n\nI10,25\nE11,3\nJ18,15\n"


def _error_codes(response) -> list[str]:  # type: ignore[no-untyped-def]
    body = response.json()
    assert body["ok"] is False and body["status"] == response.status, body
    for error in body["errors"]:
        assert error["message"]["en"] and error["message"]["zh"], error
    return [e["code"] for e in body["errors"]]


def _submit(stack: Stack, files=None) -> str:  # type: ignore[no-untyped-def]
    response = stack.submit("bob", files or [("table.csv", GOOD_CSV.encode())])
    assert response.status == 201, response.body
    assert response.json()["state"] == "in_review"
    return response.json()["request"]


def test_no_token_and_bad_token_are_401(stack: Stack) -> None:
    anonymous = stack.api("GET", "requests", None)
    assert anonymous.status == 401 and _error_codes(anonymous) == ["login_required"]
    forged = call("GET", f"{stack.service_url}api/requests", "0" * 64)
    assert forged.status == 401 and _error_codes(forged) == ["login_required"]


def test_submit_list_show(stack: Stack) -> None:
    request_id = _submit(stack)
    listed = stack.api("GET", "requests", "bob").json()["requests"]
    assert request_id in [r["id"] for r in listed]
    shown = stack.api("GET", f"requests/{request_id}", "bob").json()["request"]
    assert shown["requester"] == "bob" and shown["project"] == PROJECT
    assert [f["name"] for f in shown["files"]] == ["table.csv"]
    # A stranger to the project sees none of it.
    assert request_id not in [r["id"] for r in stack.api("GET", "requests", "carol").json()["requests"]]
    refused = stack.api("GET", f"requests/{request_id}", "carol")
    assert refused.status == 403 and _error_codes(refused) == ["export_not_member"]
    assert stack.api("GET", "requests/exp-0000000000000000", "bob").status == 404


def test_submit_refusals_leave_nothing(stack: Stack) -> None:
    before = len(stack.api("GET", "requests", "bob").json()["requests"])
    traversal = stack.submit("bob", [("../evil.csv", GOOD_CSV.encode())])
    assert traversal.status == 400 and _error_codes(traversal) == ["export_file_name_invalid"]
    assert not (stack.env.work.parent / "evil.csv").exists()
    no_reason = stack.submit("bob", [("t.csv", GOOD_CSV.encode())], justification=" ")
    assert no_reason.status == 400 and _error_codes(no_reason) == ["export_justification_required"]
    reviewer = stack.submit("rev1", [("t.csv", GOOD_CSV.encode())])
    assert reviewer.status == 403 and _error_codes(reviewer) == ["export_not_analyst"]
    blocked = stack.submit("bob", [("run.exe", b"MZ\x90\x00binary")])
    assert blocked.status in (400, 422), blocked.body
    assert len(stack.api("GET", "requests", "bob").json()["requests"]) == before


def test_three_reviewers_approve_release_and_download(stack: Stack) -> None:
    request_id = _submit(stack, [("table.csv", SMALL_CELL_CSV)])
    # The requester can never vote on their own request (403, the error shape).
    own = stack.vote("bob", request_id, choice="approve", override="mine")
    assert own.status == 403 and _error_codes(own) == ["export_self_review"]
    # A failed check needs a written override to approve (422, a disclosure rule).
    bare = stack.vote("rev1", request_id, choice="approve")
    assert bare.status == 422 and _error_codes(bare) == ["export_override_required"]
    assert stack.vote("rev1", request_id, choice="maybe").status == 400
    for reviewer in ("rev1", "rev2"):
        ok = stack.vote(reviewer, request_id, choice="approve", override="a published figure")
        assert ok.status == 200, ok.body
        assert ok.json()["state"] == "in_review"
    # Blind: rev1 sees only their own vote while rev3 has not voted.
    seen = stack.api("GET", f"requests/{request_id}", "rev1").json()["request"]
    assert seen["votes_hidden"] and {v["reviewer"] for v in seen["votes"]} == {"rev1"}
    again = stack.vote("rev1", request_id, choice="approve", override="again")
    assert again.status == 403 and _error_codes(again) == ["export_already_voted"]
    last = stack.vote("rev3", request_id, choice="approve", override="fine")
    assert last.json()["state"] == "approved"
    assert last.json()["decision"]["approvers"] == ["rev1", "rev2", "rev3"]

    assert _error_codes(stack.api("POST", f"requests/{request_id}/release", "bob")) == ["export_self_review"]
    early = stack.api("GET", f"requests/{request_id}/download", "bob")
    assert early.status == 403 and _error_codes(early) == ["export_not_released"]
    released = stack.api("POST", f"requests/{request_id}/release", "rev2")
    assert released.status == 200 and released.json()["state"] == "released"

    stranger = stack.api("GET", f"requests/{request_id}/download", "carol")
    assert stranger.status == 403 and _error_codes(stranger) == ["export_not_recipient"]
    reviewer = stack.api("GET", f"requests/{request_id}/download", "rev1")
    assert reviewer.status == 403 and _error_codes(reviewer) == ["export_not_recipient"]
    for recipient in ("bob", "alice"):  # the requester and the PI
        got = stack.api("GET", f"requests/{request_id}/download", recipient)
        assert got.status == 200 and got.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(got.body)) as archive:
            assert sorted(archive.namelist()) == ["files/table.csv", "manifest.json"]
            assert archive.read("files/table.csv") == SMALL_CELL_CSV
            manifest = json.loads(archive.read("manifest.json"))
        assert manifest["request"] == request_id
        assert {v["reviewer"] for v in manifest["files"][0]["votes"]} == {"rev1", "rev2", "rev3"}

    events = stack.audit(request_id)
    votes = sorted(who for action, who in events if action.endswith("vote"))
    downloads = sorted(who for action, who in events if action.endswith("download"))
    assert votes == ["rev1", "rev2", "rev3"]
    assert downloads == ["alice", "bob"]  # refused downloads are not recorded as downloads
    assert any(action.endswith("release") and who == "rev2" for action, who in events)
    refused = stack.audit(request_id, outcome="refused")
    assert ("export.vote", "bob") in refused and (
        "export.vote",
        "rev1",
    ) in refused  # self-review, double vote
    assert ("export.download", "carol") in refused


def test_cookie_post_without_xsrf_is_not_authenticated(stack: Stack) -> None:
    """A state change must carry a token or pass the hub's xsrf check; a bare POST is 401."""
    request_id = _submit(stack)
    forged = call(
        "POST",
        f"{stack.service_url}api/requests/{request_id}/votes",
        body=b'{"choice": "approve"}',
        content_type="application/json",
    )
    assert forged.status == 401
    assert stack.api("GET", "nowhere", "bob").status == 404
