"""The steward console: a JupyterHub service (HubOAuth) for the governance of data use (issue 11).

Applicants file and follow their applications, the Office pre-reviews them, the Committee votes and
countersigns, stewards record the data-use agreement, provision the project and run its lifecycle,
and security auditors search the audit log. Every page is server-rendered in English or Chinese and
works without JavaScript; every rule is the domain modules' (``enclave.applications``,
``enclave.agreements``, ``enclave.provisioning``, ``enclave.lifecycle``, ...), the console only parses,
calls and renders.

The hub runs it as the managed service ``console`` (``hub_config/jupyterhub_config.py``), with
``enclave console serve``; its own hub token may list users and stop servers, so suspending,
expiring or destroying a project stops the project's workspaces at once (R-LIFE-1, R-LIFE-10).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from tornado.web import Application as TornadoApplication
from traitlets import Integer, List, Unicode, default

from enclave import db
from enclave.config import Paths
from enclave.console.context import ConsoleContext
from enclave.console.handlers import default_handlers
from enclave.console.handlers.base import NotFoundPage
from enclave.services.handlers import MAX_FORM_BYTES, UploadSlots
from enclave.services.oauth import OAuthServiceApp

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
SERVICE_URLS_ENV = "ENCLAVE_SERVICE_URLS"


class ConsoleApp(OAuthServiceApp):
    """The steward console web UI (a JupyterHub service)."""

    name = "enclave-console"
    default_service_name: ClassVar[str] = "console"
    max_body_size = MAX_FORM_BYTES  # uploads raise it per request, once the caller is known
    description = "Data-use applications, reviews, votes, agreements, provisioning, lifecycle, audit."

    max_upload_bytes = Integer(
        64 * 1024 * 1024,
        min=1024,
        help="Largest upload body in bytes (an application with its attachments, a signed agreement); "
        "each file's own limit is the domain's, which gives the precise refusal.",
    ).tag(config=True)
    max_concurrent_uploads = Integer(
        2, min=1, help="Uploads one user may stream at once; another one is refused (`uploads_busy`)."
    ).tag(config=True)
    service_urls = List(
        Unicode(),
        help="Base URLs of the services whose token caches a lifecycle step clears after the project's "
        "servers are stopped (default: the comma list in $ENCLAVE_SERVICE_URLS).",
    ).tag(config=True)

    @default("port")
    def _default_port(self) -> int:
        return 8767

    @default("service_urls")
    def _default_service_urls(self) -> list[str]:
        return [url.strip() for url in os.environ.get(SERVICE_URLS_ENV, "").split(",") if url.strip()]

    def make_tornado_app(self) -> TornadoApplication:
        """The routes, the templates, the stylesheet and the login (also used by tests in-process)."""
        db.migrate(self.database_url)
        ctx = ConsoleContext(
            db.connect(self.database_url),
            Paths(Path(self.enclave_home)),
            hub_api_url=self.hub_api_url,
            api_token=self.api_token,
            service_urls=list(self.service_urls),
        )
        return self.web_app(
            ctx,
            default_handlers(self.base_url),
            templates=TEMPLATES,
            not_found=NotFoundPage,
            static_path=str(STATIC),
            static_url_prefix=f"{self.base_url}static/",
            upload_slots=UploadSlots(self.max_concurrent_uploads, code="uploads_busy"),
            max_upload_bytes=self.max_upload_bytes,
        )
