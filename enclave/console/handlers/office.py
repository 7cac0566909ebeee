"""The Office (数据安全工作办公室): the queue of applications in pre-review, and the pre-review page
with the form, the attachments, the applicant's history with overlaps flagged (R-APP-5), the
checklist (R-APP-8) and the five-dimension scorecard (R-APP-9); forward or return with a comment."""

from __future__ import annotations

from tornado.web import authenticated

from enclave.applications import office
from enclave.applications.workflow import ApplicationActor
from enclave.console import forms, views
from enclave.console.handlers.base import APP_ID, ConsolePage
from enclave.roles import PRE_REVIEW, require


class OfficeQueuePage(ConsolePage):
    @authenticated
    def get(self) -> None:
        user = self.user
        with self.ctx.session() as session:
            require(session, user, PRE_REVIEW)
            rows = views.queue(session, user, ApplicationActor.OFFICE.value)
        self.render("queue.html", title_key="office_queue_title", rows=rows, open_path="office/")


class OfficeReviewPage(ConsolePage):
    @authenticated
    def get(self, app_id: str) -> None:
        user = self.user
        with self.ctx.session() as session:
            require(session, user, PRE_REVIEW)
            info = views.application_for(session, self.ctx.paths, app_id, user)
            history = office.history(session, app_id)
        self.render(
            "office_review.html",
            a=info,
            history=history,
            checklist=office.CHECKLIST,
            scorecard=office.SCORECARD,
            score_range=range(office.SCORE_MIN, office.SCORE_MAX + 1),
            attachment_labels=views.attachment_labels(),
        )


class OfficeReviewAction(ConsolePage):
    """Forward to the Committee or return to the applicant; the domain checks the role, the
    reviewer's independence, the checklist and the scorecard."""

    @authenticated
    def post(self, app_id: str) -> None:
        with self.ctx.session() as session:
            office.review(
                session,
                self.ctx.paths,
                app_id,
                reviewer=self.user,
                outcome=self.arg("outcome"),
                checklist=forms.checklist(self.get_body_arguments, office.CHECKLIST),
                scorecard=forms.scorecard(self.get_body_arguments, office.SCORECARD),
                comment=self.arg("comment"),
            )
        self.see_other("office")


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    return [
        (rf"{prefix}office", OfficeQueuePage),
        (rf"{prefix}office/{APP_ID}", OfficeReviewPage),
        (rf"{prefix}office/{APP_ID}/review", OfficeReviewAction),
    ]
