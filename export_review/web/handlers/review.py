"""What a reviewer looks at beside the request page: two versions side by side, a sanitised SVG, and
the image outputs of a notebook. Previews are for those allowed to preview only (the checks are in
``actions``), each served under a policy that lets it load and run nothing."""

from __future__ import annotations

from tornado.web import authenticated

from export_review.web import actions
from export_review.web.compare import compare
from export_review.web.handlers.base import PageHandler
from export_review.web.handlers.pages import REQUEST_ID

# An SVG may style itself inline, and nothing else: no script, no fetch, sandboxed even when opened.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
IMAGE_CSP = "default-src 'none'; sandbox"


class ComparePage(PageHandler):
    @authenticated
    def get(self, request_id: str) -> None:
        other = self.get_query_argument("with", None) or None
        self.render("compare.html", c=compare(self.ctx, request_id, other, self.user), request_id=request_id)


class SvgPreview(PageHandler):
    @authenticated
    def get(self, request_id: str, file_name: str) -> None:
        data = actions.svg_image(self.ctx, request_id, file_name, self.user)
        self.set_header("Content-Type", "image/svg+xml")
        self.set_header("Content-Security-Policy", SVG_CSP)
        self.finish(data)


class NotebookImage(PageHandler):
    @authenticated
    def get(self, request_id: str, file_name: str, ref: str) -> None:
        mime, data = actions.notebook_image(self.ctx, request_id, file_name, ref, self.user)
        self.set_header("Content-Type", mime)
        self.set_header("Content-Security-Policy", SVG_CSP if mime == "image/svg+xml" else IMAGE_CSP)
        self.finish(data)


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    requests = f"{prefix}requests/{REQUEST_ID}"
    return [
        (rf"{requests}/compare", ComparePage),
        (rf"{requests}/svg/([^/]+)", SvgPreview),
        (rf"{requests}/notebook-images/([^/]+)/([^/]+)", NotebookImage),
    ]
