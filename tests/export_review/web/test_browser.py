"""A reviewer approves a request end to end in real headless Chromium (Debian's, not a downloaded one):
hub login, the queue, the request with its findings and table preview, a signed vote, release."""

from __future__ import annotations

from tests.export_review.web.conftest import Stack
from tests.harness.browser import browser, hub_login, save_screenshot  # noqa: F401 (the Chromium fixture)

# A cell below k=5 (a finding that needs an override) and markup that must arrive as text.
CSV = b"dx,n\nI10,25\nE11,3\n<b>J18</b>,15\n"


def test_reviewer_approves_in_the_browser(stack: Stack, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    submitted = stack.submit("bob", [("table.csv", CSV)])
    assert submitted.status == 201, submitted.body
    request_id = submitted.json()["request"]

    page = browser.new_page()
    hub_login(page, stack.service_url, "rev1")
    assert page.inner_text("#who") == "rev1"
    page.click("#nav-review")
    page.click(f"#queue a:text('{request_id}')")
    assert page.inner_text("#state") == "in review"
    findings = page.inner_text("table.findings")
    assert "small_cell" in findings and "below k=5" in findings
    preview = page.inner_text("table.preview-table")
    assert "E11" in preview and "<b>J18</b>" in preview  # shown as text, never as markup
    assert page.locator("table.preview-table b").count() == 0
    page.fill("textarea[name=override]", "Three is the published national figure")
    page.click("#cast-vote")
    page.wait_for_selector("table.votes")
    assert page.locator("#vote-form").count() == 0  # voted on every file: no form left
    assert "rev1" in page.inner_text("table.votes")
    save_screenshot(page, "export-review", "browser-request-voted")

    for reviewer in ("rev2", "rev3"):
        voted = stack.vote(reviewer, request_id, choice="approve", override="published figure")
        assert voted.status == 200, voted.body
    page.reload()
    assert page.get_attribute("#state", "data-state") == "approved"
    assert "rev3" in page.inner_text("table.votes")  # votes are visible once decided
    page.click("#release")
    page.wait_for_selector("#state[data-state=released]")

    page.goto(f"{stack.service_url}requests/{request_id}?lang=zh")
    body = page.inner_text("body")
    for label in ("检查结果", "投票", "已发布", "审核队列", "申请人"):
        assert label in body, label
    page.close()


def test_requester_cannot_vote_in_the_browser(stack: Stack, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    submitted = stack.submit("bob", [("table.csv", CSV)])
    request_id = submitted.json()["request"]
    page = browser.new_page()
    hub_login(page, stack.service_url, "bob")
    page.goto(f"{stack.service_url}requests/{request_id}")
    assert page.locator("#vote-form").count() == 0
    assert page.locator("table.preview-table").count() == 0  # previews are for reviewers
    # Forging the form POST without the xsrf token does not authenticate.
    answer = page.request.post(f"{stack.service_url}requests/{request_id}/vote", form={"choice": "approve"})
    assert answer.status in (401, 403)
    image = page.request.get(f"{stack.service_url}requests/{request_id}/images/table.csv")
    assert image.status == 403
    assert stack.api("GET", f"requests/{request_id}", "bob").json()["request"]["votes"] == []
    page.close()
