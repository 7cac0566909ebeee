"""Subject look-back (GB/T 39725 §7 g, R-AUD-9): which projects and released exports used a subject.

The ledger (``enclave.ledger``) knows, by a keyed hash of the source id, every prepared version of
every project that held the subject. Exports released from those projects after the subject's data
was provisioned are the disclosures that may include them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit, ledger
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db.models import ExportRequest
from enclave.export_states import ExportState


def subject_history(session: Session, paths: Paths, source_id: str, *, actor: str) -> dict[str, Any]:
    """The projects and released exports that included ``source_id``; the look-up itself is audited."""
    entries = ledger.projects_for_subject(paths, source_id)
    first_seen: dict[str, str] = {}
    for entry in entries:
        first_seen.setdefault(entry["project"], str(entry["prepared_at"]))
    exports = []
    if first_seen:
        released = session.scalars(
            select(ExportRequest)
            .where(
                ExportRequest.project_id.in_(first_seen), ExportRequest.state == ExportState.RELEASED.value
            )
            .order_by(ExportRequest.updated_at)
        )
        exports = [
            {"request": r.id, "project": r.project_id, "requester": r.requester, "released_at": r.updated_at}
            for r in released
            if r.updated_at >= first_seen[r.project_id]
        ]
    # The subject id is personal data: the audit record holds only the ledger's keyed hash of it.
    audit.record(
        session,
        AuditAction.SUBJECT_LOOKUP,
        actor=actor,
        obj="subject:" + ledger.subject_hash(ledger.ledger_key(paths), source_id).hex(),
        details={"projects": sorted(first_seen), "exports": [e["request"] for e in exports]},
    )
    return {"projects": entries, "exports": exports}
