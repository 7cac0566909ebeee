"""Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP), with the standard library only.

Authenticator apps use SHA-1, 6 digits and a 30 s step; the verifier accepts one step either side
for clock drift (R-SEC-1: a second factor).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import urllib.parse

STEP_SECONDS = 30
DIGITS = 6
SECRET_BYTES = 20  # 160 bits, RFC 4226's recommendation for SHA-1


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def to_base32(secret: bytes) -> str:
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def from_base32(text: str) -> bytes:
    cleaned = text.replace(" ", "").upper()
    return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))


def hotp(secret: bytes, counter: int, *, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226: HMAC of the 8-byte counter, dynamically truncated to ``digits`` decimal digits."""
    mac = hmac.new(secret, struct.pack(">Q", counter), getattr(hashlib, digest)).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def time_step(at: float, step: int = STEP_SECONDS) -> int:
    return int(at // step)


def totp(secret: bytes, at: float, *, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 6238: HOTP of the number of 30 s steps since the Unix epoch."""
    return hotp(secret, time_step(at), digits=digits, digest=digest)


def matching_step(secret: bytes, code: str, at: float, *, window: int = 1) -> int | None:
    """The time step (within ±``window`` of ``at``) whose code is ``code``, or None.

    Every candidate is compared in constant time, so the answer's timing does not reveal which
    step matched.
    """
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = time_step(at)
    found = None
    for step in range(now - window, now + window + 1):
        if hmac.compare_digest(hotp(secret, step), code):
            found = step
    return found


def provisioning_uri(secret: bytes, account: str, issuer: str = "Enclave") -> str:
    """The ``otpauth://`` URI an authenticator app reads (usually from a QR code)."""
    label = urllib.parse.quote(f"{issuer}:{account}")
    query = urllib.parse.urlencode(
        {
            "secret": to_base32(secret),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        }
    )
    return f"otpauth://totp/{label}?{query}"
