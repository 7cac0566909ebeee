"""Keyed pseudonyms computed inside DuckDB: a real HMAC-SHA256, vectorised (R-PREP-11, R-PREP-26).

HMAC(K, m) = SHA256((K ^ opad) || SHA256((K ^ ipad) || m)). DuckDB has ``sha256`` over BLOBs, so
the two padded keys are bound as BLOB parameters (``$<name>_ipad``, ``$<name>_opad``) and the key
never appears in SQL text, in a view definition or in a log. The value is hashed as the UTF-8 text
of ``CAST(value AS VARCHAR)``, which is what :func:`hmac_hex` does in Python for look-ups.

    >>> import duckdb
    >>> key = bytes(32)
    >>> sql = "SELECT " + hmac_hex_sql("'42'", "k")
    >>> duckdb.execute(sql, key_params('k', key)).fetchone()[0] == hmac_hex(key, '42')
    True
"""

from __future__ import annotations

import hashlib
import hmac

BLOCK_SIZE = 64  # SHA-256 block size in bytes
PSEUDONYM_PREFIX = "p_"
PSEUDONYM_HEX_CHARS = 16  # 64 bits: a collision among 10^6 persons has probability ~3e-8


def key_params(name: str, key: bytes) -> dict[str, bytes]:
    """The bound parameters that :func:`hmac_hex_sql` with the same ``name`` expects."""
    if not 16 <= len(key) <= BLOCK_SIZE:
        raise ValueError("an HMAC key must be 16..64 bytes")
    padded = key.ljust(BLOCK_SIZE, b"\x00")
    return {
        f"{name}_ipad": bytes(b ^ 0x36 for b in padded),
        f"{name}_opad": bytes(b ^ 0x5C for b in padded),
    }


def hmac_hex_sql(value_sql: str, key_param: str) -> str:
    """SQL for the lowercase hex HMAC-SHA256 of ``CAST(value AS VARCHAR)`` under the bound key."""
    message = f"encode(CAST({value_sql} AS VARCHAR))"
    inner = f"unhex(sha256(${key_param}_ipad || {message}))"
    return f"sha256(${key_param}_opad || {inner})"


def pseudonym_sql(column: str, key_param: str) -> str:
    """SQL for ``'p_' + 16 hex`` of the keyed hash of ``column`` (NULL stays NULL)."""
    return f"('{PSEUDONYM_PREFIX}' || left({hmac_hex_sql(column, key_param)}, {PSEUDONYM_HEX_CHARS}))"


def hmac_hex(key: bytes, value: str) -> str:
    """The Python twin of :func:`hmac_hex_sql`."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonym(key: bytes, value: object) -> str:
    """The Python twin of :func:`pseudonym_sql` (for tests and look-ups)."""
    return PSEUDONYM_PREFIX + hmac_hex(key, str(value))[:PSEUDONYM_HEX_CHARS]


def derive_key(master: bytes, purpose: str) -> bytes:
    """A sub-key for one purpose, so pseudonyms, date offsets and the twin never share a key."""
    return hmac.new(master, b"enclave/" + purpose.encode("ascii"), hashlib.sha256).digest()
