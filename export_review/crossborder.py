"""The cross-border cap: records sent abroad by a project add up to at most 250 (R-EXP-7, T5, §11 C10).

Requests still in play (draft to released) hold their records; rejected, withdrawn and revised
requests give them back. A project whose approved spec does not allow cross-border transfer
cannot send anything abroad (R-APP-12).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from enclave.db.models import ExportRequest
from enclave.errors import BadInput, Refused
from export_review.repository import project_spec_data
from export_review.workflow import COUNTING_STATES


def records_abroad(session: Session, project_id: str) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(ExportRequest.records), 0)).where(
            ExportRequest.project_id == project_id,
            ExportRequest.abroad.is_(True),
            ExportRequest.state.in_([s.value for s in COUNTING_STATES]),
        )
    )
    return int(total or 0)


def check_cross_border(session: Session, project_id: str, records: int | None, cap: int) -> int:
    """Raise unless ``records`` more can go abroad; return the records to count. Hold the
    project lock (``repository.lock_project``) so two submissions cannot both take the rest."""
    if records is None or records < 0:
        raise BadInput(
            "export_records_missing",
            "A request going abroad must state its number of records (--records N, N >= 0)",
            "出境申请必须说明记录条数（--records N，N >= 0）",
        )
    if not project_spec_data(session, project_id).get("cross_border", False):
        raise Refused(
            "cross_border_not_approved",
            f"Project {project_id} is not approved for cross-border transfer",
            f"项目 {project_id} 未获准跨境传输数据",
        )
    used = records_abroad(session, project_id)
    if used + records > cap:
        raise Refused(
            "cross_border_cap",
            f"Sending {records} records abroad would bring project {project_id} to {used + records}, "
            f"above the cumulative cap of {cap}",
            f"出境 {records} 条记录将使项目 {project_id} 累计达到 {used + records} 条，超过上限 {cap} 条",
            details={"used": used, "requested": records, "cap": cap},
        )
    return records
