"""What a workspace asks of the export review's API (issue 16): the project's facts for JupyterLab's
strip (``GET api/projects/<id>``, members and stewards only), the caller's own requests
(``?mine=yes``) for the panel, and a revision submitted with ``revises``."""

from __future__ import annotations

from datetime import date

import pytest

from enclave.lifecycle import enclave_today
from tests.export_review.factories import GOOD_CSV, PROJECT
from tests.export_review.web.conftest import Response, Stack


def _codes(response: Response) -> list[str]:
    body = response.json()
    assert body["ok"] is False and body["status"] == response.status, body
    assert all(e["message"]["en"] and e["message"]["zh"] for e in body["errors"]), body
    return [e["code"] for e in body["errors"]]


def test_a_member_reads_the_projects_facts_and_days_left(stack: Stack) -> None:
    for user in ("bob", "alice", "rev1"):  # analyst, PI, reviewer: all members
        answer = stack.api("GET", f"projects/{PROJECT}", user)
        assert answer.status == 200, answer.body
        facts = answer.json()
        assert facts == {
            "ok": True,
            "project": PROJECT,
            "title": facts["title"],
            "access": "aggregate",
            "state": "active",
            "period_end": "2027-12-31",
            "days_left": (date(2027, 12, 31) - enclave_today()).days,
        }
        assert facts["title"]


def test_days_left_count_in_the_enclaves_time_zone(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service computes the day where the periods are written: a far zone moves "today"."""
    days = {}
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):  # UTC+14 and UTC-11: always a day apart
        monkeypatch.setenv("ENCLAVE_TIMEZONE", zone)
        days[zone] = stack.api("GET", f"projects/{PROJECT}", "bob").json()["days_left"]
    assert days["Pacific/Pago_Pago"] - days["Pacific/Kiritimati"] == 1


@pytest.mark.parametrize("project", [PROJECT, "no-such-project", "..", "a%2F..%2Fb", "X" * 80])
def test_a_stranger_learns_nothing_not_even_whether_it_exists(stack: Stack, project: str) -> None:
    answer = stack.api("GET", f"projects/{project}", "carol")
    assert answer.status == 404 and _codes(answer) in (["project_not_found"], ["http_404"])
    assert b"2027-12-31" not in answer.body and b"aggregate" not in answer.body


def test_the_project_route_needs_a_token(stack: Stack) -> None:
    answer = stack.api("GET", f"projects/{PROJECT}", None)
    assert answer.status == 401 and _codes(answer) == ["login_required"]


def test_a_steward_reads_any_project(stack: Stack) -> None:
    settings = stack.env.paths.home / "export-review.yaml"
    settings.write_text("stewards: [carol]\n", encoding="utf-8")
    try:
        answer = stack.api("GET", f"projects/{PROJECT}", "carol")
    finally:
        settings.unlink()
    assert answer.status == 200 and answer.json()["project"] == PROJECT
    assert stack.api("GET", f"projects/{PROJECT}", "carol").status == 404  # no longer a steward


def test_mine_lists_only_the_callers_own_requests(stack: Stack) -> None:
    bobs = stack.submit("bob", [("bob.csv", GOOD_CSV.encode())]).json()["request"]
    alices = stack.submit("alice", [("alice.csv", GOOD_CSV.encode())]).json()["request"]
    everything = [r["id"] for r in stack.api("GET", f"requests?project={PROJECT}", "bob").json()["requests"]]
    assert {bobs, alices} <= set(everything)  # bob may see the project's requests…
    mine = stack.api("GET", f"requests?project={PROJECT}&mine=yes", "bob").json()["requests"]
    assert bobs in [r["id"] for r in mine] and alices not in [r["id"] for r in mine]  # …but asked for his
    assert {r["requester"] for r in mine} == {"bob"}
    assert not stack.api("GET", f"requests?project={PROJECT}&mine=yes", "carol").json()["requests"]


def test_revises_submits_a_new_version_of_a_request_with_changes_requested(stack: Stack) -> None:
    first = stack.submit("bob", [("table.csv", GOOD_CSV.encode())]).json()["request"]
    too_early = stack.submit("bob", [("table.csv", GOOD_CSV.encode())], revises=first)
    assert too_early.status in (403, 409) and _codes(too_early) == ["export_state_invalid"]
    voted = stack.vote("rev1", first, choice="changes", comment="round the counts")
    assert voted.status == 200, voted.body
    assert stack.api("GET", f"requests/{first}", "bob").json()["request"]["state"] == "changes_requested"
    by_alice = stack.submit("alice", [("table.csv", GOOD_CSV.encode())], revises=first)
    assert by_alice.status == 403, by_alice.body  # only its requester revises a request
    revised = stack.submit("bob", [("table.csv", GOOD_CSV.encode())], revises=first)
    assert revised.status == 201, revised.body
    shown = stack.api("GET", f"requests/{revised.json()['request']}", "bob").json()["request"]
    assert shown["version"] == 2 and shown["previous"] == first


def _server_token(stack: Stack, user: str, project: str) -> str:
    """The token a spawner hands the user's server for ``project`` (hub_config.roles.WORKSPACE_TOKEN_SCOPES
    with the server filled in), made on the real hub."""
    from tests.gateway.conftest import http

    scopes = [f"access:servers!server={user}/{project}", "access:services!service=enclave-export"]
    status, answer = http(
        "POST",
        f"{stack.api_url}/users/{user}/tokens",
        stack.admin_token,
        {"scopes": scopes, "note": "server"},
    )
    assert status == 201, answer
    return answer["token"]


def test_a_workspace_submits_for_its_own_project_only(stack: Stack) -> None:
    """A user on two projects: the token of their server for one cannot move a file to the other's
    committee; their own (browser) login may submit for either."""
    from tests.export_review.factories import make_project
    from tests.export_review.web.conftest import call, multipart

    other = "renal-2026"
    make_project(stack.env, project_id=other)  # bob is an analyst there too
    token = _server_token(stack, "bob", PROJECT)

    def submit(project: str, with_token: str) -> Response:
        body, content_type = multipart(
            {"project": project, "justification": "Table 1"}, [("table.csv", GOOD_CSV.encode())]
        )
        url = f"{stack.service_url}api/requests"
        return call("POST", url, with_token, body=body, content_type=content_type)

    refused = submit(other, token)
    assert refused.status == 403 and _codes(refused) == ["export_project_mismatch"]
    assert not [r for r in stack.api("GET", f"requests?project={other}", "bob").json()["requests"]]
    assert submit(PROJECT, token).status == 201
    assert submit(other, stack.tokens["bob"]).status == 201  # not a server's token: no binding
