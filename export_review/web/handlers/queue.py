"""The lists: the landing page (a reviewer's queue, everyone else's own requests), "My requests", and
the review queue with its release queue and the searchable history of decided requests.

Who sees what is the domain's (``export_review.history``, ``permissions``); the queue keeps the
requests the viewer can vote on or release now (``actions.actionable``), oldest first.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tornado.web import authenticated

from enclave.services.handlers import page_errors
from export_review import history
from export_review.web import actions
from export_review.web.handlers.base import PageHandler
from export_review.workflow import ExportState


class MyRequestsPage(PageHandler):
    """The requests the signed-in user made, newest first."""

    nav: ClassVar[str] = "mine"

    @authenticated
    def get(self) -> None:
        self.render_mine()

    def render_mine(self) -> None:
        mine = self.ctx.list(viewer=self.user, requester=self.user)
        rows = [{**r, "age_days": history.age_days(r["created_at"])} for r in mine]
        self.render("index.html", rows=rows)


class LandingPage(MyRequestsPage):
    """The service's root: a reviewer is sent to their queue, everyone else sees their own requests."""

    @authenticated
    def get(self) -> None:
        settings = self.ctx.settings()
        with self.ctx.session() as session:
            reviewer = history.reviews_anything(session, self.user, settings.stewards)
        if reviewer:
            self.redirect(self.href("review"))
        else:
            self.render_mine()


class ReviewQueuePage(PageHandler):
    """What waits for the viewer (votes, releases) and the history of decided requests, filtered."""

    nav: ClassVar[str] = "review"

    @authenticated
    def get(self) -> None:
        user = self.user
        settings = self.ctx.settings()
        raw = {name: self.get_query_argument(name, "") for name in ("state", "project", "age", "q")}
        with self.ctx.session() as session:
            projects = history.visible_projects(session, user, settings.stewards)
            filters, problems = history.parse_filters(**raw, projects=projects)

            def listed(states: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], int]:
                return history.search(
                    session, viewer=user, stewards=settings.stewards, filters=filters, states=states, **kwargs
                )

            in_review, _ = listed(["in_review"], oldest_first=True)
            approved, _ = listed(["approved"], oldest_first=True)
            decided, decided_total = listed(history.DECIDED, limit=history.HISTORY_LIMIT)
        mine = actions.actionable(self.ctx, [r["id"] for r in in_review + approved], user)
        waiting = [r for r in in_review if r["id"] in mine.vote]
        voted = [r for r in in_review if r["id"] in mine.voted]
        to_release = [r for r in approved if r["id"] in mine.release]
        notices = [entry for problem in problems for entry in page_errors(problem)[1]]
        if notices:
            self.set_status(400)
        self.render(
            "review.html",
            waiting=waiting,
            voted=voted,
            to_release=to_release,
            decided=decided,
            decided_total=decided_total,
            filters=filters,
            projects=projects,
            states=[s.value for s in ExportState],
            ages=history.AGES,
            notices=notices,
            filtered=any(raw.values()),
        )
