"""Who may start (and keep) a project's workspace (ARCHITECTURE §1, §6)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date

from sqlalchemy.orm import Session

from enclave.errors import EnclaveError
from hub_config.errors import WorkspaceRefused

OpenSession = Callable[[], AbstractContextManager[Session]]


def check_workspace_access(session: Session, project_id: str, user: str, *, today: date | None = None) -> str:
    """The project's access mode if ``user`` may work in it now; ``WorkspaceRefused`` otherwise.

    The rule is the query service's (``enclave.query_service.check_analyst_access``: an analyst of
    an active, unlocked project inside its period (``enclave.lifecycle.check_usable``) whom monitoring
    has not locked out; R-QRY-2, R-QRY-5, R-QRY-16, R-LIFE-9), so the hub and the gateway can never
    disagree; its refusal becomes a spawn refusal, same code. ``today``: the date, for tests.
    """
    from enclave import projects
    from enclave.query_service import check_analyst_access

    try:
        check_analyst_access(session, project_id, user, today=today)
        return projects.current_spec(session, project_id).access.value
    except EnclaveError as error:
        raise WorkspaceRefused.from_error(error) from None
