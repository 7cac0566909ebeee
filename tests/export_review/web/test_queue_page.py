"""The export review's lists over HTTP (a real hub, the service behind its proxy): reviewers land on
their queue, the queue's filters (state, project, age, search), the history of decided requests, what
a non-member can find (nothing), and the layout's guarantees (one local stylesheet, no inline style,
no external URL, accessible landmarks and labels)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import update

from enclave.db.models import ExportRequest
from enclave.services.handlers import STYLESHEET_CSP
from export_review import history
from export_review.policy import SETTINGS_FILE
from export_review.web.handlers import queue
from export_review.web.i18n import LABELS
from export_review.workflow import ExportState
from tests.export_review.factories import GOOD_CSV, PROJECT, make_project, make_request
from tests.export_review.web.conftest import Response, Stack, call

TEMPLATES = Path(queue.__file__).parents[1] / "templates"
OTHER = "onco-2026"  # carol is its analyst; she belongs to no other project


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def get(stack: Stack, path: str, user: str | None, **query: str) -> Response:
    """A page as ``user`` sees it, redirects not followed."""
    url = f"{stack.service_url}{path}" + (f"?{urlencode(query)}" if query else "")
    request = urllib.request.Request(url)
    if user:
        request.add_header("Authorization", f"token {stack.tokens[user]}")
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as answer:
            return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


@dataclass
class Page(HTMLParser):
    """The rows of each section (``tr.request-row``), the options of each select, the links."""

    rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    options: dict[str, list[str]] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)
    labels_for: set[str] = field(default_factory=set)
    controls: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    stylesheets: list[str] = field(default_factory=list)
    html_lang: str = ""
    _section: str = ""
    _select: str = ""

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "html":
            self.html_lang = a.get("lang", "")
        if tag == "section":
            self._section = a.get("id", "")
        if tag == "tr" and "request-row" in a.get("class", "").split():
            self.rows.setdefault(self._section, []).append(a)
        if tag == "select":
            self._select = a.get("name", "")
            self.options[self._select] = []
        if tag == "option":
            self.options[self._select].append(a.get("value", ""))
        if tag == "label" and "for" in a:
            self.labels_for.add(a["for"])
        if tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            self.controls.append(a.get("id", "<no id>"))
        if tag == "a" and a.get("aria-current") == "page":
            self.current.append(a.get("id", ""))
        if tag == "link" and a.get("rel") == "stylesheet":
            self.stylesheets.append(a.get("href", ""))

    def ids_in(self, section: str) -> list[str]:
        return [row["data-id"] for row in self.rows.get(section, [])]


def parse(answer: Response) -> Page:
    page = Page()
    page.feed(answer.body.decode())
    return page


def review(stack: Stack, user: str, **query: str) -> tuple[Response, Page]:
    answer = get(stack, "review", user, **query)
    return answer, parse(answer)


@dataclass(frozen=True)
class Seeded:
    waiting: str  # in review, with a searchable file name and justification
    old: str  # in review, submitted ten days ago
    approved: str
    rejected: str
    released: str
    withdrawn: str
    changes: str
    other: str  # OTHER's, rejected


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Iterator[Seeded]:
    env = stack.env
    make_project(env, project_id=OTHER, committee=2, extra_members=[("carol", "analyst")])
    waiting = make_request(
        env,
        files={"Cohort_Summary.csv": GOOD_CSV},
        justification="Figure 3 of the LANCET paper",
    )
    old = make_request(env)
    with env.session() as s:
        ten_days = (datetime.now(UTC) - timedelta(days=10)).isoformat(timespec="microseconds")
        s.execute(update(ExportRequest).where(ExportRequest.id == old).values(created_at=ten_days))
    yield Seeded(
        waiting=waiting,
        old=old,
        approved=make_request(env, ExportState.APPROVED),
        rejected=make_request(env, ExportState.REJECTED),
        released=make_request(env, ExportState.RELEASED),
        withdrawn=make_request(env, ExportState.WITHDRAWN),
        changes=make_request(env, ExportState.CHANGES_REQUESTED),
        other=make_request(env, ExportState.REJECTED, project_id=OTHER, requester="carol"),
    )


# ---- landing ----------------------------------------------------------------------------------------


def test_a_reviewer_lands_on_the_queue_and_an_analyst_on_their_requests(stack: Stack, seeded: Seeded) -> None:
    landed = get(stack, "", "rev1")
    assert landed.status == 302 and landed.headers["location"].endswith("/services/enclave-export/review")
    chosen = get(stack, "", "rev1", lang="zh")
    assert chosen.status == 302 and chosen.headers["location"].endswith("review?lang=zh")
    for analyst in ("bob", "carol"):
        home = get(stack, "", analyst)
        assert home.status == 200, home.body
        page = parse(home)
        assert "mine" in page.ids and page.current == ["nav-mine"]
    mine = parse(get(stack, "mine", "bob"))
    assert seeded.waiting in mine.ids_in("") and seeded.other not in mine.ids_in("")
    assert mine.current == ["nav-mine"]
    # rev1 asks for "My requests" by its path and gets it, not the queue.
    assert get(stack, "mine", "rev1").status == 200


def test_reviewing_anything_is_the_domain_rule(stack: Stack, seeded: Seeded) -> None:
    with stack.env.session() as s:
        assert history.reviews_anything(s, "rev2", stewards=())
        assert not history.reviews_anything(s, "bob", stewards=())
        assert not history.reviews_anything(s, "carol", stewards=())
        assert history.reviews_anything(s, "someone", stewards=("someone",))  # a steward reviews all


# ---- the queue, the release queue and the history ------------------------------------------------------


def test_the_queue_lists_what_waits_and_the_history_what_was_decided(stack: Stack, seeded: Seeded) -> None:
    answer, page = review(stack, "rev1")
    assert answer.status == 200
    queue_ids = page.ids_in("queue")
    assert queue_ids.index(seeded.old) < queue_ids.index(seeded.waiting)  # oldest first
    assert page.ids_in("release-queue") == [seeded.approved]
    decided = set(page.ids_in("history"))
    assert {
        seeded.approved,
        seeded.rejected,
        seeded.released,
        seeded.withdrawn,
        seeded.changes,
        seeded.other,
    } <= decided
    assert seeded.waiting not in decided
    states = {row["data-id"]: row["data-state"] for row in page.rows["history"]}
    assert states[seeded.released] == "released" and states[seeded.withdrawn] == "withdrawn"
    assert all(row["data-project"] in (PROJECT, OTHER) for rows in page.rows.values() for row in rows)
    body = answer.body.decode()
    for text in ("Cohort_Summary.csv", "10 days", "the reviewers", "changes requested", "withdrawn"):
        assert text in body, text
    assert page.current == ["nav-review"]
    counts = dict(re.findall(r'data-count="([a-z]+)">(\d+)<', body))
    assert counts == {"queue": "2", "voted": "0", "release": "1", "history": str(len(page.ids_in("history")))}


def test_a_request_voted_on_waits_for_the_others_in_its_own_list(stack: Stack, seeded: Seeded) -> None:
    """Voting does not make a request vanish: it moves to "you voted, waiting for the others" until the
    committee decides, and no one else's list changes."""
    request_id = make_request(stack.env)
    assert stack.vote("rev1", request_id, choice="approve", override="checked by hand").status == 200
    assert stack.env.state(request_id) == "in_review"
    mine = review(stack, "rev1")[1]
    assert request_id in mine.ids_in("voted-queue") and request_id not in mine.ids_in("queue")
    assert request_id not in mine.ids_in("history")
    others = review(stack, "rev2")[1]
    assert request_id in others.ids_in("queue") and request_id not in others.ids_in("voted-queue")
    assert request_id in review(stack, "rev1", q=request_id)[1].ids_in("voted-queue")  # filters apply
    assert request_id not in review(stack, "rev1", q="no-such-thing")[1].ids_in("voted-queue")


def test_a_request_leaves_the_queue_for_the_history_when_decided(stack: Stack, seeded: Seeded) -> None:
    request_id = make_request(stack.env)
    assert request_id in review(stack, "rev2")[1].ids_in("queue")
    for reviewer in ("rev1", "rev2", "rev3"):
        if stack.env.state(request_id) == "in_review":  # the committee's rule decides when it can
            assert stack.vote(reviewer, request_id, choice="reject", comment="no").status == 200
    assert stack.env.state(request_id) == "rejected"
    page = review(stack, "rev2")[1]
    assert request_id not in page.ids_in("queue") and request_id in page.ids_in("history")
    assert request_id in review(stack, "rev2", q=request_id)[1].ids_in("history")


def test_filters_by_state_project_and_age(stack: Stack, seeded: Seeded) -> None:
    page = review(stack, "rev1", state="rejected")[1]
    assert set(page.ids_in("history")) >= {seeded.rejected, seeded.other}
    assert {row["data-state"] for row in page.rows["history"]} == {"rejected"}
    assert page.ids_in("queue") == [] and "queue-empty" in page.ids

    page = review(stack, "rev1", project=OTHER)[1]
    assert page.ids_in("history") == [seeded.other] and page.ids_in("queue") == []
    assert page.options["project"] == ["", PROJECT, OTHER]

    page = review(stack, "rev1", age="7")[1]
    assert page.ids_in("queue") == [seeded.old] and page.ids_in("history") == []
    assert review(stack, "rev1", age="30")[1].ids_in("queue") == []
    assert page.options["age"] == ["", "1", "3", "7", "30"]


def test_search_finds_by_id_requester_file_name_and_justification(stack: Stack, seeded: Seeded) -> None:
    assert review(stack, "rev1", q="cohort_SUMMARY")[1].ids_in("queue") == [seeded.waiting]
    assert review(stack, "rev1", q="lancet")[1].ids_in("queue") == [seeded.waiting]
    assert review(stack, "rev1", q=seeded.released.upper())[1].ids_in("history") == [seeded.released]
    found = review(stack, "rev1", q="CAROL")[1]
    assert found.ids_in("history") == [seeded.other] and found.ids_in("queue") == []
    # Wildcards are text: "%" and "_" match only themselves.
    assert review(stack, "rev1", q="%")[1].rows == {}
    assert review(stack, "rev1", q="cohort%summary")[1].rows == {}
    # Filters combine.
    assert review(stack, "rev1", q="carol", project=PROJECT)[1].rows == {}


def test_history_is_capped_with_a_note(stack: Stack, seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "HISTORY_LIMIT", 2)
    answer, page = review(stack, "rev1")
    assert len(page.ids_in("history")) == 2 and "history-capped" in page.ids
    assert "refine your search" in answer.body.decode()
    assert "history-capped" not in review(stack, "rev1", q=seeded.released)[1].ids


def test_unknown_filter_values_are_ignored_with_a_bilingual_note(stack: Stack, seeded: Seeded) -> None:
    for query in ({"state": "bogus"}, {"age": "5"}, {"project": "no-such"}, {"q": "x" * 201}):
        answer, page = review(stack, "rev1", **query)
        assert answer.status == 400, query
        assert "filter-notice" in page.ids
        assert '<code class="error-code">export_filter_invalid</code>' in answer.body.decode()
        assert seeded.waiting in page.ids_in("queue")  # the bad filter is dropped, the rest still works
    zh = review(stack, "rev1", state="bogus", lang="zh")[0].body.decode()
    assert "筛选条件" in zh and "已忽略" in zh


# ---- what a non-member can find -----------------------------------------------------------------------


def test_a_non_member_cannot_see_or_search_other_projects(stack: Stack, seeded: Seeded) -> None:
    answer, page = review(stack, "carol")
    assert answer.status == 200
    assert page.options["project"] == ["", OTHER]
    assert page.ids_in("history") == [seeded.other] and page.ids_in("queue") == []
    cardio = [seeded.waiting, seeded.old, seeded.approved, seeded.rejected, seeded.released]
    for q in (PROJECT, seeded.waiting, "lancet", "Cohort_Summary", "bob", "rev1", "table.csv", ""):
        answer, page = review(stack, "carol", q=q)
        assert all(row["data-project"] == OTHER for rows in page.rows.values() for row in rows), q
        shown = answer.body.decode().replace(q, "") if q else answer.body.decode()  # her own words echoed
        for secret in (PROJECT, *cardio, "Cohort_Summary", "LANCET"):
            assert secret not in shown, (q, secret)
    # Naming the project is refused in the same words whether or not it exists.
    named = get(stack, "review", "carol", project=PROJECT)
    unknown = get(stack, "review", "carol", project="zz-none")
    assert named.status == unknown.status == 400
    assert all(row["data-project"] == OTHER for rows in parse(named).rows.values() for row in rows)
    assert named.body.replace(PROJECT.encode(), b"zz-none") == unknown.body
    # A reviewer of one project does not find the other's requests either.
    assert get(stack, "mine", "carol").body.count(PROJECT.encode()) == 0


def test_a_steward_lands_on_the_queue_and_sees_every_project(stack: Stack, seeded: Seeded) -> None:
    settings = stack.env.paths.home / SETTINGS_FILE
    settings.write_text("stewards: [carol]\n", encoding="utf-8")  # read afresh on every request
    try:
        landed = get(stack, "", "carol")
        assert landed.status == 302 and landed.headers["location"].endswith("/review")
        page = review(stack, "carol", q=PROJECT)[1]
        assert page.options["project"] == ["", PROJECT, OTHER]
        assert seeded.released in page.ids_in("history") and seeded.rejected in page.ids_in("history")
        assert page.ids_in("release-queue") == [seeded.approved]  # a steward may release
        assert page.ids_in("queue") == []  # but only the committee votes
    finally:
        settings.unlink()
    assert get(stack, "", "carol").status == 200  # no longer a steward: her own requests


# ---- the layout ---------------------------------------------------------------------------------------


def test_pages_use_the_local_stylesheet_with_no_inline_style(stack: Stack, seeded: Seeded) -> None:
    for path in ("", "mine", "review", "submit", f"requests/{seeded.waiting}", "no-such-page"):
        answer = get(stack, path, "bob")
        assert answer.headers["content-security-policy"] == STYLESHEET_CSP, path
        assert "unsafe-inline" not in answer.headers["content-security-policy"]
        body = answer.body.decode()
        assert "<style" not in body and " style=" not in body and "<script" not in body, path
        page = parse(answer)
        assert page.stylesheets and "/static/review.css?v=" in page.stylesheets[0], path
        assert all(h.startswith("/services/enclave-export/static/") for h in page.stylesheets), path
    sheet = call("GET", f"{stack.public_url}{page.stylesheets[0]}")
    assert sheet.status == 200 and sheet.headers["content-type"].startswith("text/css")
    max_age = int(re.search(r"max-age=(\d+)", sheet.headers["cache-control"]).group(1))  # type: ignore[union-attr]
    assert max_age >= 365 * 24 * 3600
    assert b"http://" not in sheet.body and b"https://" not in sheet.body and b"@import" not in sheet.body
    assert call("GET", f"{stack.service_url}static/../app.py").status == 404


def test_no_template_names_an_external_url_or_inline_style() -> None:
    for template in sorted(TEMPLATES.glob("*.html")):
        text = template.read_text()
        for forbidden in ("http://", "https://", "//cdn", "<style", "style=", "<script"):
            assert forbidden not in text, (template.name, forbidden)


def test_every_label_a_template_uses_exists_in_both_languages() -> None:
    used = {
        key
        for template in TEMPLATES.glob("*.html")
        for key in re.findall(r"""\bt\(\s*["']([a-z0-9_]+)["']\s*\)""", template.read_text())
    }
    assert {"skip_to_content", "history_title", "filters_help"} <= used
    assert used <= set(LABELS), sorted(used - set(LABELS))
    for key, (en, zh) in LABELS.items():
        assert en.strip() and zh.strip(), key


def test_the_layout_is_accessible(stack: Stack, seeded: Seeded) -> None:
    for path in ("review", "submit", "mine"):
        answer = get(stack, path, "rev1")
        body = answer.body.decode()
        page = parse(answer)
        assert page.html_lang == "en"
        for landmark in (
            '<header class="site-header">',
            '<nav class="site-nav" aria-label=',
            '<main id="main"',
        ):
            assert landmark in body, (path, landmark)
        assert 'class="skip-link" href="#main"' in body
        assert set(page.controls) <= page.labels_for, (path, set(page.controls) - page.labels_for)
        assert {"nav-mine", "nav-submit", "nav-review", "nav-lang"} <= page.ids
    zh = get(stack, "review", "rev1", lang="zh", state="rejected")
    page = parse(zh)
    assert page.html_lang == "zh-CN"
    body = zh.body.decode()
    assert "审核队列" in body and "历史记录" in body and "已拒绝" in body
    assert 'id="nav-lang"' in body and 'lang="en"' in body  # the link's own words are English
    assert 'name="lang" value="zh"' in body  # the filter form keeps the chosen language
    assert "state=rejected" in re.search(r'id="nav-lang" href="([^"]*)"', body).group(1)  # type: ignore[union-attr]
    # A state is named in words on its badge, not by colour alone.
    assert re.search(
        r'<span class="badge state state-rejected"[^>]*>rejected</span>',
        get(stack, "review", "rev1").body.decode(),
    )


def test_search_text_is_escaped(stack: Stack, seeded: Seeded) -> None:
    answer = get(stack, "review", "rev1", q='"><script>alert(1)</script>')
    assert b"<script>" not in answer.body and b"&lt;script&gt;" in answer.body
