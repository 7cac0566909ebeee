"""The audit chain on both databases: intact chains verify, every kind of tampering is found."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit, audit_checkpoints, audit_keys
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db import session_scope
from enclave.db.session import MIGRATIONS
from tests.conftest import write_yaml


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


def test_edit_with_recomputed_hash_breaks_the_next_link(
    sessions: sessionmaker[Session], paths: Paths
) -> None:
    append(sessions, 5)
    key = audit_keys.load_chain_key(paths)
    assert key is not None
    with session_scope(sessions) as s:  # even someone holding the vault's key breaks the next link
        drop_guards(s)
        event = s.get(audit.AuditEvent, 2)
        event.actor = "mallory"
        event.hash = audit.record_mac(key, audit._hashed_fields(event), event.prev_hash)
    result = verify(sessions)
    assert not result.ok and result.broken_seq == 3 and result.code == "audit_link_broken"


@pytest.mark.parametrize(
    ("deleted", "broken_seq"),
    [("seq = 2", 2), ("seq >= 4", 4)],
    ids=["deleted_middle_record", "records_cut_off_the_end"],
)
def test_deleted_records_are_found(sessions: sessionmaker[Session], deleted: str, broken_seq: int) -> None:
    append(sessions, 5)
    with session_scope(sessions) as s:
        drop_guards(s)
        s.execute(text(f"DELETE FROM audit_events WHERE {deleted}"))
    result = verify(sessions)
    assert not result.ok and result.broken_seq == broken_seq


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


# ---- an attacker with write access to the state database, but not to the vault (issue #14 item 2) ----


def restore_guards(session: Session) -> None:
    """Put the append-only triggers back as the migration made them, so the forgery looks untouched."""
    spec = importlib.util.spec_from_file_location(
        "foundation", MIGRATIONS / "versions" / "0001_foundation.py"
    )
    assert spec and spec.loader
    foundation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(foundation)
    sqlite = session.bind.dialect.name == "sqlite"
    for statement in foundation.SQLITE_TRIGGERS if sqlite else foundation.POSTGRES_TRIGGERS:
        session.execute(text(statement))


def canonical(fields: dict[str, Any], prev_hash: str) -> bytes:
    record = {**fields, "prev_hash": prev_hash}
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def legacy_sha256(fields: dict[str, Any], prev_hash: str) -> str:
    """The chain's hash before it was keyed: plain sha256 of the canonical record."""
    return hashlib.sha256(canonical(fields, prev_hash)).hexdigest()


def foreign_hmac(fields: dict[str, Any], prev_hash: str, _key: bytes = os.urandom(32)) -> str:
    """HMAC-SHA256 under a key the attacker made up (the vault's key is out of reach)."""
    return hmac.new(_key, canonical(fields, prev_hash), hashlib.sha256).hexdigest()


COLUMNS = "seq, ts, actor, action, object, project, outcome, source, details_json, prev_hash, hash"


def forge(session: Session, rehash: Callable[[dict[str, Any], str], str]) -> None:
    """Drop the triggers, delete the refusal, change who released the export, renumber and rehash
    every record, move the head, restore the triggers: all with raw SQL."""
    drop_guards(session)
    session.execute(text("DELETE FROM audit_events WHERE outcome = 'refused'"))
    session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE action = 'export.release'"))
    rows = session.execute(text(f"SELECT {COLUMNS} FROM audit_events ORDER BY seq")).mappings().all()
    session.execute(text("DELETE FROM audit_events"))
    prev = "0" * 64
    for seq, row in enumerate(rows, start=1):
        fields = {
            "seq": seq,
            **{
                name: row[name]
                for name in ("ts", "actor", "action", "object", "project", "outcome", "source")
            },
            "details": json.loads(row["details_json"]),
        }
        new = {**dict(row), "seq": seq, "prev_hash": prev, "hash": rehash(fields, prev)}
        session.execute(
            text(f"INSERT INTO audit_events ({COLUMNS}) VALUES ({', '.join(':' + c for c in new)})"), new
        )
        prev = new["hash"]
    session.execute(
        text("UPDATE audit_head SET seq = :seq, last_hash = :h WHERE id = 1"), {"seq": len(rows), "h": prev}
    )
    restore_guards(session)


def story(sessions: sessionmaker[Session]) -> None:
    """Queries, a refused query, a released export, more queries."""
    append(sessions, 3)
    with session_scope(sessions) as s:
        audit.record(
            s,
            AuditAction.QUERY_REFUSE,
            actor="bob",
            obj="query:x",
            project="p1",
            outcome="refused",
            details={"code": "small_cell"},
        )
        audit.record(s, AuditAction.EXPORT_RELEASE, actor="steward", obj="export:r1", project="p1")
    append(sessions, 2)


def checkpoint_lines(paths: Paths) -> list[dict[str, Any]]:
    log = audit_checkpoints.log_path(paths)
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("rehash", [legacy_sha256, foreign_hmac], ids=["old-sha256", "foreign-key"])
@pytest.mark.parametrize("checkpointed", [False, True], ids=["no-checkpoint", "checkpoint"])
def test_rewritten_database_is_caught(
    sessions: sessionmaker[Session], paths: Paths, rehash: Callable[..., str], checkpointed: bool
) -> None:
    story(sessions)
    if checkpointed:
        with session_scope(sessions) as s:
            assert audit.checkpoint(s).ok
    with session_scope(sessions) as s:
        forge(s, rehash)
    with session_scope(sessions) as s:  # self-consistent: every hash checks out under the forger's algorithm
        events = audit.tail(s, 100)
        assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6] and s.get(audit.AuditHead, 1).seq == 6
        assert [e.actor for e in events].count("mallory") == 1 and "refused" not in {
            e.outcome for e in events
        }
        assert all(e.hash == rehash(audit._hashed_fields(e), e.prev_hash) for e in events)
    result = verify(sessions)
    assert not result.ok
    assert result.code == "audit_record_changed" and result.broken_seq == 1


def test_a_fresh_chain_is_keyed_from_record_one_and_the_key_stays_in_the_vault(
    sessions: sessionmaker[Session], paths: Paths
) -> None:
    append(sessions, 2)
    key_file = audit_keys.chain_key_path(paths)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    key = audit_keys.load_chain_key(paths)
    assert key is not None and key.since_seq == 1
    with session_scope(sessions) as s:
        first = s.get(audit.AuditEvent, 1)
        assert first.hash != legacy_sha256(audit._hashed_fields(first), first.prev_hash)
        everything = json.dumps(audit.events_to_dicts(audit.tail(s, 100)))
    assert key.key.hex() not in everything and key.key.hex() not in repr(key)


def test_checkpoints_are_written_after_appends_and_verify_offline(
    sessions: sessionmaker[Session], paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "CHECKPOINT_EVERY", 5)
    append(sessions, 12)
    lines = checkpoint_lines(paths)
    assert {5, 10} <= {line["seq"] for line in lines}
    public = audit_checkpoints.public_key(paths)
    assert public and all(line["public_key"] == public for line in lines)
    with session_scope(sessions) as s:
        for line in lines:
            assert s.get(audit.AuditEvent, line["seq"]).hash == line["hash"]
    log = audit_checkpoints.log_path(paths)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    for raw in log.read_text().splitlines():  # offline: the exported public key is all one needs
        assert audit_checkpoints.parse_line(raw, public) is not None
    result = verify(sessions)
    assert result.ok and result.checked == 12 and result.checkpoint_seq == 10


def test_verify_and_checkpoint_write_a_checkpoint(sessions: sessionmaker[Session], paths: Paths) -> None:
    append(sessions, 3)
    with session_scope(sessions) as s:
        result = audit.verify(s, write_checkpoint=True)
    assert result.ok and result.checkpoint_seq == 3
    append(sessions, 2)
    with session_scope(sessions) as s:
        assert audit.checkpoint(s).checkpoint_seq == 5
    assert max(line["seq"] for line in checkpoint_lines(paths)) == 5


def test_records_cut_off_after_a_checkpoint_are_found(sessions: sessionmaker[Session], paths: Paths) -> None:
    append(sessions, 6)
    with session_scope(sessions) as s:
        assert audit.checkpoint(s).checkpoint_seq == 6
    with session_scope(sessions) as s:  # cut the last two and move the head: the chain itself is consistent
        drop_guards(s)
        s.execute(text("DELETE FROM audit_events WHERE seq >= 5"))
        s.execute(
            text("UPDATE audit_head SET seq = 4, last_hash = (SELECT hash FROM audit_events WHERE seq = 4)")
        )
        restore_guards(s)
    result = verify(sessions)
    assert not result.ok
    assert result.code == "audit_chain_truncated" and result.broken_seq == 5


def test_a_tampered_checkpoint_line_is_caught(sessions: sessionmaker[Session], paths: Paths) -> None:
    append(sessions, 4)
    with session_scope(sessions) as s:
        audit.checkpoint(s)
    log = audit_checkpoints.log_path(paths)
    lines = log.read_text().splitlines()
    forged = json.loads(lines[-1])
    forged["seq"] = 2
    log.write_text("\n".join([*lines[:-1], json.dumps(forged)]) + "\n")
    result = verify(sessions)
    assert not result.ok and result.code == "audit_checkpoint_invalid"


def test_an_untouched_log_with_checkpoints_verifies(sessions: sessionmaker[Session], paths: Paths) -> None:
    story(sessions)
    with session_scope(sessions) as s:
        assert audit.checkpoint(s).ok
    append(sessions, 3)
    result = verify(sessions)
    assert result.ok and result.checked == 10 and result.code is None


def test_a_chain_from_before_keying_is_reported_then_anchored(
    sessions: sessionmaker[Session], paths: Paths
) -> None:
    with session_scope(sessions) as s:  # what the old code wrote: sha256 links, no key in the vault
        prev = "0" * 64
        for seq in (1, 2, 3):
            event = audit.AuditEvent(
                seq=seq,
                ts=audit.now_iso(),
                actor="old",
                action="query.run",
                object=f"query:{seq}",
                project=None,
                outcome="success",
                source="cli",
                details_json="{}",
                prev_hash=prev,
            )
            event.hash = legacy_sha256(audit._hashed_fields(event), prev)
            s.add(event)
            s.flush()
            prev = event.hash
        s.execute(text("UPDATE audit_head SET seq = 3, last_hash = :h WHERE id = 1"), {"h": prev})
    result = verify(sessions)
    assert not result.ok and result.code == "audit_chain_unkeyed"
    with session_scope(sessions) as s:
        anchored = audit.checkpoint(s)
    assert anchored.ok and anchored.checkpoint_seq == 3
    key = audit_keys.load_chain_key(paths)
    assert key is not None and key.since_seq == 4
    append(sessions, 2)
    assert verify(sessions).ok
    with session_scope(sessions) as s:  # rewriting the old part with the old algorithm is now caught
        drop_guards(s)
        prev = "0" * 64
        for seq in (1, 2, 3):
            event = s.get(audit.AuditEvent, seq)
            event.actor = "mallory"
            event.prev_hash, event.hash = prev, legacy_sha256(audit._hashed_fields(event), prev)
            prev = event.hash
        s.execute(text("UPDATE audit_events SET prev_hash = :p WHERE seq = 4"), {"p": prev})
    result = verify(sessions)
    assert not result.ok and result.code == "audit_checkpoint_mismatch" and result.broken_seq == 3


# ---- the S3 copy of the checkpoints (moto on 127.0.0.1) ------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("minio")
    moto_server = pytest.importorskip("moto.server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


def test_checkpoints_in_s3_are_honoured_and_a_cut_local_log_is_found(
    sessions: sessionmaker[Session], paths: Paths, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from minio import Minio

    monkeypatch.setenv("ENCLAVE_S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("ENCLAVE_S3_SECRET_KEY", "testing-secret")
    bucket = f"audit-{os.urandom(4).hex()}"
    Minio(s3_endpoint, "testing", "testing-secret", secure=False, region="us-east-1").make_bucket(bucket)
    outbox = {"url": f"s3://{bucket}/site-a", "endpoint": s3_endpoint, "secure": False, "region": "us-east-1"}
    write_yaml(paths.home / "export-review.yaml", {"outbox": outbox})
    append(sessions, 3)
    with session_scope(sessions) as s:
        assert audit.checkpoint(s).checkpoint_seq == 3
    append(sessions, 3)
    with session_scope(sessions) as s:
        assert audit.checkpoint(s).checkpoint_seq == 6
    assert audit_checkpoints.read_remote_latest(paths).seq == 6
    assert verify(sessions).ok

    log = audit_checkpoints.log_path(paths)  # the vault's log loses its newest line
    log.write_text("".join(line + "\n" for line in log.read_text().splitlines()[:-1]))
    result = verify(sessions)
    assert not result.ok and result.code == "audit_checkpoint_log_truncated"

    with session_scope(sessions) as s:  # and what only the S3 checkpoint still covers is cut off
        drop_guards(s)
        s.execute(text("DELETE FROM audit_events WHERE seq >= 5"))
        s.execute(
            text("UPDATE audit_head SET seq = 4, last_hash = (SELECT hash FROM audit_events WHERE seq = 4)")
        )
    result = verify(sessions)
    assert not result.ok and result.code == "audit_chain_truncated" and result.checkpoint_seq == 6


# ---- the CLI ----------------------------------------------------------------------------------------


def test_cli_checkpoint_public_key_and_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from tests.test_cli import run

    monkeypatch.delenv("ENCLAVE_DATABASE_URL", raising=False)
    home = tmp_path / "home"
    run(home, "init", "--actor", "steward")
    assert run(home, "audit", "checkpoint", "--json")["checkpoint_seq"] == 1
    public = run(home, "audit", "public-key").strip()
    assert public == audit_checkpoints.public_key(Paths(home)) and len(public) == 64
    assert run(home, "audit", "verify", "--json")["ok"] is True

    con = sqlite3.connect(home / "state.db")  # rewrite record 1 with the old algorithm, head too
    con.execute("DROP TRIGGER audit_events_no_update")
    row = con.execute(f"SELECT {COLUMNS} FROM audit_events WHERE seq = 1").fetchone()
    fields = dict(zip(COLUMNS.split(", "), row, strict=True))
    fields["actor"] = "mallory"
    hashed = {
        k: fields[k] for k in ("seq", "ts", "actor", "action", "object", "project", "outcome", "source")
    }
    forged = legacy_sha256({**hashed, "details": json.loads(fields["details_json"])}, "0" * 64)
    con.execute("UPDATE audit_events SET actor = 'mallory', hash = ? WHERE seq = 1", (forged,))
    con.execute("UPDATE audit_head SET last_hash = ? WHERE id = 1", (forged,))
    con.commit()
    con.close()
    out = run(home, "audit", "verify", "--json", code=1)
    assert out["code"] == "audit_record_changed" and out["broken_seq"] == 1 and out["problem_zh"]
