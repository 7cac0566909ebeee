"""The console's base handlers: the shared service handlers (``enclave.services.handlers``) with the
console's labels, a stricter stylesheet policy (its one stylesheet is a local file), the navigation
by the reader's roles (each link names the ``roles.Permission`` its page checks)."""

from __future__ import annotations

from typing import Any, ClassVar

from enclave import roles
from enclave.console.context import ConsoleContext
from enclave.console.i18n import ConsoleTranslator
from enclave.errors import EnclaveError
from enclave.roles import Permission, Role
from enclave.services import handlers
from enclave.services.handlers import UploadHandler, page_errors

CSP = handlers.STYLESHEET_CSP  # styles from the console's own stylesheet only (no inline style)
APP_ID = r"(app-[0-9a-f]{16})"
PROJECT_ID = r"([a-z0-9][a-z0-9-]{1,62})"

# (element id, label, path, the permission its page needs): a link is shown to whoever has it; every
# page still checks it on the server, through the domain call or ``roles.require``.
NAV: tuple[tuple[str, str, str, Permission | None], ...] = (
    ("nav-mine", "nav_mine", "", None),
    ("nav-new", "nav_new", "applications/new", None),
    ("nav-office", "nav_office", "office", roles.PRE_REVIEW),
    ("nav-committee", "nav_committee", "committee", roles.VOTE_ON_APPLICATIONS),
    ("nav-steward", "nav_steward", "steward", roles.PROVISION_PROJECTS),
    ("nav-projects", "nav_projects", "projects", roles.RUN_LIFECYCLE),
    ("nav-monitoring", "nav_monitoring", "monitoring", roles.UNLOCK_ANALYSTS),
    ("nav-audit", "nav_audit", "audit", roles.SEARCH_AUDIT_LOG),
)


def nav_for(held: set[Role]) -> list[tuple[str, str, str]]:
    return [(el, label, path) for el, label, path, need in NAV if need is None or need.held_by(held)]


class ConsolePage(handlers.StylesheetPage):
    """A console page: the console's labels and navigation."""

    ctx: ConsoleContext
    translator: ClassVar[type[ConsoleTranslator]] = ConsoleTranslator

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        who = namespace["who"]
        held = self.ctx.roles_of(who) if who else set()
        namespace.update(nav=nav_for(held) if who else [], held_roles=sorted(r.value for r in held))
        return namespace

    def arg(self, name: str, default: str = "") -> str:
        return self.get_body_argument(name, default).strip()

    def args(self, name: str) -> list[str]:
        return self.get_body_arguments(name)

    def show_error(self, error: EnclaveError | None) -> list[dict[str, Any]]:
        """Set the error's status on a page shown again with it; its entries for ``_errors.html``."""
        if error is None:
            return []
        status, errors = page_errors(error)
        self.set_status(status)
        return errors

    def see_other(self, path: str) -> None:
        """Post/redirect/get: the page after a change is a fresh GET."""
        self.redirect(self.href(path), status=303)


class ConsoleUpload(UploadHandler, ConsolePage):
    """A console page whose POST is a multipart upload (streamed, capped, one slot per upload)."""


class NotFoundPage(ConsolePage):
    def prepare(self) -> None:
        self.send_error(404)
