"""The pages: submit (upload), one request (files, findings, previews, votes, actions), the inline
image a reviewer previews, and the lists (``queue``: landing, my requests, the review queue). State
changes are POST only, behind the hub's xsrf check on the login cookie."""

from __future__ import annotations

from typing import ClassVar

from tornado.web import authenticated

from export_review.web import actions
from export_review.web.handlers import queue, static
from export_review.web.handlers.base import PageHandler, UploadHandler

REQUEST_ID = r"(exp-[0-9a-f]{16})"


class SubmitPage(UploadHandler, PageHandler):
    nav: ClassVar[str] = "submit"

    @authenticated
    def get(self) -> None:
        self.render("submit.html")

    def post(self) -> None:  # not @authenticated: the xsrf token is in the streamed body, parsed first
        user = self.upload_user()
        uploads = [actions.Upload(f["filename"], f["body"]) for f in self.request.files.get("files", [])]
        result = actions.submit_uploads(
            self.ctx,
            user=user,
            project=self.get_body_argument("project", ""),
            justification=self.get_body_argument("justification", ""),
            uploads=uploads,
            abroad=self.get_body_argument("abroad", "") == "yes",
            records=actions.parse_records(self.get_body_argument("records", None)),
        )
        self.redirect(self.href(f"requests/{result['request']}"), status=303)


class RequestPage(PageHandler):
    @authenticated
    def get(self, request_id: str) -> None:
        info = actions.describe(self.ctx, request_id, self.user)
        self.render(
            "request.html",
            r=info,
            can=actions.abilities(self.ctx, request_id, self.user),
            previews=actions.previews(self.ctx, request_id, self.user),
            image_kinds=("png", "jpg"),
        )


class VoteAction(PageHandler):
    @authenticated
    def post(self, request_id: str) -> None:
        self.ctx.vote(
            request_id,
            user=self.user,
            choice=self.get_body_argument("choice", ""),
            file_name=self.get_body_argument("file", "") or None,
            comment=self.get_body_argument("comment", "") or None,
            override=self.get_body_argument("override", "") or None,
        )
        self.redirect(self.href(f"requests/{request_id}"), status=303)


class RerunAction(PageHandler):
    @authenticated
    def post(self, request_id: str) -> None:
        self.ctx.rerun(request_id, user=self.user)
        self.redirect(self.href(f"requests/{request_id}"), status=303)


class ReleaseAction(PageHandler):
    @authenticated
    def post(self, request_id: str) -> None:
        actions.release(self.ctx, request_id, user=self.user)
        self.redirect(self.href(f"requests/{request_id}"), status=303)


class DownloadAction(PageHandler):
    @authenticated
    def get(self, request_id: str) -> None:
        name, data = actions.download_zip(self.ctx, request_id, user=self.user)
        self.set_header("Content-Type", "application/zip")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(data)


class ImagePreview(PageHandler):
    @authenticated
    def get(self, request_id: str, file_name: str) -> None:
        mime, data = actions.image(self.ctx, request_id, file_name, self.user)
        self.set_header("Content-Type", mime)
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        self.finish(data)


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    return [
        (rf"{prefix}", queue.LandingPage),
        (rf"{prefix}mine", queue.MyRequestsPage),
        (rf"{prefix}submit", SubmitPage),
        (rf"{prefix}review", queue.ReviewQueuePage),
        (rf"{prefix}static/([^/]+)", static.StaticFile),
        (rf"{prefix}requests/{REQUEST_ID}", RequestPage),
        (rf"{prefix}requests/{REQUEST_ID}/vote", VoteAction),
        (rf"{prefix}requests/{REQUEST_ID}/release", ReleaseAction),
        (rf"{prefix}requests/{REQUEST_ID}/rerun", RerunAction),
        (rf"{prefix}requests/{REQUEST_ID}/download", DownloadAction),
        (rf"{prefix}requests/{REQUEST_ID}/images/([^/]+)", ImagePreview),
    ]
