"""Export from JupyterLab (issue 16, items 2 and 5): the real analyst image runs JupyterLab (its
enclave-exports labextension and the lockdown server extension, as installed there) on the host's
loopback; behind it, the REAL export review service behind a real JupyterHub (the ``stack`` of
tests/export_review/web/conftest.py), whose hub token for bob is the server's own token, as the
spawner gives it. Headless Chromium right-clicks a CSV in the file browser, requests its export, and
follows it in the panel until three reviewers approved it; the strip shows the project.

Screenshots of each step go to $ENCLAVE_TEST_ARTEFACTS/lab/ (tests/harness/browser.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from enclave.db.models import Project
from enclave.lifecycle import enclave_today
from tests.export_review.factories import GOOD_CSV, PROJECT
from tests.export_review.web.conftest import Stack, stack
from tests.harness.browser import accessibility_violations, browser, describe, save_screenshot
from tests.harness.lab import LabServer, running_lab

__all__ = ["browser", "stack"]  # fixtures: Chromium, and the hub with the export review

pytestmark = pytest.mark.slow

PREFIX = "enclave-test-lab-export-"
ARTEFACTS = "lab"
CSV_PATH = "results/table1.csv"
MENU_ITEM = ".lm-Menu-item:has-text('Request export')"
PANEL_TAB = ".lm-TabBar-tab[data-id='enclave-exports-panel']"
FILE_ITEM = ".jp-DirListing-item[data-isdir='false'] >> text=table1.csv"


@dataclass
class Lab(LabServer):
    stack: Stack

    def bobs_requests(self) -> list[str]:
        rows = self.stack.api("GET", f"requests?project={PROJECT}&mine=yes", "bob").json()["requests"]
        return [row["id"] for row in rows]


@pytest.fixture(scope="module")
def lab(stack: Stack) -> Iterator[Lab]:
    env = {
        "ENCLAVE_EXPORT_REVIEW_URL": stack.service_url,
        "JUPYTERHUB_API_TOKEN": stack.tokens["bob"],
        "ENCLAVE_PROJECT": PROJECT,
    }
    setup = (
        "import os\n"
        "os.makedirs('/home/analyst/results/folder', exist_ok=True)\n"
        f"open('/home/analyst/{CSV_PATH}', 'w').write({GOOD_CSV!r})\n"
        f"open('/home/analyst/.secret.csv', 'w').write({GOOD_CSV!r})\n"
        f"open('/tmp/outside.csv', 'w').write({GOOD_CSV!r})\n"
        "os.symlink('/tmp/outside.csv', '/home/analyst/results/escape.csv')\n"
        "os.symlink('/home/analyst/.secret.csv', '/home/analyst/results/hidden-link.csv')\n"
        "os.symlink('/tmp', '/home/analyst/results/tmpdir')\n"
    )
    with running_lab(PREFIX, env, setup) as server:
        yield Lab(server.url, server.token, server.container, stack)


def open_lab(browser: Any, lab: Lab) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{lab.url}lab/tree/results?reset&token={lab.token}")  # the file browser in front
    page.wait_for_selector(FILE_ITEM, timeout=90_000)
    page.wait_for_selector("#enclave-workspace-strip[data-warning]", timeout=30_000)
    return page


def _ours(violations: list[dict]) -> list[dict]:
    """The violations on the extension's own elements (JupyterLab's own are not this test's)."""
    return [
        {**v, "nodes": [n for n in v["nodes"] if "enclave" in n["target"] + n["html"]]}
        for v in violations
        if any("enclave" in n["target"] + n["html"] for n in v["nodes"])
    ]


def test_the_extension_is_installed_and_enabled_in_the_image(lab: Lab) -> None:
    text = lab.labextensions()
    assert "enclave-exports" in text, text
    assert "enabled" in text.split("enclave-exports", 1)[1].splitlines()[0], text


def test_an_analyst_exports_a_file_and_sees_it_approved(browser: Any, lab: Lab) -> None:
    page = open_lab(browser, lab)
    strip = page.inner_text("#enclave-workspace-strip")
    facts = lab.stack.api("GET", f"projects/{PROJECT}", "bob").json()
    assert PROJECT in strip and "aggregate" in strip and "仅限汇总" in strip, strip
    assert f"{facts['days_left']} days left" in strip and f"剩余 {facts['days_left']} 天" in strip, strip
    assert page.get_attribute("#enclave-workspace-strip", "data-warning") == "false"

    page.click(FILE_ITEM, button="right")
    page.wait_for_selector(MENU_ITEM)
    save_screenshot(page, ARTEFACTS, "1-context-menu")
    page.click(MENU_ITEM)
    page.wait_for_selector("#enclave-exports-dialog")
    assert CSV_PATH in page.inner_text("#enclave-exports-dialog")
    # Without a justification nothing is sent.
    before = lab.bobs_requests()
    page.click("#enclave-exports-submit")
    page.wait_for_selector("#enclave-exports-status[data-state=invalid]")
    assert "请说明导出该文件的理由" in page.inner_text("#enclave-exports-status")
    assert lab.bobs_requests() == before
    page.fill("#enclave-exports-justification", "Table 1 of the <b>paper</b>")
    save_screenshot(page, ARTEFACTS, "2-request-dialog")
    dialog_violations = _ours(accessibility_violations(page))
    page.click("#enclave-exports-submit")
    page.wait_for_selector(
        "#enclave-exports-status[data-state=submitted], #enclave-exports-status[data-state=failed]"
    )
    status = page.inner_text("#enclave-exports-status")
    request_id = page.get_attribute("#enclave-exports-status", "data-request-id")
    assert request_id and request_id.startswith("exp-"), status
    assert "in_review / 审核中" in status, status
    save_screenshot(page, ARTEFACTS, "3-request-submitted")
    assert not dialog_violations, describe(dialog_violations)

    # The service holds the file from the workspace, byte for byte, requested by bob.
    shown = lab.stack.api("GET", f"requests/{request_id}", "bob").json()["request"]
    assert shown["requester"] == "bob" and shown["project"] == PROJECT
    assert shown["justification"] == "Table 1 of the <b>paper</b>"
    (stored,) = shown["files"]
    assert stored["name"] == "table1.csv"
    assert stored["sha256"] == hashlib.sha256(GOOD_CSV.encode()).hexdigest()
    page.click("#enclave-exports-cancel")
    assert page.locator("#enclave-exports-dialog").count() == 0

    # The panel lists it as in review before the committee decides…
    page.click(PANEL_TAB)
    row = f"#enclave-exports-list li[data-request-id='{request_id}']"
    page.wait_for_selector(f"{row}[data-state=in_review]", timeout=30_000)
    for reviewer in ("rev1", "rev2", "rev3"):
        voted = lab.stack.vote(reviewer, request_id, choice="approve", override="counts checked by hand")
        assert voted.status == 200, voted.body
    assert lab.stack.api("GET", f"requests/{request_id}", "bob").json()["request"]["state"] == "approved"
    # …and as approved at its next look (every 10 s while it is open), with a notification.
    page.wait_for_selector(f"{row}[data-state=approved]", timeout=40_000)
    assert "approved / 已批准" in page.inner_text(row)
    page.wait_for_selector(f".Toastify__toast:has-text('{request_id}')", timeout=10_000)
    assert "approved" in page.inner_text(f".Toastify__toast:has-text('{request_id}')")
    assert "approved / 已批准" in page.inner_text("#enclave-exports-announce")
    save_screenshot(page, ARTEFACTS, "4-panel-approved")
    violations = _ours(accessibility_violations(page))
    assert not violations, describe(violations)
    page.close()


def test_the_strip_warns_in_the_last_week(browser: Any, lab: Lab) -> None:
    with lab.stack.env.session() as session:
        project = session.get(Project, PROJECT)
        assert project is not None
        original, project.period_end = project.period_end, (enclave_today() + timedelta(days=3)).isoformat()
    try:
        page = open_lab(browser, lab)
        assert page.get_attribute("#enclave-workspace-strip", "data-warning") == "true"
        strip = page.inner_text("#enclave-workspace-strip")
        assert "3 days left" in strip and "剩余 3 天" in strip and "即将结束" in strip, strip
        save_screenshot(page, ARTEFACTS, "5-strip-warning")
        violations = _ours(accessibility_violations(page))
        assert not violations, describe(violations)
        page.close()
    finally:
        with lab.stack.env.session() as session:
            project = session.get(Project, PROJECT)
            assert project is not None
            project.period_end = original


def test_a_cookie_request_without_the_xsrf_token_is_refused(browser: Any, lab: Lab) -> None:
    page = open_lab(browser, lab)
    before = lab.bobs_requests()
    statuses = page.evaluate(
        """async () => {
            const body = JSON.stringify({path: 'results/table1.csv', justification: 'x'});
            const bare = await fetch('/enclave/exports', {method: 'POST', body, credentials: 'same-origin'});
            return [bare.status];
        }"""
    )
    assert statuses == [403]
    assert lab.bobs_requests() == before
    page.close()


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("../../etc/passwd", 400, "export_path_outside_home"),
        ("results/../../../tmp/outside.csv", 400, "export_path_outside_home"),
        ("results/escape.csv", 403, "export_path_outside_home"),
        ("results/tmpdir/outside.csv", 403, "export_path_outside_home"),
        ("results/hidden-link.csv", 403, "export_file_hidden"),
        (".secret.csv", 403, "export_file_hidden"),
        ("results/folder", 400, "export_not_a_file"),
        ("results/missing.csv", 404, "export_file_not_found"),
        ("", 400, "export_path_invalid"),
    ],
)
def test_the_server_extension_reads_only_files_inside_the_workspace(
    lab: Lab, path: str, status: int, code: str
) -> None:
    before = lab.bobs_requests()
    got, body = lab.api("POST", "enclave/exports", {"path": path, "justification": "attack"})
    assert got == status, body
    assert body["errors"][0]["code"] == code and body["errors"][0]["message"]["zh"], body
    assert lab.bobs_requests() == before


def test_the_services_refusals_pass_through_and_lists_need_a_login(lab: Lab) -> None:
    got, body = lab.api("POST", "enclave/exports", {"path": CSV_PATH, "justification": " "})
    assert got == 400 and body["errors"][0]["code"] == "export_justification_missing", body
    got, body = lab.api(
        "POST", "enclave/exports", {"path": CSV_PATH, "justification": "x", "revises": "nope"}
    )
    assert got >= 400 and body["ok"] is False and body["errors"][0]["message"]["zh"], body  # the service's
    assert lab.status_without_login("enclave/exports") in (401, 403)
    status, listed = lab.api("GET", "enclave/exports")
    assert status == 200 and {"id", "state", "version", "files", "updated_at"} <= set(listed["requests"][0])
    assert [r["id"] for r in listed["requests"]] == lab.bobs_requests()
    status, facts = lab.api("GET", "enclave/workspace")
    assert status == 200 and facts["project"] == PROJECT and facts["access"] == "aggregate"
