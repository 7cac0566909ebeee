"""Ed25519 signatures for decisions and certificates (R-EXP-6, R-SEC-9, R-LIFE-4).

Server-held keys live in the vault, one file per signer, readable by the service account alone.
A reviewer may instead hold their own key (``generate_key_file``) and register its public half; it
is then read from the reviewer's file on each use and never stored by the enclave. Signatures and
public keys travel as hex text so they can sit in JSON manifests and audit details.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
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


def fingerprint(public_hex: str) -> str:
    """The sha256 of the raw public key, hex: what manifests and votes name a key by."""
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()


def _key_error(code: str, en: str, zh: str) -> BadInput:
    return BadInput(code, en, zh)


def parse_public_key(data: bytes) -> str:
    """A public Ed25519 key from PEM (``openssl pkey -pubout``) or 64 hex digits, as hex."""
    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(text)
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError("not Ed25519")
            return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(text.decode("ascii")))
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    except (ValueError, UnicodeDecodeError, UnsupportedAlgorithm):
        raise _key_error(
            "public_key_invalid",
            "Not an Ed25519 public key: give a PEM file or 64 hex digits",
            "不是 Ed25519 公钥：请提供 PEM 文件或 64 位十六进制数字",
        ) from None


def generate_key_file(path: Path) -> Ed25519PrivateKey:
    """A new private key written to ``path`` (PEM, mode 0600); an existing file is never replaced."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise _key_error(
            "key_file_exists", f"{path} exists: a key is never overwritten", f"{path} 已存在：不会覆盖密钥"
        ) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def load_key_file(path: Path) -> Ed25519PrivateKey:
    """A reviewer's own private key (PEM, or 32 raw bytes), refused if others may read the file."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as error:
        raise _key_error(
            "key_file_unreadable",
            f"Cannot read {path}: {error.strerror}",
            f"无法读取 {path}：{error.strerror}",
        ) from None
    if stat.S_IMODE(mode) & 0o077:
        raise _key_error(
            "key_file_permissions",
            f"{path} may be read by others: chmod 600 it first",
            f"{path} 可被他人读取：请先执行 chmod 600",
        )
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise _key_error(
            "key_file_invalid",
            f"{path} is not an unencrypted Ed25519 private key",
            f"{path} 不是未加密的 Ed25519 私钥",
        )
    return key


def public_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
