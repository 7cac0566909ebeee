"""The export review service: settings (traitlets, STYLE §5.1) and the tornado application.

JupyterHub registers it as a service with ``oauth_client_id`` and ``api_token``
(``enclave.services.oauth``): browsers log in with the hub (HubOAuth cookie); scripts send a hub
token with ``access:services!service=<service name>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from tornado.web import Application as TornadoApplication
from traitlets import Integer, default

from enclave import db
from enclave.config import Paths
from enclave.services.oauth import OAuthServiceApp
from export_review.service import ExportService
from export_review.web.handlers import default_handlers
from export_review.web.handlers.base import MAX_FORM_BYTES, PageHandler, UploadSlots

TEMPLATES = Path(__file__).with_name("templates")


class NotFoundPage(PageHandler):
    def prepare(self) -> None:
        self.send_error(404)


class ExportReviewApp(OAuthServiceApp):
    """The export review web UI and REST API (a JupyterHub service)."""

    name = "enclave-export-review"
    default_service_name: ClassVar[str] = "enclave-export"
    max_body_size = MAX_FORM_BYTES  # uploads raise it per request, once the caller is known
    description = "Export requests: submit, review with findings and previews, vote, release, download."

    max_concurrent_uploads = Integer(
        2,
        min=1,
        help="Uploads one user may stream at once; another one is refused (429 `export_uploads_busy`).",
    ).tag(config=True)

    @default("port")
    def _default_port(self) -> int:
        return 8766

    def make_tornado_app(self) -> TornadoApplication:
        """The routes, the templates and the login (also used by tests in-process)."""
        db.migrate(self.database_url)
        ctx = ExportService(db.connect(self.database_url), Paths(Path(self.enclave_home)))
        ctx.complete_releases()  # releases a crash interrupted after their commit (export_review.release)
        return self.web_app(
            ctx,
            default_handlers(self.base_url),
            templates=TEMPLATES,
            not_found=NotFoundPage,
            upload_slots=UploadSlots(self.max_concurrent_uploads),
        )
