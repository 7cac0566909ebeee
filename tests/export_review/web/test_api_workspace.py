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


OTHER = "renal-2026"  # bob is an analyst there too


@pytest.fixture(scope="module")
def workspace(stack: Stack) -> str:
    """bob's server token for PROJECT, bob being on a second project as well."""
    from tests.export_review.factories import make_project

    make_project(stack.env, project_id=OTHER)
    return _server_token(stack, "bob", PROJECT)


def _submit(stack: Stack, project: str, token: str) -> Response:
    from tests.export_review.web.conftest import call, multipart

    body, content_type = multipart(
        {"project": project, "justification": "Table 1"}, [("t.csv", GOOD_CSV.encode())]
    )
    return call("POST", f"{stack.service_url}api/requests", token, body=body, content_type=content_type)


def test_a_workspace_submits_for_its_own_project_only(stack: Stack, workspace: str) -> None:
    """The token of bob's server for one project cannot move a file to the other's committee; his own
    (browser) login may submit for either."""
    refused = _submit(stack, OTHER, workspace)
    assert refused.status == 403 and _codes(refused) == ["export_project_mismatch"]
    assert not stack.api("GET", f"requests?project={OTHER}", "bob").json()["requests"]
    assert _submit(stack, PROJECT, workspace).status == 201
    assert _submit(stack, OTHER, stack.tokens["bob"]).status == 201  # not a server's token: no binding


def test_a_workspace_sees_only_its_own_projects_requests(stack: Stack, workspace: str) -> None:
    from tests.export_review.web.conftest import call

    mine = _submit(stack, PROJECT, workspace).json()["request"]
    elsewhere = _submit(stack, OTHER, stack.tokens["bob"]).json()["request"]
    url = f"{stack.service_url}api/"
    listed = call("GET", f"{url}requests", workspace).json()["requests"]
    assert {r["project"] for r in listed} == {PROJECT} and mine in {r["id"] for r in listed}
    assert call("GET", f"{url}requests?project={OTHER}", workspace).status == 403
    assert call("GET", f"{url}requests/{mine}", workspace).status == 200
    other = call("GET", f"{url}requests/{elsewhere}", workspace)
    assert other.status == 403 and _codes(other) == ["export_project_mismatch"]
    assert call("GET", f"{url}projects/{PROJECT}", workspace).status == 200
    facts = call("GET", f"{url}projects/{OTHER}", workspace)
    assert facts.status == 404 and b"2027-12-31" not in facts.body
    assert stack.api("GET", f"projects/{OTHER}", "bob").status == 200  # bob himself may


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "api/requests/{id}/votes"),
        ("POST", "api/requests/{id}/release"),
        ("POST", "api/requests/{id}/rerun"),
        ("GET", "api/requests/{id}/download"),
        ("GET", ""),
        ("GET", "review"),
        ("GET", "mine"),
        ("GET", "requests/{id}"),
        ("GET", "requests/{id}/compare"),
        ("GET", "requests/{id}/images/t.csv"),
        ("GET", "requests/{id}/svg/t.csv"),
        ("GET", "requests/{id}/download"),
    ],
)
def test_everything_else_is_refused_to_a_workspace(
    stack: Stack, workspace: str, method: str, path: str
) -> None:
    """Default deny: no vote, release, rerun or download, and no page (previews) from a workspace."""
    from tests.export_review.web.conftest import call

    request_id = _submit(stack, PROJECT, workspace).json()["request"]
    body = b"{}" if method == "POST" else None
    answer = call(method, stack.service_url + path.format(id=request_id), workspace, body=body)
    assert answer.status == 403, (path, answer.status, answer.body[:300])
    assert b"export_workspace_refused" in answer.body
