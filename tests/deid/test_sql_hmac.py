"""The HMAC-SHA256 that preparation computes in DuckDB SQL is the real one (RFC 2104, RFC 4231).

Pseudonyms, per-person offsets and jitter, and ledger subjects are all this SQL, evaluated per
distinct person inside the engine; Python's ``hmac`` is the reference.
"""

from __future__ import annotations

import hashlib
import hmac
import random

import duckdb
import pytest

from enclave import ledger
from enclave.deid.dates import (
    JITTER_DAYS_PARAM,
    person_jitter,
    person_jitter_sql,
    person_offset,
    person_offset_sql,
)
from enclave.deid.pseudonym import (
    BLOCK_SIZE,
    hmac_blob_sql,
    hmac_hex,
    hmac_hex_sql,
    key_params,
    pad_key,
    pseudonym,
    pseudonym_sql,
)

# RFC 4231 section 4: key, data, HMAC-SHA-256 (test case 5, a truncated output, does not apply).
RFC_4231 = {
    1: (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    2: (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    3: (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    4: (
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    6: (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    7: (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data. The key "
        b"needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
}


def sql_values(sql: str, params: dict[str, object]) -> list[object]:
    return [row[0] for row in duckdb.execute(sql, params).fetchall()]


@pytest.mark.parametrize("case", sorted(RFC_4231))
def test_rfc_4231_vectors(case: int) -> None:
    key, data, expected = RFC_4231[case]
    got = duckdb.execute(f"SELECT {hmac_blob_sql('$m', 'k')}", {"m": data, **pad_key("k", key)}).fetchone()
    assert got is not None and got[0] == expected == hmac.new(key, data, hashlib.sha256).hexdigest()


def test_a_key_longer_than_the_block_is_hashed_first() -> None:
    long_key = b"\xaa" * 131
    assert len(long_key) > BLOCK_SIZE
    assert pad_key("k", long_key) == pad_key("k", hashlib.sha256(long_key).digest())
    assert key_params("k", long_key) == pad_key("k", long_key)  # project keys may be long too


def test_short_keys_are_refused_for_project_secrets() -> None:
    with pytest.raises(ValueError):
        key_params("k", bytes(15))


def _messages(draw: random.Random) -> list[str | None]:
    """Empty, ASCII, quotes, non-ASCII (CJK, accents, emoji, combining marks), block-sized and long."""
    fixed = [
        "",
        " ",
        "0",
        "42",
        "-7",
        "张三",
        "Zoë",
        "e\u0301",
        "😀",
        "o'brien",
        'a"b',
        "x" * 55,
        "y" * 56,
        "z" * 200,
    ]
    alphabet = "abcXYZ019 _-'\"张三李四éüß😀\u0301\t"
    randoms = ["".join(draw.choice(alphabet) for _ in range(draw.randrange(0, 90))) for _ in range(300)]
    return [*fixed, *randoms, None]


@pytest.mark.parametrize("key_length", [16, 32, 64, 65, 131])
def test_sql_matches_python_over_a_column(key_length: int) -> None:
    # Many rows in one query, as preparation evaluates it: the vectorised path, NULL included.
    draw = random.Random(key_length)
    key = bytes(draw.randrange(256) for _ in range(key_length))
    messages = _messages(draw)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(messages)))
    rows = con.execute(
        f"SELECT v, {hmac_hex_sql('v', 'k')}, {pseudonym_sql('v', 'k')} FROM t ORDER BY i",
        key_params("k", key),
    ).fetchall()
    assert [v for v, _, _ in rows] == messages
    for value, digest, alias in rows:
        if value is None:  # NULL stays NULL: no hash, no pseudonym
            assert digest is None and alias is None
        else:
            assert (
                digest
                == hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
                == hmac_hex(key, value)
            )
            assert alias == pseudonym(key, value)


def test_sql_matches_python_for_integer_keys() -> None:
    key = bytes(range(40))
    rows = duckdb.execute(
        f"SELECT x, {pseudonym_sql('x', 'k')} FROM (SELECT unnest([0, 1, -1, 2147483648, NULL]) AS x)",
        key_params("k", key),
    ).fetchall()
    for value, alias in rows:
        assert alias == (None if value is None else pseudonym(key, value))


def test_offsets_jitter_and_ledger_subjects_match_python() -> None:
    draw = random.Random(7)
    key, ledger_key = (
        bytes(draw.randrange(256) for _ in range(32)),
        bytes(draw.randrange(256) for _ in range(32)),
    )
    messages = _messages(draw)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(messages)))
    rows = con.execute(
        f"SELECT v, {person_offset_sql('v', 'k')}, {person_jitter_sql('v', 'k')}, {ledger.subject_sql('v')} "
        "FROM t ORDER BY i",
        {**key_params("k", key), JITTER_DAYS_PARAM: 7, **ledger.subject_params(ledger_key)},
    ).fetchall()
    for value, offset, jitter, subject in rows:
        if value is None:
            assert (offset, jitter, subject) == (None, None, None)
            continue
        digest = hmac_hex(key, value)
        assert offset == person_offset(digest)
        assert jitter == person_jitter(digest, 7)
        assert subject == ledger.subject_hash(ledger_key, value)
