"""The audit chain's keys, kept in the vault and never in the state database (R-AUD-7).

``vault/audit/chain-key.json`` holds the HMAC-SHA256 key every record's hash is keyed with, so
someone who can write the database but not read the vault cannot recompute a rewritten chain.
It also says from which record on the chain is keyed (``since_seq``: 1 on a fresh install) and,
for a chain written before keying, the last old record's hash (the anchor), which pins that part.
``vault/audit/checkpoint.ed25519`` signs the checkpoints (``enclave.audit_checkpoints``).
Both files are 0600 in a 0700 folder and are created once, first writer wins.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from enclave.config import Paths
from enclave.errors import BadInput
from enclave.files import private_dir, write_private

KEY_BYTES = 32
CHAIN_KEY_FILE = "chain-key.json"
CHECKPOINT_KEY_FILE = "checkpoint.ed25519"
CHAIN_KEY_VERSION = 1

_cache: dict[Path, ChainKey] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class ChainKey:
    """The chain's MAC key and where keying starts. ``repr`` never shows the key."""

    key: bytes = field(repr=False)
    since_seq: int
    anchor_seq: int
    anchor_hash: str

    def mac(self, payload: bytes) -> str:
        return hmac.new(self.key, payload, hashlib.sha256).hexdigest()


def audit_dir(paths: Paths) -> Path:
    return paths.vault / "audit"


def chain_key_path(paths: Paths) -> Path:
    return audit_dir(paths) / CHAIN_KEY_FILE


def checkpoint_key_path(paths: Paths) -> Path:
    return audit_dir(paths) / CHECKPOINT_KEY_FILE


def _unreadable(path: Path) -> BadInput:
    return BadInput(
        "audit_key_invalid",
        f"The audit key file {path} is damaged",
        f"审计密钥文件 {path} 已损坏",
    )


def load_chain_key(paths: Paths, *, cached: bool = False) -> ChainKey | None:
    """The vault's chain key, or None when there is none yet. ``cached`` saves re-reading it on
    every append (the file never changes once written)."""
    path = chain_key_path(paths)
    if cached and path in _cache:
        return _cache[path]
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise _unreadable(path) from error
    try:
        key = ChainKey(
            bytes.fromhex(document["key"]),
            int(document["since_seq"]),
            int(document["anchor_seq"]),
            str(document["anchor_hash"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise _unreadable(path) from error
    if len(key.key) != KEY_BYTES or key.since_seq != key.anchor_seq + 1 or key.since_seq < 1:
        raise _unreadable(path)
    with _cache_lock:
        _cache[path] = key
    return key


def create_chain_key(paths: Paths, anchor_seq: int, anchor_hash: str) -> ChainKey:
    """A new chain key keying every record after ``anchor_seq``; an existing key is kept and returned.

    Call it while holding the chain's write lock, so no record after the anchor is written unkeyed.
    """
    private_dir(audit_dir(paths))
    document = {
        "version": CHAIN_KEY_VERSION,
        "key": secrets.token_bytes(KEY_BYTES).hex(),
        "since_seq": anchor_seq + 1,
        "anchor_seq": anchor_seq,
        "anchor_hash": anchor_hash,
        "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
    }
    write_private(chain_key_path(paths), json.dumps(document, sort_keys=True).encode("utf-8"), replace=False)
    key = load_chain_key(paths)
    assert key is not None  # just written, or written by a concurrent creator
    return key


def load_checkpoint_key(paths: Paths, *, create: bool = False) -> Ed25519PrivateKey | None:
    """The checkpoint signing key (raw Ed25519, as ``enclave.signing`` stores keys)."""
    path = checkpoint_key_path(paths)
    if create and not path.exists():
        private_dir(audit_dir(paths))
        raw = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        write_private(path, raw, replace=False)
    try:
        return Ed25519PrivateKey.from_private_bytes(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise _unreadable(path) from error
