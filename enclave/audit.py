"""The tamper-evident audit log: one append-only, hash-chained table (R-AUD-1..7).

``record`` writes an event inside the caller's transaction, so a state change and its audit
record commit together or not at all. Each record holds the previous record's hash, and its own
hash is an HMAC-SHA256 under a key kept in the vault (``enclave.audit_keys``), so write access to
the database is not enough to recompute a rewritten chain. Signed checkpoints kept outside the
database (``enclave.audit_checkpoints``) pin the chain's length and last hash, so cutting records
off its end is found too. ``verify`` recomputes the chain and finds the first record that was
edited, deleted or cut off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from enclave import audit_checkpoints, audit_keys, config
from enclave.audit_checkpoints import Checkpoint, CheckpointError
from enclave.config import Paths
from enclave.db.models import AuditEvent, AuditHead
from enclave.errors import BadInput, EnclaveError

GENESIS_HASH = "0" * 64
# A checkpoint is written after the commit of every CHECKPOINT_EVERY-th record, and of the first
# record a process writes after CHECKPOINT_INTERVAL_S without one (so a quiet enclave is covered too).
CHECKPOINT_EVERY = 100
CHECKPOINT_INTERVAL_S = 600.0

log = logging.getLogger(__name__)


class AuditAction(StrEnum):
    """Every audited action, named object then verb. The values are stored: never rename one."""

    ENCLAVE_INIT = "enclave.init"
    ENCLAVE_BACKUP = "enclave.backup"
    ENCLAVE_RESTORE = "enclave.restore"
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
    PROJECT_RETENTION_REVIEW = "project.retention_review_due"
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
    EXPORT_KEY_REGISTER = "export.key_register"
    SERVER_SPAWN = "server.spawn"
    SERVER_STOP = "server.stop"
    SERVER_CULL = "server.cull"
    SUBJECT_LOOKUP = "subject.lookup"
    USER_PASSWORD = "user.password"
    USER_LOCK = "user.lock"
    USER_UNLOCK = "user.unlock"
    USER_TOTP_ENABLE = "user.totp_enable"
    ROLE_GRANT = "role.grant"
    ROLE_REVOKE = "role.revoke"
    # Governance (issue 11): helpers add their actions below, one block per module.
    # enclave.applications (filing, attachments, the Office pre-review, the decision)
    APPLICATION_FILE = "application.file"
    APPLICATION_UPDATE = "application.update"
    APPLICATION_ATTACH = "application.attach"
    APPLICATION_SUBMIT = "application.submit"
    APPLICATION_REVIEW = "application.review"
    APPLICATION_RETURN = "application.return"
    APPLICATION_FORWARD = "application.forward"
    APPLICATION_DECIDE = "application.decide"
    APPLICATION_WITHDRAW = "application.withdraw"
    # enclave.applications.voting (the committee seated for an application, votes, countersignatures)
    APPLICATION_SEAT = "application.seat"
    APPLICATION_VOTE = "application.vote"
    APPLICATION_COUNTERSIGN = "application.countersign"
    # enclave.agreements, enclave.provisioning (the DUA gate, provisioning from an application)
    DUA_RECORD = "dua.record"
    PROJECT_CREATE_WITHOUT_APPLICATION = "project.create_without_application"
    # enclave.accounts (account applications, the Office's decision, memberships, account expiry)
    ACCOUNT_APPLY = "account.apply"
    ACCOUNT_DECIDE = "account.decide"
    ACCOUNT_EXPIRE = "account.expire"
    ACCOUNT_MEMBERSHIP = "account.membership"
    # enclave.audit_search (the security auditor's read-only search: who searched for what)
    AUDIT_SEARCH = "audit.search"
    # enclave.runs (batch runs with papermill, approved templates, reproducibility reruns; issue 12)
    RUN_SUBMIT = "run.submit"
    RUN_START = "run.start"
    RUN_FINISH = "run.finish"
    RUN_CANCEL = "run.cancel"
    RUN_RERUN = "run.rerun"
    RUN_REPRODUCE = "run.reproduce"
    RUN_TEMPLATE_ADD = "run.template_add"
    RUN_TEMPLATE_RETIRE = "run.template_retire"
    RUN_OUTPUTS_COPY = "run.outputs_copy"  # a run's outputs written to a folder of the vault host


def now_iso() -> str:
    """UTC time as ISO 8601 with microseconds: the same text on every database."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def default_actor() -> str:
    return os.environ.get("ENCLAVE_ACTOR") or os.environ.get("USER") or "system"


def default_source() -> str:
    return f"cli@{socket.gethostname()}"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _payload(fields: dict[str, Any], prev_hash: str) -> bytes:
    return canonical_json({**fields, "prev_hash": prev_hash}).encode("utf-8")


def record_hash(fields: dict[str, Any], prev_hash: str) -> str:
    """The unkeyed sha256 of chains written before keying: checked only below the key's ``since_seq``."""
    return hashlib.sha256(_payload(fields, prev_hash)).hexdigest()


def record_mac(key: audit_keys.ChainKey, fields: dict[str, Any], prev_hash: str) -> str:
    """A record's hash: HMAC-SHA256 under the vault's chain key."""
    return key.mac(_payload(fields, prev_hash))


# ---- which vault keys a database's chain --------------------------------------------------------

_vaults: dict[str, Paths] = {}


def _url_key(url: str | URL) -> str:
    return make_url(url).render_as_string(hide_password=False)


def use_vault(database_url: str, paths: Paths) -> None:
    """Key the audit chain of ``database_url`` with the vault of ``paths`` in this process."""
    _vaults[_url_key(database_url)] = paths


def vault_for(session: Session) -> Paths:
    """The vault keying this session's chain: the one named by ``use_vault``, else the home that
    holds the SQLite file (``<home>/state.db``), else ``$ENCLAVE_HOME`` (or ``~/.enclave``)."""
    url = session.get_bind().url
    bound = _vaults.get(_url_key(url))
    if bound is not None:
        return bound
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Paths(Path(url.database).expanduser().resolve().parent)
    return config.paths()


def _vault_mismatch(paths: Paths, seq: int, key: audit_keys.ChainKey) -> BadInput:
    return BadInput(
        "audit_vault_mismatch",
        f"The vault's audit key starts at record {key.since_seq} but the database is at record {seq}: "
        f"this database and the vault {paths.vault} do not belong together",
        f"保险库的审计密钥从第 {key.since_seq} 条记录开始，而数据库处于第 {seq} 条：该数据库与保险库 "
        f"{paths.vault} 不匹配",
    )


def _key_for_append(paths: Paths, seq: int, prev_hash: str) -> audit_keys.ChainKey:
    """The chain key, made on the first append (the caller holds the chain's write lock). A chain
    written before keying is anchored at its last old record; a fresh one is keyed from record 1."""
    key = audit_keys.load_chain_key(paths, cached=True) or audit_keys.create_chain_key(
        paths, seq - 1, prev_hash
    )
    if seq < key.since_seq:
        raise _vault_mismatch(paths, seq, key)
    return key


# ---- checkpoints after commit -------------------------------------------------------------------

_PENDING = "enclave.audit.pending_checkpoint"
_last_checkpoint: dict[Path, float] = {}
_last_checkpoint_lock = threading.Lock()


def _checkpoint_due(paths: Paths, seq: int) -> bool:
    last = _last_checkpoint.get(paths.vault)
    return seq % CHECKPOINT_EVERY == 0 or last is None or time.monotonic() - last >= CHECKPOINT_INTERVAL_S


@sa_event.listens_for(Session, "after_commit")
def _write_pending_checkpoint(session: Session) -> None:
    """Checkpoint only what committed; a failure here is logged, the commit already stands."""
    pending = session.info.pop(_PENDING, None)
    if pending is None or not pending[3]:
        return
    paths, seq, hash_, _due = pending
    with _last_checkpoint_lock:
        _last_checkpoint[paths.vault] = time.monotonic()
    try:
        audit_checkpoints.write(paths, seq, hash_)
    except Exception:
        log.exception("could not write the audit checkpoint for record %d", seq)


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_pending_checkpoint(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)


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
    paths = vault_for(session)
    key = _key_for_append(paths, seq, prev_hash)
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
    event.hash = record_mac(key, _hashed_fields(event), prev_hash)
    session.add(event)
    session.flush()
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=event.hash))
    # The transaction's last record is checkpointed if any of its records was due for one.
    earlier = session.info.get(_PENDING)
    due = _checkpoint_due(paths, seq) or (earlier is not None and earlier[3])
    session.info[_PENDING] = (paths, seq, event.hash, due)
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


# Every way ``verify`` can fail: a stable code, then the text in English and Simplified Chinese.
PROBLEMS: dict[str, tuple[str, str]] = {
    "audit_record_missing": ("record missing (deleted)", "记录缺失（已被删除）"),
    "audit_link_broken": ("previous-hash link broken", "与前一条记录的哈希链接断裂"),
    "audit_record_changed": ("record content changed", "记录内容被修改"),
    "audit_head_missing": ("chain head missing", "链头缺失"),
    "audit_chain_truncated": ("records cut off the end of the chain", "链尾记录被截除"),
    "audit_checkpoint_mismatch": (
        "record differs from the signed checkpoint (or the vault's anchor) for it",
        "记录与其已签名检查点（或保险库锚点）不一致",
    ),
    "audit_checkpoint_log_truncated": (
        "the vault's checkpoint log is behind the S3 copy: lines were removed",
        "保险库中的检查点日志落后于 S3 副本：有记录被删除",
    ),
    "audit_chain_unkeyed": (
        "chain written before keyed hashing: run `enclave audit checkpoint` to anchor it",
        "该链写于启用密钥哈希之前：请运行 `enclave audit checkpoint` 进行锚定",
    ),
    "audit_key_missing": (
        "the vault has no audit key for a chain that has been keyed",
        "保险库缺少该审计链的密钥",
    ),
}


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of ``verify``: ``ok``, how many records were checked, the first break (its seq, a
    stable ``code`` and the ``problem`` in English), and the newest checkpoint."""

    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str | None = None
    code: str | None = None
    problem_zh: str | None = None
    checkpoint_seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "broken_seq": self.broken_seq,
            "code": self.code,
            "problem": self.problem,
            "problem_zh": self.problem_zh,
            "checkpoint_seq": self.checkpoint_seq,
        }


def _broken(code: str, checked: int, seq: int | None, checkpoint: Checkpoint | None = None) -> VerifyResult:
    en, zh = PROBLEMS[code]
    return VerifyResult(False, checked, seq, en, code, zh, checkpoint.seq if checkpoint else None)


@dataclass(frozen=True)
class _Checkpoints:
    """The newest checkpoint in the vault's log and in the S3 copy."""

    local: Checkpoint | None
    remote: Checkpoint | None

    @property
    def latest(self) -> Checkpoint | None:
        found = [c for c in (self.local, self.remote) if c is not None]
        return max(found, key=lambda c: c.seq) if found else None


def _read_checkpoints(paths: Paths) -> _Checkpoints:
    local = audit_checkpoints.read_local(paths)
    newest = max(local, key=lambda c: c.seq) if local else None
    return _Checkpoints(newest, audit_checkpoints.read_remote_latest(paths))


def verify(
    session: Session, batch: int = 5000, *, paths: Paths | None = None, write_checkpoint: bool = False
) -> VerifyResult:
    """Recompute the whole chain with the vault's key and hold it against the newest signed
    checkpoint; report the first thing that does not fit. With ``write_checkpoint`` an intact
    chain gets a new checkpoint at its head."""
    paths = paths or vault_for(session)
    try:  # read before the chain, so every checkpoint seen is of a record already committed
        checkpoints = _read_checkpoints(paths)
    except CheckpointError as error:
        return VerifyResult(False, 0, None, error.message, error.code, error.message_zh)
    latest = checkpoints.latest
    key = audit_keys.load_chain_key(paths)
    if key is None and latest is not None:
        return _broken("audit_key_missing", 0, None, latest)
    # Hashes the vault vouches for: the anchor of a chain keyed late, and the newest checkpoint.
    pins = {key.anchor_seq: key.anchor_hash} if key is not None and key.anchor_seq > 0 else {}
    if latest is not None and pins.get(latest.seq, latest.hash) != latest.hash:
        return _broken("audit_checkpoint_mismatch", 0, latest.seq, latest)
    if latest is not None:
        pins[latest.seq] = latest.hash
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
                return _broken("audit_record_missing", checked, expected_seq, latest)
            if event.prev_hash != expected_prev:
                return _broken("audit_link_broken", checked, event.seq, latest)
            fields = _hashed_fields(event)
            if key is None or event.seq < key.since_seq:
                expected = record_hash(fields, event.prev_hash)
            else:
                expected = record_mac(key, fields, event.prev_hash)
            if expected != event.hash:
                return _broken("audit_record_changed", checked, event.seq, latest)
            if pins.get(event.seq, event.hash) != event.hash:
                return _broken("audit_checkpoint_mismatch", checked, event.seq, latest)
            expected_prev = event.hash
            expected_seq += 1
            checked += 1
            last_seq = event.seq
    head = session.get(AuditHead, 1)
    if head is None:
        return _broken("audit_head_missing", checked, None, latest)
    if head.seq != checked or head.last_hash != expected_prev or checked < max(pins, default=0):
        return _broken("audit_chain_truncated", checked, checked + 1, latest)
    local, remote = checkpoints.local, checkpoints.remote
    if remote is not None and (local is None or local.seq < remote.seq):
        return _broken("audit_checkpoint_log_truncated", checked, None, latest)
    if key is None and checked > 0:
        return _broken("audit_chain_unkeyed", checked, None, latest)
    if write_checkpoint and key is not None and checked > (latest.seq if latest else 0):
        latest = audit_checkpoints.write(paths, checked, expected_prev)
    return VerifyResult(True, checked, checkpoint_seq=latest.seq if latest else None)


def checkpoint(session: Session, *, paths: Paths | None = None) -> VerifyResult:
    """Verify the chain and write a signed checkpoint at its head (``enclave audit checkpoint``).

    A chain written before keying is first checked with its old hashes and, if intact, anchored: the
    vault's new key then keys every later record and the anchor pins the old ones.
    """
    paths = paths or vault_for(session)
    if audit_keys.load_chain_key(paths) is None:
        # Take the chain's write lock, as ``record`` does, so no record slips in unkeyed.
        head = session.execute(
            update(AuditHead)
            .where(AuditHead.id == 1)
            .values(seq=AuditHead.seq)
            .returning(AuditHead.seq, AuditHead.last_hash)
        ).one()
        before = verify(session, paths=paths)
        if not before.ok and before.code != "audit_chain_unkeyed":
            return before
        audit_keys.create_chain_key(paths, head.seq, head.last_hash)
    return verify(session, paths=paths, write_checkpoint=True)


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
