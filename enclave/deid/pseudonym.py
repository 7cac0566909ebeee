"""Keyed pseudonyms computed inside DuckDB: a real HMAC-SHA256, vectorised (R-PREP-11, R-PREP-26).

HMAC(K, m) = SHA256((K' ^ opad) || SHA256((K' ^ ipad) || m)), K' the key padded with zeros to the
64-byte block (a longer key is hashed first, RFC 2104). DuckDB's ``sha256`` takes a BLOB and returns
lowercase hex, so the inner digest goes back to its 32 raw bytes with ``unhex`` before the outer
hash. The two padded keys are bound as BLOB parameters (``$<name>_ipad``, ``$<name>_opad``) and the
key never appears in SQL text, in a view definition or in a log. The value is hashed as the UTF-8
text of ``CAST(value AS VARCHAR)``, which is what :func:`hmac_hex` does in Python for look-ups; a
NULL value has a NULL hash (and so a NULL pseudonym), never the hash of some text.

Preparation computes these once per distinct person (``enclave.prepare.relations.person_maps``),
all inside the engine, vectorised and on every core: a pseudonym never makes a round trip to Python.

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


MIN_KEY_BYTES = 16


def pad_key(name: str, key: bytes) -> dict[str, bytes]:
    """``$<name>_ipad`` and ``$<name>_opad`` for any key, exactly as RFC 2104 pads it: a key longer
    than the block is replaced by its SHA-256, then the key is padded with zeros to the block."""
    if len(key) > BLOCK_SIZE:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(BLOCK_SIZE, b"\x00")
    return {
        f"{name}_ipad": bytes(b ^ 0x36 for b in padded),
        f"{name}_opad": bytes(b ^ 0x5C for b in padded),
    }


def key_params(name: str, key: bytes) -> dict[str, bytes]:
    """The bound parameters that :func:`hmac_hex_sql` with the same ``name`` expects; the key must
    have at least 16 bytes (a longer key than the 64-byte block is hashed first, as in RFC 2104)."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"an HMAC key must have at least {MIN_KEY_BYTES} bytes")
    return pad_key(name, key)


def hmac_blob_sql(message_sql: str, key_param: str) -> str:
    """SQL for the lowercase hex HMAC-SHA256 of the BLOB ``message`` under the bound key."""
    inner = f"unhex(sha256(${key_param}_ipad || {message_sql}))"  # the inner digest, 32 raw bytes
    return f"sha256(${key_param}_opad || {inner})"


def hmac_hex_sql(value_sql: str, key_param: str) -> str:
    """SQL for the lowercase hex HMAC-SHA256 of ``CAST(value AS VARCHAR)`` under the bound key."""
    return hmac_blob_sql(f"encode(CAST({value_sql} AS VARCHAR))", key_param)


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
