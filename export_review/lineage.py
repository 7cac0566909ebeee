"""Where the files came from, as far as the enclave knows: the requester's audited queries in the
project (R-EXP-3 lineage). The gateway records each query as ``query.run`` with its SQL."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave.audit import AuditAction
from enclave.db.models import AuditEvent

MAX_QUERIES = 200


def query_lineage(session: Session, project_id: str, requester: str) -> dict[str, Any]:
    rows = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.project == project_id,
            AuditEvent.actor == requester,
            AuditEvent.action == AuditAction.QUERY_RUN.value,
        )
        .order_by(AuditEvent.seq.desc())
        .limit(MAX_QUERIES)
    ).all()
    queries = []
    for event in reversed(rows):
        details = json.loads(event.details_json)
        queries.append({"audit_seq": event.seq, "ts": event.ts, "sql": details.get("sql")})
    return {"queries": queries, "truncated": len(rows) == MAX_QUERIES}
