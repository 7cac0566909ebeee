"""Signed checkpoints of the audit chain, kept outside the state database (R-AUD-7).

A checkpoint says "the chain had ``seq`` records and the last one's hash was ``hash``", signed with
the vault's checkpoint key (Ed25519). Each is one JSON line appended to
``vault/audit/checkpoints.jsonl`` and, when the export-review outbox is an S3 bucket, also put there
(``_audit/checkpoints/<seq>.json`` and ``_audit/checkpoints/latest.json``; ``_`` cannot start a
project id, so the keys never meet a release). ``enclave.audit.verify`` checks the chain against the
newest checkpoint of both: deleting records below it, or rewriting any record up to it, is found
even by someone who rewrote the database consistently. The public key
(``enclave audit public-key``) is all an offline check of a checkpoint line needs.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from enclave import audit_keys
from enclave.config import Paths
from enclave.errors import EnclaveError, NotFound
from enclave.files import PRIVATE_FILE, private_dir

LOG_FILE = "checkpoints.jsonl"
S3_PREFIX = "_audit/checkpoints"
FORMAT_VERSION = 1


class CheckpointError(EnclaveError):
    """The checkpoints themselves cannot be trusted or read; ``verify`` reports its code."""


@dataclass(frozen=True)
class Checkpoint:
    """A signed ``(seq, hash)`` of the chain."""

    seq: int
    hash: str
    ts: str
    public_key: str
    signature: str

    def to_line(self) -> str:
        return json.dumps({"v": FORMAT_VERSION, **asdict(self)}, sort_keys=True) + "\n"


def _message(seq: int, hash_: str, ts: str) -> bytes:
    body = {"v": FORMAT_VERSION, "seq": seq, "hash": hash_, "ts": ts}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def log_path(paths: Paths) -> Path:
    return audit_keys.audit_dir(paths) / LOG_FILE


def public_key(paths: Paths) -> str | None:
    """The checkpoint key's public half (hex), or None before the first checkpoint."""
    key = audit_keys.load_checkpoint_key(paths)
    return _public_hex(key) if key else None


def parse_line(line: str, public_hex: str) -> Checkpoint | None:
    """The checkpoint on ``line`` if it is well formed and signed by ``public_hex``; never raises."""
    try:
        document = json.loads(line)
        checkpoint = Checkpoint(
            int(document["seq"]),
            str(document["hash"]),
            str(document["ts"]),
            str(document["public_key"]),
            str(document["signature"]),
        )
        if document.get("v") != FORMAT_VERSION or checkpoint.public_key != public_hex:
            return None
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(checkpoint.signature), _message(checkpoint.seq, checkpoint.hash, checkpoint.ts)
        )
    except (InvalidSignature, ValueError, KeyError, TypeError, AttributeError):
        return None
    return checkpoint


def _invalid(where: str) -> CheckpointError:
    return CheckpointError(
        "audit_checkpoint_invalid",
        f"A checkpoint is not signed by the vault's checkpoint key ({where})",
        f"检查点的签名与保险库的检查点密钥不符（{where}）",
    )


def read_local(paths: Paths) -> list[Checkpoint]:
    """Every checkpoint in the vault's log; any line that does not verify is an error."""
    path = log_path(paths)
    if not path.exists():
        return []
    public_hex = public_key(paths)
    if public_hex is None:
        raise CheckpointError(
            "audit_key_missing",
            "The vault has checkpoints but no checkpoint key",
            "保险库中有检查点，但缺少检查点密钥",
        )
    checkpoints = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        checkpoint = parse_line(line, public_hex)
        if checkpoint is None:
            raise _invalid(f"{path.name} line {number}")
        checkpoints.append(checkpoint)
    return checkpoints


def _remote(paths: Paths) -> Any | None:
    """The S3 outbox when the export-review settings name one, else None (a local outbox folder
    would sit on the same host as the vault, so it adds nothing)."""
    from export_review.outbox import outbox_for
    from export_review.policy import load_settings

    settings = load_settings(paths).outbox
    return outbox_for(settings, paths) if settings.url else None


def _unavailable(error: Exception) -> CheckpointError:
    return CheckpointError(
        "audit_checkpoint_unavailable",
        f"The S3 copy of the audit checkpoints cannot be read: {type(error).__name__}",
        f"无法读取审计检查点在 S3 中的副本：{type(error).__name__}",
    )


def read_remote_latest(paths: Paths) -> Checkpoint | None:
    """The newest checkpoint in the S3 outbox (None when there is no S3 outbox or no checkpoint)."""
    outbox = _remote(paths)
    if outbox is None:
        return None
    try:
        data = outbox.get(f"{S3_PREFIX}/latest.json")
    except NotFound:
        return None
    except Exception as error:  # network, credentials, bucket: the copy that should be there is not
        raise _unavailable(error) from error
    public_hex = public_key(paths)
    checkpoint = parse_line(data.decode("utf-8", "replace"), public_hex) if public_hex else None
    if checkpoint is None:
        raise _invalid(outbox.location(f"{S3_PREFIX}/latest.json"))
    return checkpoint


def write(paths: Paths, seq: int, hash_: str) -> Checkpoint:
    """Sign ``(seq, hash)``, append it to the vault's log, then copy it to the S3 outbox if any."""
    key = audit_keys.load_checkpoint_key(paths, create=True)
    assert key is not None
    ts = datetime.now(UTC).isoformat(timespec="microseconds")
    checkpoint = Checkpoint(seq, hash_, ts, _public_hex(key), key.sign(_message(seq, hash_, ts)).hex())
    private_dir(audit_keys.audit_dir(paths))
    fd = os.open(log_path(paths), os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    with os.fdopen(fd, "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # one whole line per writer, however many processes append
        handle.write(checkpoint.to_line().encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    outbox = _remote(paths)
    if outbox is not None:
        data = checkpoint.to_line().encode("utf-8")
        outbox.put(f"{S3_PREFIX}/{seq:012d}.json", data)
        try:
            current = json.loads(outbox.get(f"{S3_PREFIX}/latest.json")).get("seq", 0)
        except (NotFound, ValueError, AttributeError):
            current = 0
        if not isinstance(current, int) or current < seq:
            outbox.put(f"{S3_PREFIX}/latest.json", data)
    return checkpoint
