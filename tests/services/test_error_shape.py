"""Every gateway error has one JSON shape (STYLE §5.12):
``{"ok": false, "errors": [{"code", "message": {"en", "zh"}}], "status"}``."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.gateway.conftest import PROJECT, Hub, RunningGateway, http


def assert_error_shape(status: int, body: Any, expected_status: int) -> list[str]:
    assert status == expected_status, body
    assert isinstance(body, dict) and set(body) == {"ok", "errors", "status"}, body
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["errors"], list) and body["errors"]
    for entry in body["errors"]:
        assert set(entry) == {"code", "message"}
        assert isinstance(entry["code"], str) and entry["code"]
        assert set(entry["message"]) == {"en", "zh"}
        assert entry["message"]["en"].strip() and entry["message"]["zh"].strip()
    return [entry["code"] for entry in body["errors"]]


def raw(method: str, url: str, headers: dict[str, str], data: bytes | None = None) -> tuple[int, Any]:
    import json

    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def token(hub: Hub) -> str:
    return hub.server_token("bob", PROJECT)[0]


def test_no_token(gateway: RunningGateway) -> None:
    for method, path in (("GET", "api/views"), ("POST", "api/query"), ("DELETE", "api/queries/abc")):
        status, body = raw(method, gateway.url + path, {}, b"{}" if method == "POST" else None)
        assert assert_error_shape(status, body, 401) == ["token_missing"]


def test_forged_token(gateway: RunningGateway) -> None:
    status, body = http("GET", gateway.url + "api/views", "not-a-real-token")
    assert assert_error_shape(status, body, 401) == ["token_invalid"]


def test_broad_token(hub: Hub, gateway: RunningGateway) -> None:
    status, body = http("GET", gateway.url + "api/views", hub.user_token("bob"))
    assert assert_error_shape(status, body, 403) == ["token_not_server_bound"]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"not json", "body_invalid"),
        (b"[1, 2]", "body_invalid"),
        (b"{}", "sql_missing"),
        (b'{"sql": "   "}', "sql_missing"),
        (b'{"sql": "SELECT 1", "synthetic": "yes"}', "synthetic_invalid"),
        (b'{"sql": "SELECT 1", "format": "csv"}', "format_invalid"),
        (b'{"sql": "SELECT 1", "query_id": "../../x"}', "query_id_invalid"),
        (b'{"sql": "SELECT 1", "query_id": 7}', "query_id_invalid"),
    ],
)
def test_bad_query_requests(gateway: RunningGateway, token: str, data: bytes, code: str) -> None:
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    status, body = raw("POST", gateway.url + "api/query", headers, data)
    assert assert_error_shape(status, body, 400) == [code]


def test_guard_refusal_lists_the_reasons(gateway: RunningGateway, token: str) -> None:
    status, body = http("POST", gateway.url + "api/query", token, {"sql": "SELECT * FROM patients"})
    codes = assert_error_shape(status, body, 422)
    assert codes and "query_rejected" not in codes  # the reasons, not the wrapper


def test_unknown_view_route_and_method(gateway: RunningGateway, token: str) -> None:
    status, body = http("GET", gateway.url + "api/views/nope", token)
    assert assert_error_shape(status, body, 404) == ["view_not_found"]
    status, body = http("GET", gateway.url + "api/nothing-here", token)
    assert assert_error_shape(status, body, 404) == ["http_404"]
    status, body = http("PUT", gateway.url + "api/views", token, {})
    assert assert_error_shape(status, body, 405) == ["http_405"]


def test_cancel_bad_id(gateway: RunningGateway, token: str) -> None:
    status, body = http("DELETE", gateway.url + "api/queries/NOT_VALID", token)
    assert assert_error_shape(status, body, 400) == ["query_id_invalid"]
