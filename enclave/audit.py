"""The tamper-evident audit log: one append-only, hash-chained table (R-AUD-1..7).

``record`` writes an event inside the caller's transaction, so a state change and its audit
record commit together or not at all. Each record holds the previous record's hash; ``verify``
recomputes the chain and finds the first record that was edited, deleted or cut off.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from enclave.db.models import AuditEvent, AuditHead
from enclave.errors import EnclaveError

GENESIS_HASH = "0" * 64


class AuditAction(StrEnum):
    """Every audited action, named object then verb. The values are stored: never rename one."""

    ENCLAVE_INIT = "enclave.init"
    DATASET_REGISTER = "dataset.register"
    DATASET_NEW_VERSION = "dataset.new_version"
    DATASET_SHARE_OVERRIDE = "dataset.share_override"
    PROJECT_CREATE = "project.create"
    PROJECT_CREATE_REFUSED = "project.create_refused"
    PROJECT_PREPARE = "project.prepare"
    PROJECT_SUSPEND = "project.suspend"
    PROJECT_RESUME = "project.resume"
    PROJECT_EXPIRE = "project.expire"
    PROJECT_DESTROY = "project.destroy"
    PROJECT_LOCK = "project.lock"
    PROJECT_UNLOCK = "project.unlock"
    QUERY_RUN = "query.run"
    QUERY_REFUSE = "query.refuse"
    QUERY_ALERT = "query.alert"
    USER_ADD = "user.add"
    USER_LOGIN = "user.login"
    USER_LOGIN_FAIL = "user.login_fail"
    EXPORT_SUBMIT = "export.submit"
    EXPORT_CHECK = "export.check"
    EXPORT_VOTE = "export.vote"
    EXPORT_DECIDE = "export.decide"
    EXPORT_RELEASE = "export.release"
    EXPORT_DOWNLOAD = "export.download"
    EXPORT_WITHDRAW = "export.withdraw"
    SERVER_SPAWN = "server.spawn"
    SERVER_STOP = "server.stop"
    SUBJECT_LOOKUP = "subject.lookup"
    USER_PASSWORD = "user.password"
    USER_LOCK = "user.lock"
    USER_UNLOCK = "user.unlock"
    USER_TOTP_ENABLE = "user.totp_enable"


def now_iso() -> str:
    """UTC time as ISO 8601 with microseconds: the same text on every database."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def default_actor() -> str:
    return os.environ.get("ENCLAVE_ACTOR") or os.environ.get("USER") or "system"


def default_source() -> str:
    return f"cli@{socket.gethostname()}"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(fields: dict[str, Any], prev_hash: str) -> str:
    payload = canonical_json({**fields, "prev_hash": prev_hash})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _hashed_fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "ts": event.ts,
        "actor": event.actor,
        "action": event.action,
        "object": event.object,
        "project": event.project,
        "outcome": event.outcome,
        "source": event.source,
        "details": json.loads(event.details_json),
    }


def record(
    session: Session,
    action: AuditAction | str,
    *,
    actor: str,
    obj: str,
    project: str | None = None,
    details: dict[str, Any] | None = None,
    outcome: str = "success",
    source: str | None = None,
) -> AuditEvent:
    """Append one event to the chain inside ``session``'s transaction.

    The head row is updated first: that takes the write lock (a row lock on PostgreSQL, the
    database lock on SQLite), so concurrent writers append one after the other.
    """
    row = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.last_hash)
    ).one()
    seq, prev_hash = row.seq, row.last_hash
    event = AuditEvent(
        seq=seq,
        ts=now_iso(),
        actor=actor,
        action=str(action),
        object=obj,
        project=project,
        outcome=outcome,
        source=source or default_source(),
        details_json=canonical_json(details or {}),
        prev_hash=prev_hash,
    )
    event.hash = record_hash(_hashed_fields(event), prev_hash)
    session.add(event)
    session.flush()
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=event.hash))
    return event


@contextmanager
def refusals_recorded(
    open_session: Callable[[], AbstractContextManager[Session]],
    action: AuditAction | str,
    *,
    actor: str,
    obj: str,
    project: str | None = None,
    source: str | None = None,
) -> Iterator[None]:
    """Audit a refused action too (R-AUD-6: success and failure).

    The refused transaction rolls back, taking its own audit record with it; this writes the
    refusal in a transaction of its own, then lets the error go on to the caller.
    """
    try:
        yield
    except EnclaveError as error:
        try:
            with open_session() as session:
                record(
                    session,
                    action,
                    actor=actor,
                    obj=obj,
                    project=project,
                    outcome="refused",
                    source=source,
                    details={"code": error.code, "reasons": [r.code for r in error.reasons]},
                )
        except EnclaveError:
            pass  # no state database to audit into (not initialised): the refusal itself is what matters
        raise


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of ``verify``: ``ok``, how many records were checked, and the first break."""

    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "broken_seq": self.broken_seq,
            "problem": self.problem,
        }


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    """Recompute the whole chain; report the first record that does not fit."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not events:
            break
        for event in events:
            if event.seq != expected_seq:
                return VerifyResult(False, checked, expected_seq, "record missing (deleted)")
            if event.prev_hash != expected_prev:
                return VerifyResult(False, checked, event.seq, "previous-hash link broken")
            if record_hash(_hashed_fields(event), event.prev_hash) != event.hash:
                return VerifyResult(False, checked, event.seq, "record content changed")
            expected_prev = event.hash
            expected_seq += 1
            checked += 1
            last_seq = event.seq
    head = session.get(AuditHead, 1)
    if head is None:
        return VerifyResult(False, checked, None, "chain head missing")
    if head.seq != checked or head.last_hash != expected_prev:
        return VerifyResult(False, checked, checked + 1, "records cut off the end of the chain")
    return VerifyResult(True, checked)


def tail(
    session: Session, limit: int = 20, project: str | None = None, action: str | None = None
) -> list[AuditEvent]:
    """The newest events, oldest first."""
    query = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
    if project:
        query = query.where(AuditEvent.project == project)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(reversed(session.scalars(query).all()))


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    return {**_hashed_fields(event), "prev_hash": event.prev_hash, "hash": event.hash}


def events_to_dicts(events: Iterable[AuditEvent]) -> list[dict[str, Any]]:
    return [event_to_dict(e) for e in events]
