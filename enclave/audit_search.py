"""The security auditor's search of the audit log, and its CSV export (R-ROLE-4, R-AUD-3, R-AUD-7).

R-ROLE-4 gives the security auditor read-only access to the logs, and R-AUD-7 lets only
authorised staff read them. ``search`` runs on a connection of its own that the database itself
holds read-only (a ``READ ONLY`` transaction on PostgreSQL, ``PRAGMA query_only`` on SQLite), so
no filter value can make it write. ``audited_search`` is the auditor's entry point: it checks the
``security_auditor`` role and records who searched for what (``audit.search``) in the caller's
transaction, so no search goes unaudited.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select
from sqlalchemy.orm import Session

from enclave import audit
from enclave.audit import AuditAction
from enclave.db.models import AuditEvent
from enclave.errors import BadInput
from enclave.roles import SEARCH_AUDIT_LOG, require

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
COLUMNS = ("seq", "ts", "actor", "action", "object", "project", "outcome", "source", "details", "hash")
# An action filter: a full name (``export.vote``) or a prefix ending in "." or "*" (``export.``).
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]*)?\*?$")
_MAX_FILTER_CHARS = 200
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _invalid(field: str, value: object, en: str, zh: str) -> BadInput:
    return BadInput(
        "audit_filter_invalid",
        f"Invalid audit search filter {field}={value!r}: {en}",
        f"审计检索条件 {field}={value!r} 无效：{zh}",
        details={"field": field, "value": str(value)},
    )


def check_auditor(session: Session, user: str) -> None:
    """Raise ``Forbidden`` (``role_required``) unless ``user`` is a security auditor (R-ROLE-4)."""
    require(session, user, SEARCH_AUDIT_LOG)


def _moment(field: str, value: str | date | datetime | None, *, end: bool) -> str | None:
    """The bound as the log stores times (UTC ISO 8601, microseconds), so text order is time order.

    A date is a whole day in the enclave's time zone: ``since`` from its first moment, ``until``
    to its last. A time without a zone is in the enclave's time zone too.
    """
    from enclave.lifecycle import enclave_timezone

    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed: date | datetime = (
                date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
            )
        except ValueError:
            raise _invalid(
                field,
                value,
                "use an ISO date or time, e.g. 2026-11-01 or 2026-11-01T08:30:00+08:00",
                "请使用 ISO 日期或时间，例如 2026-11-01 或 2026-11-01T08:30:00+08:00",
            ) from None
    else:
        parsed = value
    try:
        if not isinstance(parsed, datetime):
            day = parsed + timedelta(days=1) if end else parsed
            moment = datetime.combine(day, time.min, tzinfo=enclave_timezone())
            if end:
                moment -= timedelta(microseconds=1)
        else:
            moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=enclave_timezone())
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    except (OverflowError, ValueError):
        raise _invalid(field, value, "out of range", "超出范围") from None


def _text_filter(field: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > _MAX_FILTER_CHARS or any(ord(c) < 32 for c in value):
        raise _invalid(
            field,
            value,
            f"at most {_MAX_FILTER_CHARS} printable characters",
            f"最多 {_MAX_FILTER_CHARS} 个可打印字符",
        )
    return value


def _bounded(field: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(
            field, value, f"a whole number from {low} to {high}", f"应为 {low} 到 {high} 之间的整数"
        )
    return value


@contextmanager
def read_only_connection(session: Session) -> Iterator[Connection]:
    """A connection of its own on the session's database that cannot write: the database refuses
    any statement that would (R-ROLE-4: auditors read the log, nothing more)."""
    engine = session.get_bind().engine
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA query_only = ON")
        else:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            yield conn
        finally:
            conn.rollback()
            if sqlite:  # the pooled connection goes back writable for its next user
                conn.exec_driver_sql("PRAGMA query_only = OFF")


def _row(event: Any) -> dict[str, Any]:
    """A record as the search gives it: the fields its hash covers, and the hash (not the chain link)."""
    return {**audit._hashed_fields(event), "hash": event.hash}


def search(
    session: Session,
    *,
    user: str | None = None,
    project: str | None = None,
    action: str | None = None,
    since: str | date | datetime | None = None,
    until: str | date | datetime | None = None,
    text: str | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Audit records, newest first, matching every filter given: ``user`` the actor, ``project``,
    ``action`` exact or a prefix (``export.``), ``since``/``until`` inclusive ISO dates or times,
    ``text`` a case-insensitive substring of the object or details. Read-only and not itself
    audited: an auditor's search goes through ``audited_search``. Bad filters raise ``BadInput``
    (``audit_filter_invalid``)."""
    user, project, text = (
        _text_filter(f, v) for f, v in (("user", user), ("project", project), ("text", text))
    )
    limit = _bounded("limit", limit, 1, MAX_LIMIT)
    offset = _bounded("offset", offset, 0, 2**31 - 1)
    start, end = _moment("since", since, end=False), _moment("until", until, end=True)
    if start is not None and end is not None and start > end:
        raise _invalid("until", until, "the range ends before it starts", "结束时间早于开始时间")
    query = select(*AuditEvent.__table__.c).order_by(AuditEvent.seq.desc()).limit(limit).offset(offset)
    if user is not None:
        query = query.where(AuditEvent.actor == user)
    if project is not None:
        query = query.where(AuditEvent.project == project)
    if action:
        if not _ACTION.fullmatch(action):
            raise _invalid(
                "action",
                action,
                "an action such as export.vote, or a prefix such as export.",
                "应为操作名（如 export.vote）或前缀（如 export.）",
            )
        if action.endswith(("*", ".")):
            query = query.where(AuditEvent.action.startswith(action.rstrip("*"), autoescape=True))
        else:
            query = query.where(AuditEvent.action == action)
    if start is not None:
        query = query.where(AuditEvent.ts >= start)
    if end is not None:
        query = query.where(AuditEvent.ts <= end)
    if text is not None:
        query = query.where(
            or_(
                AuditEvent.object.icontains(text, autoescape=True),
                AuditEvent.details_json.icontains(text, autoescape=True),
            )
        )
    with read_only_connection(session) as conn:
        return [_row(event) for event in conn.execute(query)]


def audited_search(session: Session, *, auditor: str, **filters: Any) -> list[dict[str, Any]]:
    """``search`` for a security auditor, recorded as ``audit.search`` (who searched for what, and
    how many records it found) in the caller's transaction. ``Forbidden`` (``role_required``) for
    anyone else; wrap the call in ``audit.refusals_recorded`` to record refusals too."""
    check_auditor(session, auditor)
    rows = search(session, **filters)
    given = {
        k: (v.isoformat() if isinstance(v, date) else v) for k, v in filters.items() if v not in (None, "")
    }
    audit.record(
        session,
        AuditAction.AUDIT_SEARCH,
        actor=auditor,
        obj="audit_log",
        details={"filters": given, "results": len(rows)},
    )
    return rows


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = audit.canonical_json(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # shown as text, never run as a formula
    return value


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV with a fixed header (``COLUMNS``); ``details`` as compact JSON. A cell that a
    spreadsheet would run as a formula gets a leading ``'``. Write it as UTF-8 with a BOM
    (``utf-8-sig``) for spreadsheets to read Chinese text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in COLUMNS])
    return out.getvalue()
