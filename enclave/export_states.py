"""An export request's states, named in the vault (ARCHITECTURE §6, issue 15), as projects' are in
``project_states``: the vault reads them (``lookback`` finds released exports) without depending on
the export-review service, whose ``workflow`` holds the moves between them and who makes each one.
"""

from __future__ import annotations

from enum import StrEnum


class ExportState(StrEnum):
    """Where an export request is in its review. The values are stored: never rename one."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    CHECKED = "checked"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    RELEASED = "released"
    WITHDRAWN = "withdrawn"
