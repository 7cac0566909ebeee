"""Security auditors (安全审计员, R-ROLE-4): search the audit log by user, project, action, time and
text, page through it, and download the matches as CSV. ``audit_search.audited_search`` checks the
role and records every search (``audit.search``); a refused one is recorded too (R-AUD-6)."""

from __future__ import annotations

from typing import Any

from tornado.web import authenticated

from enclave import audit, audit_search
from enclave.audit import AuditAction
from enclave.console.handlers.base import ConsolePage
from enclave.errors import BadInput

FILTERS = ("user", "project", "action", "since", "until", "text")
PAGE = 100


def _count(value: str, name: str, default: int) -> int:
    if not value:
        return default
    if not value.isdigit():
        raise BadInput("field_invalid", f"{name} must be a whole number", f"{name} 必须是整数")
    return int(value)


class AuditPage(ConsolePage):
    def filters(self) -> dict[str, Any]:
        return {name: self.get_query_argument(name, "").strip() or None for name in FILTERS}

    def search(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        user, filters = self.user, self.filters()
        refusals = audit.refusals_recorded(
            self.ctx.session, AuditAction.AUDIT_SEARCH, actor=user, obj="audit_log"
        )
        with refusals, self.ctx.session() as session:
            rows = audit_search.audited_search(session, auditor=user, **filters, limit=limit, offset=offset)
        return rows, filters

    @authenticated
    def get(self) -> None:
        offset = _count(self.get_query_argument("offset", ""), "offset", 0)
        rows, filters = self.search(PAGE, offset)
        query = {k: v for k, v in filters.items() if v}
        self.render(
            "audit.html",
            rows=rows,
            filters=filters,
            filter_names=FILTERS,
            csv_href=self.href("audit.csv", **query),
            next_href=self.href("audit", **query, offset=str(offset + PAGE)) if len(rows) == PAGE else None,
        )


class AuditCsv(AuditPage):
    @authenticated
    def get(self) -> None:
        rows, _ = self.search(audit_search.MAX_LIMIT, 0)
        # UTF-8 with a BOM, for spreadsheets to read Chinese text (audit_search.to_csv).
        data = audit_search.to_csv(rows).encode("utf-8-sig")
        self.send_download("audit.csv", data, "text/csv; charset=utf-8")


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    return [(rf"{prefix}audit", AuditPage), (rf"{prefix}audit\.csv", AuditCsv)]
