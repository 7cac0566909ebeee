"""All routes of the service, pages and API, under the service prefix."""

from __future__ import annotations

from export_review.web.handlers import api, pages, review


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    """API routes first: their catch-all 404 must not swallow a page."""
    return [*api.default_handlers(prefix), *review.default_handlers(prefix), *pages.default_handlers(prefix)]
