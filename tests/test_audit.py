"""The audit chain on both databases: intact chains verify, every kind of tampering is found."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit
from enclave.audit import AuditAction
from enclave.db import session_scope


def append(sessions: sessionmaker[Session], n: int, actor: str = "alice") -> None:
    for i in range(n):
        with session_scope(sessions) as s:
            audit.record(
                s, AuditAction.QUERY_RUN, actor=actor, obj=f"query:{i}", project="p1", details={"i": i}
            )


def drop_guards(session: Session) -> None:
    """What an attacker with database access would do first: remove the append-only triggers."""
    if session.bind.dialect.name == "sqlite":
        for name in ("audit_events_no_update", "audit_events_no_delete", "audit_head_no_delete"):
            session.execute(text(f"DROP TRIGGER {name}"))
    else:
        session.execute(text("DROP FUNCTION audit_append_only() CASCADE"))


def verify(sessions: sessionmaker[Session]) -> audit.VerifyResult:
    with session_scope(sessions) as s:
        return audit.verify(s)


def test_intact_chain_verifies(sessions: sessionmaker[Session]) -> None:
    append(sessions, 10)
    result = verify(sessions)
    assert result.ok and result.checked == 10
    with session_scope(sessions) as s:
        events = audit.tail(s, limit=3)
        assert [e.seq for e in events] == [8, 9, 10]
        assert events[0].prev_hash != events[1].prev_hash
        assert events[1].prev_hash == events[0].hash


def test_empty_chain_verifies(sessions: sessionmaker[Session]) -> None:
    assert verify(sessions).ok


def test_database_refuses_update_and_delete(sessions: sessionmaker[Session]) -> None:
    append(sessions, 2)
    for statement in ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), session_scope(sessions) as s:
            s.execute(text(statement))
    assert verify(sessions).ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3",
        "UPDATE audit_events SET details_json = '{\"i\": 99}' WHERE seq = 3",
        "UPDATE audit_events SET ts = '2020-01-01T00:00:00.000000+00:00' WHERE seq = 3",
        "UPDATE audit_events SET action = 'query.refuse' WHERE seq = 3",
        "UPDATE audit_events SET project = NULL WHERE seq = 3",
    ],
)
def test_edited_record_is_found(sessions: sessionmaker[Session], statement: str) -> None:
    append(sessions, 5)
    with session_scope(sessions) as s:
        drop_guards(s)
        s.execute(text(statement))
    result = verify(sessions)
    assert not result.ok
    assert result.broken_seq == 3
    assert result.problem == "record content changed"


def test_edit_with_recomputed_hash_breaks_the_next_link(sessions: sessionmaker[Session]) -> None:
    append(sessions, 5)
    with session_scope(sessions) as s:
        drop_guards(s)
        event = s.get(audit.AuditEvent, 2)
        event.actor = "mallory"
        event.hash = audit.record_hash(audit._hashed_fields(event), event.prev_hash)
    result = verify(sessions)
    assert not result.ok and result.broken_seq == 3 and "link" in result.problem


def test_deleted_middle_record_is_found(sessions: sessionmaker[Session]) -> None:
    append(sessions, 5)
    with session_scope(sessions) as s:
        drop_guards(s)
        s.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    result = verify(sessions)
    assert not result.ok and result.broken_seq == 2


def test_records_cut_off_the_end_are_found(sessions: sessionmaker[Session]) -> None:
    append(sessions, 5)
    with session_scope(sessions) as s:
        drop_guards(s)
        s.execute(text("DELETE FROM audit_events WHERE seq >= 4"))
    result = verify(sessions)
    assert not result.ok and result.broken_seq == 4


def test_failed_transaction_leaves_no_audit_record(sessions: sessionmaker[Session]) -> None:
    append(sessions, 1)
    with pytest.raises(RuntimeError), session_scope(sessions) as s:
        audit.record(s, AuditAction.PROJECT_CREATE, actor="steward", obj="project:x")
        raise RuntimeError("the state change failed")
    with session_scope(sessions) as s:
        assert [e.action for e in audit.tail(s)] == ["query.run"]
    assert verify(sessions).ok


def test_concurrent_writers_keep_one_chain(sessions: sessionmaker[Session]) -> None:
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            append(sessions, 10, actor=name)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"user{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = verify(sessions)
    assert result.ok and result.checked == 40
