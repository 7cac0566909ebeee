"""Password hashing and the password policy of local accounts (R-SEC-1).

Hashes are ``hashlib.scrypt`` with a per-password random salt, stored as one self-describing
string (``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>``) so the cost can be raised later without
breaking old hashes. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata

from enclave.errors import BadInput, Reason

SCHEME = "scrypt"
COST_N = 2**14
BLOCK_R = 8
PARALLEL_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_LENGTH = 12  # R-SEC-1: password complexity (the floor)
MAX_LENGTH = 1024  # longer input is refused before hashing (no hashing-cost attack)
MIN_CHARACTER_CLASSES = 3  # of: lower case, upper case, digits, symbols, letters of other scripts


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    data = unicodedata.normalize("NFC", password).encode("utf-8")
    return hashlib.scrypt(data, salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES, maxmem=2**26)


def _encode(salt: bytes, digest: bytes) -> str:
    return f"{SCHEME}${COST_N}${BLOCK_R}${PARALLEL_P}${salt.hex()}${digest.hex()}"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    return _encode(salt, _scrypt(password, salt, COST_N, BLOCK_R, PARALLEL_P))


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME or len(password) > MAX_LENGTH:
            return False
        computed = _scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, bytes.fromhex(digest))


# Verified against for unknown user names, so a login costs the same scrypt work whether or not
# the account exists. Same parameters as a real hash; the digest is random, so nothing matches it
# (and nothing is hashed at import).
DUMMY_HASH = _encode(secrets.token_bytes(SALT_BYTES), secrets.token_bytes(HASH_BYTES))


def _classes(password: str) -> int:
    """How many kinds of character: ASCII lower, ASCII upper, digits, symbols, other scripts (汉字)."""
    return sum(
        [
            any("a" <= ch <= "z" for ch in password),
            any("A" <= ch <= "Z" for ch in password),
            any(ch.isdigit() for ch in password),
            any(not ch.isalnum() for ch in password),
            any(ch.isalpha() and not ch.isascii() for ch in password),
        ]
    )


def policy_reasons(username: str, password: str) -> list[Reason]:
    """Every rule of the password policy that ``password`` breaks (empty when it is acceptable)."""
    reasons = []
    if len(password) < MIN_LENGTH:
        reasons.append(
            Reason(
                "password_too_short",
                f"The password must have at least {MIN_LENGTH} characters",
                f"密码至少需要 {MIN_LENGTH} 个字符",
            )
        )
    if len(password) > MAX_LENGTH:
        reasons.append(
            Reason(
                "password_too_long",
                f"The password must have at most {MAX_LENGTH} characters",
                f"密码最多 {MAX_LENGTH} 个字符",
            )
        )
    if username and username.casefold() in password.casefold():
        reasons.append(
            Reason(
                "password_contains_username",
                "The password must not contain the user name",
                "密码不得包含用户名",
            )
        )
    if _classes(password) < MIN_CHARACTER_CLASSES:
        reasons.append(
            Reason(
                "password_too_simple",
                "Use at least three of: lower case, upper case, digits, symbols, letters of other scripts",
                "密码需至少包含以下三类字符：小写字母、大写字母、数字、符号、其他文字（如汉字）",
            )
        )
    if password != password.strip() or any(unicodedata.category(ch) == "Cc" for ch in password):
        reasons.append(
            Reason(
                "password_has_control_characters",
                "The password must not start or end with spaces or contain control characters",
                "密码不得以空格开头或结尾，也不得包含控制字符",
            )
        )
    return reasons


def check_policy(username: str, password: str) -> None:
    """``BadInput("password_weak")`` naming each broken rule; nothing when the password is acceptable."""
    reasons = policy_reasons(username, password)
    if reasons:
        raise BadInput(
            "password_weak",
            "The password does not meet the password policy",
            "密码不符合密码策略",
            reasons=reasons,
        )
