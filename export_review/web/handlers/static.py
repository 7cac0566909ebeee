"""The pages' stylesheets, served by the service itself from ``export_review/web/static`` (the enclave
has no internet: no CDN). Each page links a file with its content hash (``?v=``), so browsers keep it
for long and fetch it again only when it changes.

The route is the service's own (``{prefix}static/<name>``), not tornado's ``static_path`` routes, which
would also answer ``/favicon.ico`` and ``/robots.txt`` at the proxy's root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tornado.web import StaticFileHandler

STATIC = Path(__file__).parents[1] / "static"


def stylesheet_url(base_url: str, name: str) -> str:
    """The URL of ``name`` under the service's ``base_url``, with the file's hash."""
    version = StaticFileHandler.get_version({"static_path": str(STATIC)}, name)
    if version is None:
        raise FileNotFoundError(STATIC / name)
    return f"{base_url.rstrip('/')}/static/{name}?v={version}"


class StaticFile(StaticFileHandler):
    """A file of ``static/``: an unknown name or a path outside it is a 404."""

    def initialize(self, **_route_args: Any) -> None:  # the service's ctx and hub_auth: not needed
        super().initialize(path=str(STATIC))

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
