"""The committee's signing keys, shared by export votes and application countersignatures (R-APP-7, T2).

A member signs with a **server-held** key (in the vault, the default for small sites) or, once they
have registered their own public key, only with that **reviewer-held** key: the enclave then cannot
sign for them. The enclave's own key signs decisions and the registry's lines (``enclave_sign``),
each for a named purpose, so a signature made for one purpose never verifies for another.

Trust in a registration comes only from an append-only file in the vault, which write access to the
database cannot change; ``export_reviewer_keys`` is its mirror for listing. Each line is
countersigned by the enclave key and also lists the server-held export votes the reviewer had cast
until then: those keep counting, and no later (or backdated) server-held vote in their name does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from enclave import signing
from enclave.audit import canonical_json
from enclave.config import Paths
from enclave.db.models import ReviewerKey
from enclave.errors import Forbidden

SERVER_HELD = "server-held"
REVIEWER_HELD = "reviewer-held"
REGISTRATION_PURPOSE = "reviewer-key"


def keys_dir(paths: Paths) -> Path:
    return paths.vault / "keys"


def reviewer_public_key(paths: Paths, reviewer: str) -> str | None:
    """The public half of ``reviewer``'s server-held key, or ``None`` if the vault holds none."""
    path = signing.key_path(keys_dir(paths), reviewer)
    if not path.exists():
        return None
    return signing.public_key_hex(signing.load_or_create_key(keys_dir(paths), reviewer))


def _enclave_key(paths: Paths) -> Ed25519PrivateKey:
    return signing.load_or_create_key(keys_dir(paths), signing.ENCLAVE_SIGNER)


def _purposed(purpose: str, body: dict[str, Any]) -> bytes:
    return canonical_json({"purpose": purpose, "body": body}).encode("utf-8")


def enclave_signed(paths: Paths, purpose: str, body: dict[str, Any], signature: object) -> bool:
    """``signature`` is the enclave key's over ``body`` for ``purpose`` (domain-separated)."""
    public = signing.public_key_hex(_enclave_key(paths))
    return isinstance(signature, str) and signing.verify(public, _purposed(purpose, body), signature)


def enclave_sign(paths: Paths, purpose: str, body: dict[str, Any]) -> str:
    """The enclave key's signature over ``body`` for ``purpose``."""
    return signing.sign(_enclave_key(paths), _purposed(purpose, body))


# ---- reviewer-held keys: the registry in the vault ---------------------------------------------


@dataclass(frozen=True)
class Registration:
    """One line of the registry; ``public_key`` is "" for a line that does not verify (matches no key)."""

    reviewer: str
    public_key: str
    registered_at: str
    registered_by: str
    server_held_votes: frozenset[str]

    @property
    def fingerprint(self) -> str:
        return signing.fingerprint(self.public_key) if self.public_key else ""


def registry_path(paths: Paths) -> Path:
    return keys_dir(paths) / "registered-keys.jsonl"


def registration_body(row: ReviewerKey, server_held_votes: list[str]) -> dict[str, Any]:
    """What a registry line says (and the enclave signs) about ``row``."""
    return {
        "reviewer": row.reviewer,
        "public_key": row.public_key,
        "registered_at": row.registered_at,
        "registered_by": row.registered_by,
        "server_held_votes": sorted(server_held_votes),
    }


def append_registration(paths: Paths, line: dict[str, Any]) -> None:
    """Append one signed line to the registry, synced to disk before returning."""
    path = registry_path(paths)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (canonical_json(line) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _parse_registration(paths: Paths, raw: str) -> Registration | None:
    try:
        line = json.loads(raw)
        body = {k: v for k, v in line.items() if k != "signature"}
        reviewer = str(body["reviewer"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    valid = enclave_signed(paths, REGISTRATION_PURPOSE, body, line.get("signature"))
    return Registration(
        reviewer=reviewer,
        public_key=str(body.get("public_key", "")) if valid else "",
        registered_at=str(body.get("registered_at", "")),
        registered_by=str(body.get("registered_by", "")),
        server_held_votes=frozenset(body.get("server_held_votes") or ()) if valid else frozenset(),
    )


def anchored_registrations(paths: Paths, reviewer: str) -> list[Registration]:
    """The registry's lines for ``reviewer``, oldest first; each key was in force until the next one."""
    path = registry_path(paths)
    if not path.exists():
        return []
    found = [_parse_registration(paths, raw) for raw in path.read_text("utf-8").splitlines() if raw.strip()]
    return sorted((r for r in found if r and r.reviewer == reviewer), key=lambda r: r.registered_at)


def registered_key(paths: Paths, reviewer: str) -> Registration | None:
    """The reviewer's key in force now, or ``None`` while they use the server-held key."""
    rows = anchored_registrations(paths, reviewer)
    return rows[-1] if rows else None


def signing_key(
    paths: Paths,
    user: str,
    own: Ed25519PrivateKey | None,
    *,
    not_registered: Forbidden,
    key_required: Forbidden,
    mismatch_code: str,
) -> tuple[Ed25519PrivateKey, str]:
    """The key ``user`` must sign with now, and who holds it: the server-held one while ``user`` has no
    registered key (``not_registered`` if ``own`` is given then), else ``own``, which must be given
    (``key_required``) and be the registered one (``mismatch_code``). Export votes and application
    countersignatures share this rule; each says its refusals in its own words."""
    current = registered_key(paths, user)
    if current is None:
        if own is not None:
            raise not_registered
        return signing.load_or_create_key(keys_dir(paths), user), SERVER_HELD
    if own is None:
        raise key_required
    if signing.public_key_hex(own) != current.public_key:
        raise Forbidden(
            mismatch_code,
            f"This is not {user}'s registered key (fingerprint {current.fingerprint[:16]}…)",
            f"这不是 {user} 的登记密钥（指纹 {current.fingerprint[:16]}…）",
        )
    return own, REVIEWER_HELD
