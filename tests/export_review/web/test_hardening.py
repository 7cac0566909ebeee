"""Issue #14 hardening of the export-review service, against a real hub and the real service over real
sockets: uploads streamed only for a known caller holding one of their upload slots, token answers
cached at most 5 s and forgotten on the revocation hook's request, and no server paths for analysts."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

from export_review.web.app import ExportReviewApp
from hub_config.revocation import clear_service_auth_caches
from tests.export_review.factories import GOOD_CSV, PROJECT
from tests.export_review.web.conftest import SERVICE, SERVICE_PREFIX, Stack, call, multipart
from tests.gateway.conftest import http
from tests.harness.browser import browser, hub_login  # noqa: F401 (a fixture)
from tests.raw_http import read_response

ABSOLUTE_PATH = re.compile(r"""(?:^|[\s"'(=:])/(?:[\w.@-]+/)+[\w.@-]*""")
HUGE = 100 * 1024 * 1024


def _open(stack: Stack, head: str, body: bytes = b"") -> socket.socket:
    parts = urlsplit(stack.direct_url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    sock.sendall(head.encode() + body)
    return sock


def _upload_head(stack: Stack, path: str, length: int, token: str | None, expect: bool = False) -> str:
    prefix = urlsplit(stack.direct_url).path
    return (
        f"POST {prefix}{path} HTTP/1.1\r\nHost: x\r\n"
        + (f"Authorization: token {token}\r\n" if token else "")
        + ("Expect: 100-continue\r\n" if expect else "")
        + f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {length}\r\n\r\n"
    )


def _codes(body: bytes) -> list[str]:
    answer = json.loads(body)
    for error in answer["errors"]:
        assert error["message"]["en"] and error["message"]["zh"], error
    return [e["code"] for e in answer["errors"]]


def test_anonymous_huge_upload_is_refused_unread(stack: Stack) -> None:
    for path in ("api/requests", "submit"):
        started = time.monotonic()
        with _open(stack, _upload_head(stack, path, HUGE, None), b"--b\r\n") as sock:
            status, body = read_response(sock)
        assert status == 401 and time.monotonic() - started < 5, (path, status, body)
        if path.startswith("api/"):
            assert _codes(body) == ["login_required"]
    # A route that takes no upload keeps the server's small limit: refused before reading, too.
    started = time.monotonic()
    with _open(stack, _upload_head(stack, "api/requests/exp-0000000000000000/votes", HUGE, None)) as sock:
        status, _ = read_response(sock)
    assert 400 <= status < 500 and time.monotonic() - started < 5


def test_upload_over_the_cap_is_413_unread(stack: Stack) -> None:
    started = time.monotonic()
    with _open(stack, _upload_head(stack, "api/requests", 2 * HUGE, stack.tokens["bob"]), b"--b") as sock:
        status, body = read_response(sock)
    assert status == 413 and _codes(body) == ["body_too_large"] and time.monotonic() - started < 5


def test_concurrent_uploads_are_capped_per_user(stack: Stack) -> None:
    def start(user: str) -> tuple[socket.socket, int, bytes]:
        sock = _open(stack, _upload_head(stack, "api/requests", 10_000, stack.tokens[user], expect=True))
        status, body = read_response(sock)  # 100 Continue: the upload holds a slot
        return sock, status, body

    first, second = start("bob"), start("bob")
    try:
        assert first[1] == second[1] == 100
        third = start("bob")
        third[0].close()
        assert third[1] == 429 and _codes(third[2]) == ["export_uploads_busy"]
        other = start("alice")  # the cap is per user
        other[0].close()
        assert other[1] == 100
    finally:
        first[0].close()
    deadline = time.monotonic() + 5
    while True:  # the slot frees when the server sees the first connection close
        done = stack.submit("bob", [("table.csv", GOOD_CSV.encode())])
        if done.status != 429 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    second[0].close()
    assert done.status == 201, done.body


def test_release_and_describe_carry_no_server_path(stack: Stack) -> None:
    submitted = stack.submit("bob", [("table.csv", GOOD_CSV.encode())])
    request_id = submitted.json()["request"]
    for reviewer in ("rev1", "rev2", "rev3"):
        assert stack.vote(reviewer, request_id, choice="approve", override="published").status == 200
    released = stack.api("POST", f"requests/{request_id}/release", "rev2")
    assert released.status == 200 and released.json()["state"] == "released", released.body
    home = str(stack.env.paths.home)
    for response in (
        released,
        stack.api("GET", f"requests/{request_id}", "bob"),
        stack.api("GET", f"requests/{request_id}", "rev1"),
        call("GET", f"{stack.service_url}requests/{request_id}", stack.tokens["bob"]),
    ):
        text = response.body.decode()
        assert response.status == 200 and home not in text, text
        links = re.sub(rf"(?:{re.escape(stack.public_url)})?{SERVICE_PREFIX}[\w./?=&;-]*", "", text)
        assert not ABSOLUTE_PATH.search(links), ABSOLUTE_PATH.search(links)
    assert released.json()["manifest_sha256"]


def test_token_cache_ttl_is_at_most_five_seconds() -> None:
    assert ExportReviewApp(api_token="t").hub_auth().cache_max_age <= 5


def test_clearing_the_cache_refuses_a_revoked_token_at_once(stack: Stack) -> None:
    status, answer = http(
        "POST",
        f"{stack.api_url}/users/bob/tokens",
        stack.admin_token,
        {"scopes": [f"access:services!service={SERVICE}"], "note": "revoked in a test"},
    )
    assert status == 201, answer
    token, token_id = answer["token"], answer["id"]
    requests = f"{stack.service_url}api/requests"
    clear = f"{stack.service_url}api/auth-cache/clear"
    assert call("GET", requests, token).status == 200
    assert http("DELETE", f"{stack.api_url}/users/bob/tokens/{token_id}", stack.admin_token)[0] == 204
    assert call("GET", requests, token).status == 200  # still cached: the window the clear closes
    assert call("POST", clear).status == 401
    assert call("POST", clear, stack.tokens["rev1"]).status == 403
    cleared = call("POST", clear, stack.admin_token)
    assert cleared.status == 200 and cleared.json()["ok"] is True
    assert call("GET", requests, token).status == 401
    # The revocation hook makes the same call.
    clear_service_auth_caches([stack.service_url], stack.admin_token)(PROJECT)


def test_submit_page_upload_in_the_browser(stack: Stack, browser, tmp_path: Path) -> None:  # noqa: F811
    table = tmp_path / "table.csv"
    table.write_text(GOOD_CSV)
    page = browser.new_page()
    hub_login(page, stack.service_url, "bob")
    page.goto(f"{stack.service_url}submit")
    page.fill("input[name=project]", PROJECT)
    page.set_input_files("input[name=files]", str(table))
    page.fill("textarea[name=justification]", "Table 1")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/requests/exp-[0-9a-f]{16}$"))
    assert page.get_attribute("#state", "data-state") == "in_review"
    # The same form without the xsrf token is refused, even with the login cookie.
    forged = page.request.post(
        f"{stack.service_url}submit",
        multipart={
            "project": PROJECT,
            "justification": "x",
            "files": {"name": "t.csv", "mimeType": "text/csv", "buffer": GOOD_CSV.encode()},
        },
    )
    assert forged.status in (401, 403)
    page.close()


def test_multipart_helper_still_submits(stack: Stack) -> None:
    body, content_type = multipart({"project": PROJECT, "justification": "t"}, [("t.csv", GOOD_CSV.encode())])
    assert stack.api("POST", "requests", "bob", body=body, content_type=content_type).status == 201
