"""The console's pages and actions against a real hub: who may open what, the one error mapping
(bilingual), xsrf on every cookie-authenticated POST, and each audience's page calling its domain
module; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import socket

import pytest

from enclave import agreements
from enclave.console.handlers.base import CSP
from tests.console.conftest import (
    COMMITTEE,
    DUA_PDF,
    ETHICS_PDF,
    SERVICE_PREFIX,
    ConsoleStack,
    advance,
    form_fields,
    period,
    xsrf_of,
)
from tests.gateway.conftest import http
from tests.raw_http import read_response
from tests.test_routes_default_deny import methods, routes, sample_path


def codes(response) -> list[str]:  # type: ignore[no-untyped-def]
    """The error codes a page shows (the error, then its reasons); each in both languages."""
    text = response.body.decode()
    found = re.findall(r'<code class="error-code">([a-z0-9_]+)</code>', text)
    assert found, text[:2000]
    assert len(re.findall(r'<span (?:class="muted" )?lang="en">', text)) == len(found), text[:2000]
    assert len(re.findall(r'<span (?:class="muted" )?lang="zh-CN">', text)) == len(found), text[:2000]
    return found


def api_codes(response) -> list[str]:  # type: ignore[no-untyped-def]
    body = response.json()
    assert body["ok"] is False and body["status"] == response.status, body
    for error in body["errors"]:
        assert error["message"]["en"] and error["message"]["zh"], error
    return [e["code"] for e in body["errors"]]


def app_id_from(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status == 303, response.body[:3000]
    return response.headers["location"].rstrip("/").split("/")[-1]


def state_of(stack: ConsoleStack, app_id: str) -> str:
    from enclave.applications import service

    with stack.session() as session:
        return service.get(session, app_id).state


# ---- who may open what ------------------------------------------------------------------------------


def test_without_login_pages_redirect_to_the_hub_and_the_api_says_401(stack: ConsoleStack) -> None:
    page = stack.get("office", None)
    assert page.status == 302 and "/hub/" in page.headers["location"], page.headers
    me = stack.get("api/me", None)
    assert me.status == 401 and api_codes(me) == ["login_required"]
    forged = stack.request("GET", "api/me", None)
    assert forged.status == 401
    # A POST without a login is refused before anything is parsed; an upload before its body is read.
    assert stack.post(f"applications/{'app-' + '0' * 16}/submit", None).status == 403
    upload = stack.post("applications/new", None, form_fields(), [("attachment.other", "x.pdf", b"x")])
    assert upload.status == 401 and codes(upload) == ["login_required"]


def test_the_roles_decide_the_navigation(stack: ConsoleStack) -> None:
    pages = {
        user: stack.get("api/me", user).json()["pages"]
        for user in ("pia", "oscar", "cm1", "stella", "audrey")
    }
    assert pages["pia"] == ["", "applications/new"]
    assert "office" in pages["oscar"] and "committee" not in pages["oscar"]
    assert "committee" in pages["cm1"] and "steward" not in pages["cm1"]
    assert {"steward", "projects", "monitoring"} <= set(pages["stella"]) and "audit" not in pages["stella"]
    assert "audit" in pages["audrey"] and "projects" not in pages["audrey"]
    home = stack.get("", "stella").body.decode()
    assert 'id="nav-steward"' in home and 'id="nav-audit"' not in home and 'id="nav-office"' not in home


@pytest.mark.parametrize(
    ("path", "user"),
    [
        ("office", "pia"),
        ("committee", "oscar"),
        ("steward", "cm1"),
        ("projects", "oscar"),
        ("monitoring", "audrey"),
        ("audit", "stella"),
    ],
)
def test_a_page_for_another_role_is_403_in_both_languages(stack: ConsoleStack, path: str, user: str) -> None:
    page = stack.get(path, user)
    assert page.status == 403 and codes(page) == ["role_required"]
    zh = stack.get(f"{path}?lang=zh", user).body.decode()
    assert "无法完成该请求" in zh and '<html lang="zh-CN">' in zh


def test_pages_of_one_application_are_refused_to_strangers_and_other_roles(stack: ConsoleStack) -> None:
    app_id = advance(stack, "committee_review")
    assert codes(stack.get(f"applications/{app_id}", "carol")) == ["application_not_visible"]
    assert stack.get(f"applications/{app_id}", "carol").status == 403
    assert codes(stack.get(f"office/{app_id}", "cm1")) == ["role_required"]
    assert codes(stack.get(f"committee/{app_id}", "oscar")) == ["role_required"]
    assert codes(stack.get(f"steward/{app_id}", "pia")) == ["role_required"]
    # An unknown application is the domain's 404; a malformed id is no route at all.
    assert codes(stack.get(f"applications/app-{'0' * 16}", "pia")) == ["application_not_found"]
    unknown = stack.get("applications/app-NOT-AN-ID", "pia")
    assert unknown.status == 404 and codes(unknown) == ["http_404"]


def test_actions_for_another_role_are_refused_by_the_domain(stack: ConsoleStack) -> None:
    app_id = advance(stack, "committee_review")
    vote = stack.post(f"committee/{app_id}/vote", "stella", [("choice", "approve")])
    assert vote.status == 403 and codes(vote) == ["role_required"]
    own = stack.post(f"committee/{app_id}/vote", "bob", [("choice", "approve")])  # on the team
    assert own.status == 403 and codes(own) == ["application_self_vote"]
    review = stack.post(f"office/{app_id}/review", "cm1", [("outcome", "forward")])
    assert review.status == 403 and codes(review) == ["role_required"]
    lifecycle = stack.post("projects/nope-1/suspend", "pia", [("reason", "x")])
    assert lifecycle.status == 403 and codes(lifecycle) == ["role_required"]
    unlock = stack.post("monitoring/unlock", "pia", [("project", "p"), ("user", "bob")])
    assert unlock.status == 403 and codes(unlock) == ["role_required"]


# ---- xsrf -------------------------------------------------------------------------------------------


def test_a_cookie_post_needs_the_xsrf_token(stack: ConsoleStack) -> None:
    app_id = advance(stack, "draft")
    browser = stack.browser("pia")
    page = browser.get(f"applications/{app_id}")
    assert page.status == 200 and 'name="_xsrf"' in page.body.decode()
    forged = browser.post(f"applications/{app_id}/withdraw", [])
    assert forged.status == 403 and state_of(stack, app_id) == "draft"
    wrong = browser.post(f"applications/{app_id}/withdraw", [("_xsrf", "2|00000000|" + "0" * 32 + "|1")])
    assert wrong.status == 403 and state_of(stack, app_id) == "draft"
    # An upload's xsrf token is read from its streamed body, then checked as any other.
    upload = browser.post("applications/new", form_fields(), [("attachment.other", "x.pdf", ETHICS_PDF)])
    assert upload.status == 401 and codes(upload) == ["login_required"]
    done = browser.post(f"applications/{app_id}/withdraw", [("_xsrf", xsrf_of(page.body))])
    assert done.status == 303 and state_of(stack, app_id) == "withdrawn"


# ---- wrong state: the domain's error -------------------------------------------------------------------


def test_a_post_in_the_wrong_state_shows_the_domains_error(stack: ConsoleStack) -> None:
    app_id = advance(stack, "office_review")
    again = stack.post(f"applications/{app_id}/submit", "pia")
    assert again.status == 403 and codes(again) == ["application_state_invalid"]
    vote = stack.post(f"committee/{app_id}/vote", "cm1", [("choice", "approve")])
    assert vote.status == 403 and codes(vote) == ["application_state_invalid"]
    dua = stack.post(f"applications/{app_id}/dua/sign", "pia", [("start", period()[0]), ("end", period()[1])])
    assert dua.status == 403 and codes(dua) == ["application_not_approved"]
    provision = stack.post(f"steward/{app_id}/provision", "stella", [("project_id", "too-early")])
    assert provision.status == 403 and codes(provision) == ["application_not_approved"]
    attach = stack.post(
        f"applications/{app_id}/attachments", "pia", [], [("attachment.other", "x.pdf", ETHICS_PDF)]
    )
    assert attach.status == 403 and codes(attach) == ["application_locked"]
    approved = advance(stack, "approved")
    no_dua = stack.post(f"steward/{approved}/provision", "stella", [("project_id", "no-dua-yet")])
    assert no_dua.status == 403 and codes(no_dua) == ["dua_missing"]


# ---- applicants ---------------------------------------------------------------------------------------


def test_filing_an_application_through_the_form(stack: ConsoleStack) -> None:
    form = stack.get("applications/new", "pia").body.decode()
    for column in (
        'value="age"',
        'value="visit_date"',
        'name="ds.patients.columns"',
        'name="attachment.ethics_approval"',
    ):
        assert column in form
    filed = stack.post(
        "applications/new", "pia", form_fields(), [("attachment.ethics_approval", "ethics.pdf", ETHICS_PDF)]
    )
    app_id = app_id_from(filed)
    page = stack.get(f"applications/{app_id}", "pia").body.decode()
    assert 'data-state="draft"' in page and "ethics.pdf" in page
    assert 'id="missing-attachments"' in page  # the consent waiver is still missing
    # Submitting without it is the domain's refusal, shown on the page; the draft stays.
    refused = stack.post(f"applications/{app_id}/submit", "pia")
    assert refused.status == 400 and codes(refused) == ["application_incomplete", "attachment_missing"]
    assert state_of(stack, app_id) == "draft"
    added = stack.post(
        f"applications/{app_id}/attachments", "pia", [], [("attachment.consent_waiver", "w.pdf", ETHICS_PDF)]
    )
    assert added.status == 303
    assert stack.post(f"applications/{app_id}/submit", "pia").status == 303
    assert state_of(stack, app_id) == "office_review"
    mine = stack.get("", "pia").body.decode()
    assert app_id in mine and 'data-state="office_review"' in mine
    assert app_id not in stack.get("", "carol").body.decode()


def test_save_and_submit_in_one_step(stack: ConsoleStack) -> None:
    files = [
        ("attachment.ethics_approval", "ethics.pdf", ETHICS_PDF),
        ("attachment.consent_waiver", "waiver.pdf", ETHICS_PDF),
    ]
    filed = stack.post("applications/new", "pia", form_fields(action="submit"), files)
    assert state_of(stack, app_id_from(filed)) == "office_review"


def test_a_refused_form_is_shown_again_as_typed(stack: ConsoleStack) -> None:
    from enclave.applications import service

    with stack.session() as session:
        before = len(service.list_applications(session, viewer="pia"))
    profit = stack.post(
        "applications/new", "pia", form_fields(purpose_category="commercial", title="Sell <it>")
    )
    assert profit.status == 400 and codes(profit) == ["application_form_invalid", "purpose_not_allowed"]
    page = profit.body.decode()
    assert 'value="Sell &lt;it&gt;"' in page and 'id="application-form"' in page  # typed, escaped
    direct = stack.post("applications/new", "pia", form_fields(**{"ds.patients.columns": ["pid", "name"]}))
    assert direct.status == 400 and codes(direct) == ["application_catalog_mismatch", "column_direct_id"]
    not_pi = stack.post("applications/new", "bob", form_fields())
    assert not_pi.status == 400 and codes(not_pi) == ["applicant_not_pi"]
    with stack.session() as session:
        assert len(service.list_applications(session, viewer="pia")) == before


def test_editing_a_draft_and_not_someone_elses(stack: ConsoleStack) -> None:
    app_id = advance(stack, "draft")
    edit = stack.get(f"applications/{app_id}/edit", "pia").body.decode()
    assert 'value="Hypertension outcomes"' in edit and 'value="bob"' in edit
    changed = stack.post(f"applications/{app_id}/edit", "pia", form_fields(title="Hypertension, revised"))
    assert changed.status == 303
    assert "Hypertension, revised" in stack.get(f"applications/{app_id}", "pia").body.decode()
    other = stack.post(f"applications/{app_id}/edit", "bob", form_fields(applicant="pia", title="mine now"))
    assert other.status == 403 and codes(other) == ["application_not_applicant"]


def test_attachments_download_to_those_who_may_see_them(stack: ConsoleStack) -> None:
    app_id = advance(stack, "draft")
    page = stack.get(f"applications/{app_id}", "pia").body.decode()
    link = re.search(r'href="' + SERVICE_PREFIX + r'(applications/[^"]+/attachments/[0-9a-f]{64})"', page)
    assert link, page
    got = stack.get(link.group(1), "pia")
    assert got.status == 200 and got.body == ETHICS_PDF
    assert got.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in got.headers["content-security-policy"]
    assert stack.get(link.group(1), "oscar").status == 200  # the Office sees every application
    assert codes(stack.get(link.group(1), "carol")) == ["application_not_visible"]
    assert codes(stack.get(link.group(1)[:-64] + "0" * 64, "pia")) == ["attachment_not_found"]


# ---- the Office -----------------------------------------------------------------------------------------


def test_the_office_pre_reviews_with_history_checklist_and_scorecard(stack: ConsoleStack) -> None:
    from enclave.applications import office

    earlier = advance(stack, "office_review")
    app_id = advance(stack, "office_review")
    queue = stack.get("office", "oscar").body.decode()
    assert app_id in queue and earlier in queue
    page = stack.get(f"office/{app_id}", "oscar").body.decode()
    assert 'id="overlap-flag"' in page and earlier in page  # the same datasets asked for again (R-APP-5)
    for item in office.CHECKLIST:
        assert f'name="check.{item}"' in page
    for dimension in office.SCORECARD:
        assert f'name="score.{dimension}"' in page
    half = [("outcome", "forward"), ("check.legality", "yes"), ("score.data_value", "4")]
    refused = stack.post(f"office/{app_id}/review", "oscar", half)
    assert refused.status == 400 and codes(refused)[0] == "checklist_incomplete"
    assert set(codes(refused)[1:]) == {"checklist_item_unticked"} and len(codes(refused)) == len(
        office.CHECKLIST
    )
    bare_return = stack.post(f"office/{app_id}/review", "oscar", [("outcome", "return")])
    assert bare_return.status == 400 and codes(bare_return) == ["comment_required"]
    full = [("outcome", "forward"), ("comment", "complete")]
    full += [(f"check.{item}", "yes") for item in office.CHECKLIST]
    full += [(f"score.{dimension}", "4") for dimension in office.SCORECARD]
    assert stack.post(f"office/{app_id}/review", "oscar", full).status == 303
    assert state_of(stack, app_id) == "committee_review"
    assert app_id not in stack.get("office", "oscar").body.decode()
    history = stack.get(f"applications/{app_id}", "pia").body.decode()
    assert "complete" in history and 'class="review"' in history


def test_returning_an_application_lets_the_applicant_edit_it(stack: ConsoleStack) -> None:
    app_id = advance(stack, "office_review")
    returned = stack.post(
        f"office/{app_id}/review", "oscar", [("outcome", "return"), ("comment", "Fewer columns")]
    )
    assert returned.status == 303 and state_of(stack, app_id) == "returned"
    page = stack.get(f"applications/{app_id}", "pia").body.decode()
    assert 'id="edit"' in page and 'id="submit"' in page and "Fewer columns" in page


# ---- the Committee ---------------------------------------------------------------------------------------


def test_the_committee_votes_and_countersigns(stack: ConsoleStack) -> None:
    app_id = advance(stack, "committee_review")
    assert app_id in stack.get("committee", "cm1").body.decode()
    page = stack.get(f"committee/{app_id}", "cm1").body.decode()
    assert 'id="rule"' in page and "2/3" in page
    assert re.search(r'id="needed">3<', page) and re.search(r'id="still-needed">3<', page)
    # Approve first, countersign later: the approval counts only once countersigned (R-APP-7).
    assert stack.post(f"committee/{app_id}/vote", "cm1", [("choice", "approve")]).status == 303
    page = stack.get(f"committee/{app_id}", "cm1").body.decode()
    assert 'id="countersign-form"' in page and re.search(r'id="still-needed">3<', page)
    again = stack.post(f"committee/{app_id}/vote", "cm1", [("choice", "reject")])
    assert again.status == 403 and codes(again) == ["application_already_voted"]
    # Blind review: nobody else sees cm1's vote until every seated member has voted.
    assert stack.get(f"committee/{app_id}", "cm1").body.decode().count('<tr class="vote">') == 1
    for reader, path in (("cm2", "committee/"), ("oscar", "office/"), ("pia", "applications/")):
        assert '<tr class="vote">' not in stack.get(path + app_id, reader).body.decode(), reader
    assert stack.post(f"committee/{app_id}/countersign", "cm1").status == 303
    assert re.search(r'id="still-needed">2<', stack.get(f"committee/{app_id}", "cm1").body.decode())
    for member in COMMITTEE[1:]:
        voted = stack.post(
            f"committee/{app_id}/vote", member, [("choice", "approve"), ("countersign", "yes")]
        )
        assert voted.status == 303
    assert state_of(stack, app_id) == "approved"
    assert 'data-state="approved"' in stack.get(f"applications/{app_id}", "pia").body.decode()


def test_one_rejection_of_three_decides_and_closes_the_vote(stack: ConsoleStack) -> None:
    app_id = advance(stack, "committee_review")
    rejected = stack.post(f"committee/{app_id}/vote", "cm2", [("choice", "reject"), ("comment", "no")])
    assert rejected.status == 303
    # More than 2/3 of three members can no longer approve: rejected, and nobody votes any more.
    assert state_of(stack, app_id) == "rejected"
    late = stack.post(f"committee/{app_id}/vote", "cm1", [("choice", "approve"), ("countersign", "yes")])
    assert late.status == 403 and codes(late) == ["application_state_invalid"]
    countersign = stack.post(f"committee/{app_id}/countersign", "cm2")
    assert countersign.status == 403 and codes(countersign) == ["application_state_invalid"]
    page = stack.get(f"committee/{app_id}", "cm1").body.decode()
    assert 'id="vote-form"' not in page and 'data-state="rejected"' in page


# ---- stewards -------------------------------------------------------------------------------------------


def test_the_pi_signs_the_dua_on_their_application_page(stack: ConsoleStack) -> None:
    app_id = advance(stack, "approved")
    page = stack.get(f"applications/{app_id}", "pia").body.decode()
    assert 'id="sign-dua"' in page and "re-identify" in page
    assert 'id="sign-dua"' not in stack.get(f"applications/{app_id}", "bob").body.decode()
    start, end = period()
    not_pi = stack.post(f"applications/{app_id}/dua/sign", "bob", [("start", start), ("end", end)])
    assert not_pi.status == 403 and codes(not_pi) == ["role_required"]
    bad_date = stack.post(f"applications/{app_id}/dua/sign", "pia", [("start", "soon"), ("end", end)])
    assert bad_date.status == 400 and codes(bad_date) == ["date_invalid"]
    assert (
        stack.post(f"applications/{app_id}/dua/sign", "pia", [("start", start), ("end", end)]).status == 303
    )
    page = stack.get(f"applications/{app_id}", "pia").body.decode()
    assert 'id="sign-dua"' not in page and 'id="dua-download"' in page
    statement = stack.get(f"applications/{app_id}/dua", "pia")
    assert statement.status == 200 and json.loads(statement.body)["signer"] == "pia"


def test_a_steward_records_the_pdf_and_provisions_a_narrowed_project(stack: ConsoleStack) -> None:
    from enclave import projects

    app_id = advance(stack, "approved")
    assert app_id in stack.get("steward", "stella").body.decode()
    page = stack.get(f"steward/{app_id}", "stella").body.decode()
    assert 'id="dua-form"' in page and 'id="provision-form"' in page
    start, end = period()
    fields = [("signer", "pia"), ("start", start), ("end", end)]
    not_pdf = stack.post(f"steward/{app_id}/dua", "stella", fields, [("pdf", "dua.pdf", b"not a pdf")])
    assert not_pdf.status == 400 and codes(not_pdf) == ["dua_invalid"]
    recorded = stack.post(f"steward/{app_id}/dua", "stella", fields, [("pdf", "dua.pdf", DUA_PDF)])
    assert recorded.status == 303
    assert 'id="dua-current"' in stack.get(f"steward/{app_id}", "stella").body.decode()
    # Asking for a column the committee did not approve is refused: the console only narrows.
    wider = [("project_id", "wider-1"), ("narrowing", "yes")]
    wider += [("ds.patients.columns", "pid"), ("ds.patients.columns", "income")]
    wider += [("ds.visits.columns", "pid"), ("analysts", "pia"), ("analysts", "bob")]
    refused = stack.post(f"steward/{app_id}/provision", "stella", wider)
    assert refused.status == 403 and codes(refused) == ["application_widened", "columns_not_approved"]
    narrow = [("project_id", "narrow-1"), ("narrowing", "yes")]
    narrow += [("ds.patients.columns", "pid"), ("ds.patients.columns", "age")]
    narrow += [("ds.visits.columns", "pid"), ("ds.visits.columns", "cost"), ("analysts", "pia")]
    assert stack.post(f"steward/{app_id}/provision", "stella", narrow).status == 303
    with stack.session() as session:
        project = projects.get(session, "narrow-1")
        spec = projects.current_spec(session, "narrow-1")
        assert project.application_id == app_id
        assert spec.datasets == {"patients": ["pid", "age"], "visits": ["pid", "cost"]}
        assert spec.analysts == ["pia"]
    assert app_id not in stack.get("steward", "stella").body.decode()
    assert "narrow-1" in stack.get(f"applications/{app_id}", "pia").body.decode()


def test_a_team_member_who_is_a_steward_cannot_provision_their_own(stack: ConsoleStack) -> None:
    from enclave import roles
    from enclave.roles import Role

    with stack.session() as session:
        roles.grant(session, "bob", Role.STEWARD, actor="test")
    try:
        app_id = advance(stack, "dua")
        own = stack.post(f"steward/{app_id}/provision", "bob", [("project_id", "own-1")])
        assert own.status == 403 and codes(own) == ["own_application"]
    finally:
        with stack.session() as session:
            roles.revoke(session, "bob", Role.STEWARD, actor="test")


def test_the_project_lifecycle_from_the_console(stack: ConsoleStack) -> None:
    app_id = advance(stack, "dua")
    assert stack.post(f"steward/{app_id}/provision", "stella", [("project_id", "life-1")]).status == 303
    page = stack.get("projects", "stella").body.decode()
    assert 'data-project="life-1"' in page and 'data-step="suspend"' in page
    no_reason = stack.post("projects/life-1/suspend", "stella", [("reason", "")])
    assert no_reason.status == 400 and codes(no_reason) == ["reason_required"]
    assert stack.post("projects/life-1/suspend", "stella", [("reason", "incident 7")]).status == 303
    resume_twice = stack.post("projects/life-1/expire", "stella", [("reason", "")])
    assert resume_twice.status == 303
    refused = stack.post("projects/life-1/resume", "stella", [("reason", "back")])
    assert refused.status == 403 and codes(refused) == ["project_state_invalid"]
    assert codes(stack.get("projects/life-1/certificate", "stella")) == ["certificate_not_found"]
    destroyed = stack.post("projects/life-1/destroy", "stella")
    assert destroyed.status == 303 and destroyed.headers["location"].endswith("projects/life-1/certificate")
    shown = stack.get("projects/life-1/certificate", "stella").body.decode()
    assert "life-1" in shown and "signature" in shown
    download = stack.get("projects/life-1/certificate?download=1", "stella")
    assert download.status == 200 and json.loads(download.body)["project"] == "life-1"
    assert codes(stack.get("projects/life-1/certificate", "pia")) == ["role_required"]


def test_monitoring_shows_alerts_and_locks_and_a_steward_unlocks(stack: ConsoleStack) -> None:
    from enclave import audit, user_locks
    from enclave.audit import AuditAction

    app_id = advance(stack, "dua")
    assert stack.post(f"steward/{app_id}/provision", "stella", [("project_id", "watch-1")]).status == 303
    with stack.session() as session:
        audit.record(
            session,
            AuditAction.QUERY_ALERT,
            actor="monitor",
            obj="user:bob",
            project="watch-1",
            outcome="alert",
            details={"rule": "query_rate", "observed": 99, "threshold": 60, "user": "bob"},
        )
        user_locks.lock_user(session, "watch-1", "bob", reason="3 monitoring alerts", actor="monitor")
    page = stack.get("monitoring", "stella").body.decode()
    assert "query_rate" in page and "3 monitoring alerts" in page
    assert stack.post("monitoring/unlock", "stella", [("project", "watch-1"), ("user", "bob")]).status == 303
    with stack.session() as session:
        assert not user_locks.user_is_locked(session, "watch-1", "bob")
    again = stack.post("monitoring/unlock", "stella", [("project", "watch-1"), ("user", "bob")])
    assert again.status == 404 and codes(again) == ["lock_not_found"]


# ---- auditors -------------------------------------------------------------------------------------------


def test_the_auditor_searches_and_downloads_csv_and_every_search_is_audited(stack: ConsoleStack) -> None:
    from enclave import audit_search

    app_id = advance(stack, "office_review")
    page = stack.get(f"audit?action=application.&text={app_id}", "audrey")
    assert page.status == 200 and "application.submit" in page.body.decode()
    csv = stack.get(f"audit.csv?action=application.submit&text={app_id}", "audrey")
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.body.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("seq,ts,actor,action") and len(lines) == 2 and app_id in lines[1]
    bad = stack.get("audit?since=yesterday", "audrey")
    assert bad.status == 400 and codes(bad) == ["audit_filter_invalid"]
    assert stack.get("audit", "stella").status == 403
    with stack.session() as session:
        searches = audit_search.search(session, action="audit.search", limit=50)
    assert any(r["actor"] == "audrey" and r["outcome"] == "success" for r in searches)
    assert any(r["actor"] == "stella" and r["outcome"] == "refused" for r in searches)


# ---- the service itself ----------------------------------------------------------------------------------


def test_headers_stylesheet_and_languages(stack: ConsoleStack) -> None:
    page = stack.get("", "pia")
    assert page.headers["content-security-policy"] == CSP and "unsafe-inline" not in CSP
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert 'style="' not in page.body.decode() and "<script" not in page.body.decode()
    css = re.search(r'href="(/services/console/static/console\.css[^"]*)"', page.body.decode())
    assert css and stack.request("GET", css.group(1)[len(SERVICE_PREFIX) :], None).status == 200
    zh = stack.get("applications/new?lang=zh", "pia").body.decode()
    for label in ("新建数据使用申请", "数据集与字段", "伦理审查批件", "保存并提交"):
        assert label in zh, label
    accept = stack.request("GET", "", "pia")
    assert "我的申请" not in accept.body.decode()


def test_an_upload_larger_than_the_cap_is_refused_before_its_body(stack: ConsoleStack) -> None:
    host, port = stack.service.app.ip, stack.service.app.bound_port
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(
            f"POST {SERVICE_PREFIX}applications/new HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: token {stack.tokens['pia']}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 999999999999\r\n\r\n".encode()
        )
        status, body = read_response(sock)
    assert status == 413 and b"body_too_large" in body


def test_what_one_application_holds_stays_with_it(stack: ConsoleStack) -> None:
    app_id = advance(stack, "draft")
    other = stack.post(
        "applications/new",
        "carol",
        form_fields("carol", title="<script>alert(1)</script>"),
        [("attachment.other", "carol.pdf", b"%PDF-1.4 carol's own\n")],
    )
    other_id = app_id_from(other)
    page = stack.get(f"applications/{other_id}", "carol").body.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    sha = re.search(r"/attachments/([0-9a-f]{64})", page).group(1)  # type: ignore[union-attr]
    # carol's file exists in the vault, but it is not pia's application's: not served through it.
    stolen = stack.get(f"applications/{app_id}/attachments/{sha}", "pia")
    assert stolen.status == 404 and codes(stolen) == ["attachment_not_found"]
    assert codes(stack.get(f"applications/{other_id}/attachments/{sha}", "pia")) == [
        "application_not_visible"
    ]
    assert codes(stack.get(f"applications/{app_id}/dua", "carol")) == ["application_not_visible"]
    assert codes(stack.get(f"applications/{app_id}/dua", "pia")) == ["dua_not_found"]


# ---- default deny on every route (as tests/test_routes_default_deny.py does for the other services) --

PUBLIC = {"StaticFileHandler": "the console's stylesheet: no data"}


def test_every_console_route_refuses_strangers(stack: ConsoleStack) -> None:
    app_id = advance(stack, "approved")
    status, answer = http(
        "POST",
        f"{stack.api_url}/users/bob/tokens",
        stack.admin_token,
        {"scopes": ["read:users:name!user=bob"], "note": "not for the console"},
    )
    assert status == 201, answer
    stack.tokens["bob-elsewhere"] = answer["token"]
    samples = {
        "(app-[0-9a-f]{16})": app_id,
        "([0-9a-f]{64})": "0" * 64,
        "([a-z0-9][a-z0-9-]{1,62})": "some-project",
        "(suspend|resume|expire|destroy)": "destroy",
        r"audit\.csv": "audit.csv",
        "(.*)": "console.css",
    }
    form, files = form_fields(), [("attachment.other", "x.pdf", ETHICS_PDF), ("pdf", "d.pdf", DUA_PDF)]
    tried = 0
    for pattern, handler in routes(stack.service.app.http_server.request_callback):
        if handler.__name__ in PUBLIC:
            continue
        path = sample_path(pattern, samples)[len(SERVICE_PREFIX) :]
        for method in methods(handler):
            for who in (None, "bob-elsewhere", "carol"):
                post = method == "POST"
                answer = stack.request(method, path, who, form if post else None, files if post else None)
                if answer.status in (301, 302, 303):  # a page sends an anonymous browser to the login
                    assert "/hub/" in answer.headers["location"], (path, method, who)
                elif answer.status == 200:  # a stranger's own pages: nothing of anyone else's
                    assert who == "carol" and "(" not in pattern and app_id not in answer.body.decode(), path
                else:
                    assert answer.status in (400, 401, 403, 404, 405), (path, method, who, answer.status)
                tried += 1
    assert tried >= 30 * 3
    assert state_of(stack, app_id) == "approved"  # nothing changed on the way
    with stack.session() as session:
        assert agreements.current_dua(session, app_id) is None
