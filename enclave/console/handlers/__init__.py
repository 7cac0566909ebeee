"""Every route of the console, under the service prefix: one module per audience."""

from __future__ import annotations

from enclave.console.handlers import api, applicant, auditor, committee, office, steward


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    """The API first: its catch-all 404 must not swallow a page."""
    return [
        *api.default_handlers(prefix),
        *applicant.default_handlers(prefix),
        *office.default_handlers(prefix),
        *committee.default_handlers(prefix),
        *steward.default_handlers(prefix),
        *auditor.default_handlers(prefix),
    ]
