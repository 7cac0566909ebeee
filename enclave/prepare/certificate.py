"""Signed destruction certificates (R-LIFE-4, R-LIFE-5): what was destroyed, with hashes and times.

The certificate body is canonical JSON signed with the enclave's Ed25519 key; the file carries the
public key and the signature, and the lead records the summary in the hash-chained audit log, so a
certificate can be checked on its own and against the log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enclave import signing
from enclave.audit import canonical_json, now_iso

CERTIFICATE_FORMAT = "enclave-destruction-certificate/1"


@dataclass(frozen=True)
class DestroyedItem:
    """One destroyed object: a file (with its sha256 and size), a directory, a secret, a volume."""

    kind: str
    name: str
    sha256: str | None = None
    bytes: int | None = None
    destroyed_at: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "destroyed_at": self.destroyed_at,
        }

    @classmethod
    def coerce(cls, value: DestroyedItem | Mapping[str, Any]) -> DestroyedItem:
        """Accept an item or a mapping with at least ``kind`` and ``name`` (from volume destroyers)."""
        if isinstance(value, DestroyedItem):
            return value
        return cls(
            kind=str(value["kind"]),
            name=str(value["name"]),
            sha256=value.get("sha256"),
            bytes=value.get("bytes"),
            destroyed_at=str(value.get("destroyed_at") or now_iso()),
        )


@dataclass(frozen=True)
class DestructionCertificate:
    """A signed record of one project's destruction."""

    project_id: str
    actor: str
    started_at: str
    completed_at: str
    items: list[DestroyedItem]
    public_key: str
    signature: str
    path: Path

    def body(self) -> dict[str, Any]:
        return certificate_body(self.project_id, self.actor, self.started_at, self.completed_at, self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.body(),
            "public_key": self.public_key,
            "signature": self.signature,
            "path": str(self.path),
        }


def certificate_body(
    project_id: str, actor: str, started_at: str, completed_at: str, items: list[DestroyedItem]
) -> dict[str, Any]:
    return {
        "format": CERTIFICATE_FORMAT,
        "project": project_id,
        "actor": actor,
        "started_at": started_at,
        "completed_at": completed_at,
        "items": [item.to_dict() for item in items],
    }


def _message(body: Mapping[str, Any]) -> bytes:
    return canonical_json(dict(body)).encode("utf-8")


def sign_body(keys_dir: Path, body: dict[str, Any]) -> tuple[str, str]:
    """(public key hex, signature hex) of ``body`` under the enclave key."""
    key = signing.load_or_create_key(keys_dir)
    return signing.public_key_hex(key), signing.sign(key, _message(body))


def verify_certificate(path: Path, expected_public_key: str | None = None) -> bool:
    """True when the file is a well-formed certificate whose signature matches its body (and, when
    ``expected_public_key`` is given, was made with that key). Never raises on bad input."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        public_key, signature = document.pop("public_key"), document.pop("signature")
        document.pop("path", None)
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return False
    if not isinstance(public_key, str) or not isinstance(signature, str):
        return False
    if document.get("format") != CERTIFICATE_FORMAT:
        return False
    if expected_public_key is not None and public_key != expected_public_key:
        return False
    return signing.verify(public_key, _message(document), signature)
