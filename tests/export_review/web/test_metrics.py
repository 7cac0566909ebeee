"""The export review's /metrics behind a real hub: requests per state and the oldest wait, for a
`read:metrics` token only (issue 13, item 6)."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from export_review.workflow import ExportState
from tests.export_review.factories import GOOD_CSV, PROJECT
from tests.export_review.web.conftest import Response, Stack, call
from tests.gateway.conftest import http


def monitoring_token(stack: Stack) -> str:
    status, answer = http(
        "POST", f"{stack.api_url}/users/mona/tokens", stack.admin_token, {"scopes": ["read:metrics"]}
    )
    assert status == 201, answer
    return answer["token"]


def get_metrics(stack: Stack, token: str | None) -> Response:
    return call("GET", f"{stack.service_url}metrics", token)


def values(stack: Stack) -> dict[tuple[str, str], float]:
    answer = get_metrics(stack, monitoring_token(stack))
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, sample.labels["state"]): sample.value
        for family in text_string_to_metric_families(answer.body.decode())
        for sample in family.samples
    }


def test_requests_per_state_and_the_oldest_wait(stack: Stack) -> None:
    before = values(stack)
    assert {state for name, state in before if name == "enclave_export_requests"} == {
        s.value for s in ExportState
    }
    submitted = stack.submit("bob", [("table.csv", GOOD_CSV.encode())])
    assert submitted.status == 201, submitted.body
    time.sleep(1.2)
    after = values(stack)
    waiting = ("enclave_export_requests", "in_review")
    assert after[waiting] == before[waiting] + 1
    assert after["enclave_export_oldest_request_age_seconds", "in_review"] >= 1.0
    assert ("enclave_export_oldest_request_age_seconds", "released") not in after  # nobody waits there


def test_metrics_name_no_user_project_or_request(stack: Stack) -> None:
    submitted = stack.submit("bob", [("table.csv", GOOD_CSV.encode())])
    body = get_metrics(stack, monitoring_token(stack)).body.decode()
    assert "enclave_export_requests" in body
    for secret in ("bob", PROJECT, submitted.json()["request"], "table.csv"):
        assert secret not in body


def test_metrics_refuse_callers_without_read_metrics(stack: Stack) -> None:
    callers = {
        "anonymous": None,
        "forged": "f" * 40,
        "an analyst's service token": stack.tokens["bob"],
        "a reviewer's service token": stack.tokens["rev1"],
        "an admin service without read:metrics": stack.admin_token,
    }
    for who, token in callers.items():
        answer = get_metrics(stack, token)
        assert answer.status == (401 if token in (None, "f" * 40) else 403), (who, answer.status, answer.body)
        assert answer.json()["ok"] is False and b"enclave_export" not in answer.body, who
        if answer.status == 403:
            assert answer.json()["errors"][0]["code"] == "metrics_forbidden", who
