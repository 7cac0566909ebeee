"""A reviewer works an export request through the review pages in real headless Chromium (issue 16
item 5): the queue and its filters, the request with the cell below k marked, a request for changes,
the revision opened from the queue and compared with the version it revises, the vote with the
committee rule and the approvals needed shown, the decision, the searchable history, and the same
pages in Chinese. Every page is saved as a screenshot under $ENCLAVE_TEST_ARTEFACTS
(export-review-journey/) and checked by axe-core for serious or critical accessibility faults."""

from __future__ import annotations

from typing import Any

from tests.export_review.factories import PROJECT, make_project
from tests.export_review.web.conftest import Stack
from tests.harness.browser import (
    accessibility_violations,
    browser,  # noqa: F401 (the Chromium fixture)
    describe,
    hub_login,
    save_screenshot,
)

GROUP = "export-review-journey"
OTHER_PROJECT = "onco-2026"  # the same committee: its request is in rev1's queue until filtered out
# Version 1 has a count of 3 below k=5; version 2 pools that row into a count of 8.
V1 = b"dx,n\nI10,25\nE11,3\nJ18,15\n"
V2 = b"dx,n\nI10,25\nE11-E14,8\nJ18,15\n"
MARKUP = '"><img src=x alt=x>'
CHANGES = "E11 is a count of 3, below k=5: pool it with the neighbouring codes"
# The service has no pseudonym key space to check against: approving needs a reason (a finding).
OVERRIDE = "Checked by hand: the table holds no pseudonyms"


def check_page(page: Any, name: str) -> None:
    """A screenshot of the page as a test artefact, and no serious accessibility fault on it."""
    path = save_screenshot(page, GROUP, name)
    assert path.stat().st_size > 0
    violations = accessibility_violations(page)
    assert not violations, f"{name} ({page.url}):\n{describe(violations)}"


def row(page: Any, section: str, request_id: str) -> Any:
    return page.locator(f"{section} tr.request-row[data-id='{request_id}']")


def vote(page: Any, choice: str, comment: str = "", override: str = "") -> None:
    """Cast ``choice`` on every file through the request page's vote form."""
    form = page.locator("#vote-form")
    if form.locator("select[name=choice]").count():
        form.locator("select[name=choice]").select_option(choice)
    else:
        form.locator(f"input[name=choice][value={choice}]").check()
    if comment:
        form.locator("textarea[name=comment]").fill(comment)
    if override:
        form.locator("textarea[name=override]").fill(override)
    form.locator("#cast-vote").click()


def test_a_reviewer_works_a_request_through_queue_comparison_and_vote(stack: Stack, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    make_project(stack.env, project_id=OTHER_PROJECT)
    other = stack.submit("bob", [("other.csv", b"dx,n\nI10,40\n")], project=OTHER_PROJECT)
    assert other.status == 201, other.body
    other_id = other.json()["request"]
    first = stack.submit("bob", [("table.csv", V1)], justification="Table 1 of the paper")
    assert first.status == 201, first.body
    v1 = first.json()["request"]

    # rev1 signs in at the root and lands on the queue, with both projects' requests in it.
    page = browser.new_page(locale="en-GB")
    page.set_default_timeout(15_000)
    hub_login(page, stack.service_url, "rev1")
    page.wait_for_url(f"{stack.service_url}review**")
    assert row(page, "#queue", v1).count() == 1 and row(page, "#queue", other_id).count() == 1
    check_page(page, "01-queue")

    # Filtered by project, the other project's request leaves the queue.
    page.select_option("#filters select[name=project]", PROJECT)
    page.click("#filters [type=submit]")
    page.wait_for_url(f"**project={PROJECT}**")
    assert row(page, "#queue", other_id).count() == 0
    assert row(page, "#queue", v1).count() == 1
    check_page(page, "02-queue-filtered")

    # The request: the count below k is marked in the preview; rev1 asks for changes.
    row(page, "#queue", v1).locator("a").first.click()
    page.wait_for_url(f"**requests/{v1}**")
    assert page.get_attribute("#state", "data-state") == "in_review"
    below_k = page.locator("table.preview-table td.below-k")
    assert below_k.count() == 1 and below_k.inner_text().split()[0] == "3", below_k.all_inner_texts()
    check_page(page, "03-request-v1")
    vote(page, "changes", CHANGES)
    page.wait_for_selector("#state[data-state=changes_requested]")
    assert CHANGES in page.inner_text("body")
    check_page(page, "04-request-v1-changes-requested")

    # bob revises version 1; the revision waits in rev1's queue, version 1 has left it.
    second = stack.submit(
        "bob", [("table.csv", V2)], revises=v1, justification="Table 1, E11 pooled with E12-E14"
    )
    assert second.status == 201, second.body
    v2 = second.json()["request"]
    page.click("#nav-review")
    page.wait_for_url(f"{stack.service_url}review**")
    assert row(page, "#queue", v2).count() == 1 and row(page, "#queue", v1).count() == 0
    row(page, "#queue", v2).locator("a").first.click()
    page.wait_for_url(f"**requests/{v2}**")

    # The comparison with version 1 shows the cell that changed.
    page.click("a#compare-link")
    page.wait_for_url(f"**requests/{v2}/compare**")
    comparison = page.locator("#comparison")
    assert comparison.locator(".compare-left").count() and comparison.locator(".compare-right").count()
    changed = " ".join(comparison.locator("td.changed").all_inner_texts())
    assert "8" in changed and "E11-E14" in changed, changed
    assert "I10" not in changed  # an unchanged row is not marked
    check_page(page, "05-compare")

    # rev1 approves with the committee rule and the approvals needed in view.
    page.go_back()
    page.wait_for_selector("#vote-form")
    assert page.locator("#committee-rule").inner_text().strip()
    assert "3" in page.locator("#approvals-needed").inner_text()
    check_page(page, "06-vote-form")
    vote(page, "approve", override=OVERRIDE)
    page.wait_for_url(f"**requests/{v2}**")
    assert page.locator("#vote-form").count() == 0  # voted on every file: no form left
    assert page.get_attribute("#state", "data-state") == "in_review"
    check_page(page, "07-vote-cast")

    for reviewer in ("rev2", "rev3"):
        voted = stack.vote(reviewer, v2, choice="approve", override=OVERRIDE)
        assert voted.status == 200, voted.body
    page.reload()
    assert page.get_attribute("#state", "data-state") == "approved"
    assert "rev3" in page.inner_text("table.votes")  # the votes are shown once decided
    check_page(page, "08-vote-result")

    # The history finds the approved revision by its justification, and nothing else.
    page.click("#nav-review")
    page.wait_for_url(f"{stack.service_url}review**")
    page.fill("#filters input[name=q]", "pooled")
    page.click("#filters [type=submit]")
    page.wait_for_url("**q=pooled**")
    assert row(page, "#history", v2).count() == 1
    assert row(page, "#history", v2).get_attribute("data-state") == "approved"
    assert row(page, "#history", v1).count() == 0  # decided too, but its justification does not match
    assert page.locator("#history tr.request-row").count() == 1
    check_page(page, "09-history")
    page.goto(f"{stack.service_url}review?q={v1}")
    assert row(page, "#history", v1).get_attribute("data-state") == "changes_requested"
    # A search for markup comes back as the search box's text, never as markup in the page.
    page.fill("#filters input[name=q]", MARKUP)
    page.click("#filters [type=submit]")
    page.wait_for_url("**q=**")
    assert page.input_value("#filters input[name=q]") == MARKUP
    assert page.locator("main img").count() == 0
    assert page.locator("#history tr.request-row").count() == 0

    # The same pages in Chinese.
    page.goto(f"{stack.service_url}review?lang=zh")
    assert page.get_attribute("html", "lang") == "zh-CN"
    body = page.inner_text("body")
    for label in ("审核队列", "项目", "申请人", "状态"):
        assert label in body, label
    check_page(page, "10-queue-zh")
    page.goto(f"{stack.service_url}requests/{v2}?lang=zh")
    body = page.inner_text("body")
    for label in ("申请人", "投票", "已批准", "检查结果"):
        assert label in body, label
    check_page(page, "11-request-zh")
    page.goto(f"{stack.service_url}requests/{v2}/compare?lang=zh")
    assert page.get_attribute("html", "lang") == "zh-CN"
    body = page.inner_text("#comparison")
    for label in ("版本", "理由", "要求修改", "已批准"):
        assert label in body, label
    check_page(page, "12-compare-zh")
    page.close()
