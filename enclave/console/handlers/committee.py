"""The Committee (数据安全委员会): the queue of applications in committee review, and the voting page
with the form, the Office's review, the committee rule and the approvals still needed
(``voting.tally_of``). A member votes and countersigns the application's digest (R-APP-7): two
buttons, or "approve and countersign", which calls both in one transaction."""

from __future__ import annotations

from tornado.web import authenticated

from enclave.applications import voting
from enclave.applications.workflow import ApplicationActor
from enclave.console import views
from enclave.console.handlers.base import APP_ID, ConsolePage
from enclave.roles import VOTE_ON_APPLICATIONS, require


class CommitteeQueuePage(ConsolePage):
    @authenticated
    def get(self) -> None:
        user = self.user
        with self.ctx.session() as session:
            require(session, user, VOTE_ON_APPLICATIONS)
            rows = views.queue(session, user, ApplicationActor.COMMITTEE.value)
        self.render("queue.html", title_key="committee_queue_title", rows=rows, open_path="committee/")


class CommitteeVotePage(ConsolePage):
    @authenticated
    def get(self, app_id: str) -> None:
        user = self.user
        with self.ctx.session() as session:
            require(session, user, VOTE_ON_APPLICATIONS)
            info = views.application_for(session, self.ctx.paths, app_id, user)
        mine = next((v for v in info["votes"] if v.get("member") == user), None)
        self.render(
            "committee_vote.html",
            a=info,
            tally=info["tally"],
            mine=mine,
            attachment_labels=views.attachment_labels(),
        )


class VoteAction(ConsolePage):
    """``choice`` approve or reject; with ``countersign=yes`` the approval is countersigned at once."""

    @authenticated
    def post(self, app_id: str) -> None:
        user = self.user
        with self.ctx.session() as session:
            voting.vote(
                session,
                self.ctx.paths,
                app_id,
                member=user,
                choice=self.arg("choice"),
                comment=self.arg("comment"),
            )
            if self.arg("countersign") == "yes":
                voting.countersign(session, self.ctx.paths, app_id, member=user)
        self.see_other(f"committee/{app_id}")


class CountersignAction(ConsolePage):
    @authenticated
    def post(self, app_id: str) -> None:
        with self.ctx.session() as session:
            voting.countersign(session, self.ctx.paths, app_id, member=self.user)
        self.see_other(f"committee/{app_id}")


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    return [
        (rf"{prefix}committee", CommitteeQueuePage),
        (rf"{prefix}committee/{APP_ID}", CommitteeVotePage),
        (rf"{prefix}committee/{APP_ID}/vote", VoteAction),
        (rf"{prefix}committee/{APP_ID}/countersign", CountersignAction),
    ]
