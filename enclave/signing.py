"""Ed25519 signatures for decisions and certificates (R-EXP-6, R-SEC-9, R-LIFE-4).

Keys live in the vault, one file per signer, readable by the service account alone. Signatures
and public keys travel as hex text so they can sit in JSON manifests and audit details.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from enclave.errors import BadInput

SIGNER_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
ENCLAVE_SIGNER = "enclave"


def key_path(keys_dir: Path, signer: str) -> Path:
    if not SIGNER_PATTERN.fullmatch(signer):
        raise BadInput("signer_invalid", f"Invalid signer name: {signer!r}", f"签名者名称无效：{signer!r}")
    return keys_dir / f"{signer}.ed25519"


def load_or_create_key(keys_dir: Path, signer: str = ENCLAVE_SIGNER) -> Ed25519PrivateKey:
    """The signer's private key, created on first use with mode 0600."""
    path = key_path(keys_dir, signer)
    if path.exists():
        return Ed25519PrivateKey.from_private_bytes(path.read_bytes())
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(raw)
    os.replace(tmp, path)
    return key


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return key.sign(message).hex()


def verify(public_hex: str, message: bytes, signature_hex: str) -> bool:
    """True when ``signature_hex`` is the holder of ``public_hex`` signing ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(signature_hex), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True
