"""The red-team corpus: every attack in ``attacks/*.sql`` must reveal nothing through the guard.

Each attack is one or more queries run in order in one session, and a ``decode`` expression that
turns what the guard released into the attacker's guess of a secret of the target person. It is run
in two worlds that differ only in that secret (see ``conftest.py``) and *succeeds* when the guess is
right in both. The guard passes when no attack succeeds, whatever it did to stop it: refusing a
query, suppressing a cell, or releasing only safe numbers all count the same. Judge by what is
revealed, not by whether something was refused.

Class 7 (timing through join fan-out) cannot be judged by wall time here: its decode is ``ALLOWED``,
and the attack succeeds when the guard allows every one of its queries.

The sanity test runs the attacks marked ``# sane: yes`` against plain, unguarded DuckDB over the
same Parquet files, where they must recover the secret in both worlds: a corpus whose attacks fail
even without a guard would prove nothing.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib
import inspect
import math
import numbers
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from enclave.errors import EnclaveError
from enclave.guard import check, run

from .conftest import DEFAULT_PAIR, EVENT_DATE, PAIRS, World

ATTACKS = Path(__file__).parent / "attacks"
SECRETS = ("income", "hiv", "dx", "age", "offset", "fanout")
REQUIRED = ("class", "secret", "decode")
ALLOWED = "ALLOWED"
MIN_PER_CLASS = {1: 25, 2: 25, 3: 25, 4: 25, 5: 25, 6: 25, 7: 10, 8: 10}
MIN_SANE_SHARE = 0.6
SEPARATOR = "-- next"

try:  # guard v2 keeps a differencing ledger per analyst session
    _ledger_module = importlib.import_module("enclave.guard.ledger")
except ModuleNotFoundError as missing:
    if missing.name != "enclave.guard.ledger":
        raise
    _ledger_module = None
MemoryLedger = getattr(_ledger_module, "MemoryLedger", None)
if "ledger" not in inspect.signature(run).parameters:  # the ledger module may land before run() takes it
    MemoryLedger = None


@dataclass
class Attack:
    title: str
    file: str
    queries: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def klass(self) -> int:
        return int(self.headers["class"])

    @property
    def secret(self) -> str:
        return self.headers["secret"]

    @property
    def decode(self) -> str:
        return self.headers["decode"]

    @property
    def sane(self) -> bool:
        return self.headers.get("sane", "").lower() == "yes"

    @property
    def pair(self) -> tuple[str, str]:
        return PAIRS.get(self.secret, DEFAULT_PAIR)


def load_attacks(directory: Path = ATTACKS) -> list[Attack]:
    """Every case of ``directory/*.sql``: it starts at ``# title:``; ``# key: value`` lines before its
    SQL are headers; a line ``-- next`` separates the queries of one attack."""
    attacks: list[Attack] = []
    for path in sorted(directory.glob("*.sql")):
        current: Attack | None = None
        body: list[str] = []

        def close(current: Attack | None, body: list[str]) -> None:
            if current is None:
                return
            text = "\n".join(body).strip()
            parts = [p.strip() for p in _split(text)]
            current.queries = [p for p in parts if p]
            attacks.append(current)

        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# title:"):
                close(current, body)
                current, body = Attack(title=line.split(":", 1)[1].strip(), file=path.name), []
            elif current is not None and line.startswith("# ") and ":" in line and not body:
                key, value = line[2:].split(":", 1)
                current.headers[key.strip()] = value.strip()
            elif current is not None:
                body.append(line)
        close(current, body)
    return attacks


def _split(text: str) -> list[str]:
    parts, chunk = [], []
    for line in text.splitlines():
        if line.strip() == SEPARATOR:
            parts.append("\n".join(chunk))
            chunk = []
        else:
            chunk.append(line)
    parts.append("\n".join(chunk))
    return parts


CORPUS = load_attacks()


# ---------------------------------------------------------------------------------- decoding


def _number(x: Any) -> float | None:
    """A released value as a float (bools count as 0/1; numpy and Decimal numbers too), else None."""
    if isinstance(x, numbers.Real | decimal.Decimal):
        return float(x)
    return None


def decode_namespace(r: list[list[list[Any]] | None]) -> dict[str, Any]:
    """The names a ``# decode:`` expression may use; ``r[i]`` is query i's released rows or None."""

    def rows(i: int) -> list[list[Any]]:
        return r[i] or []

    def v(i: int, row: int = 0, col: int = 0) -> Any:
        try:
            return r[i][row][col]
        except (IndexError, TypeError, KeyError):
            return None

    def cell(i: int, *key: Any, col: int = -1) -> Any:
        """Column ``col`` of the row of query i whose first columns equal ``key``."""
        for row in rows(i):
            if list(row[: len(key)]) == list(key):
                return row[col]
        return None

    def present(i: int, *key: Any) -> bool:
        return any(list(row[: len(key)]) == list(key) for row in rows(i))

    def column(i: int, col: int = 0) -> list[Any]:
        return [row[col] for row in rows(i)]

    def nums(i: int) -> list[float]:
        found = []
        for row in rows(i):
            for value in row:
                n = None if isinstance(value, bool | np.bool_) else _number(value)
                if n is not None:
                    found.append(n)
        return found

    def num(x: Any) -> float | None:
        return _number(x)

    def root(x: Any, n: float) -> float | None:
        x = _number(x)
        if x is None or not math.isfinite(x):
            return None
        return math.copysign(abs(x) ** (1.0 / n), x)

    def days(d: Any) -> int | None:
        """Days since 1970-01-01 of a date or timestamp (timestamps rounded to the nearest day)."""
        if isinstance(d, dt.datetime):
            return round((d - dt.datetime(1970, 1, 1)).total_seconds() / 86400)
        if isinstance(d, dt.date):
            return (d - dt.date(1970, 1, 1)).days
        return None

    def bits(values: list[Any]) -> int | None:
        """An integer from bits, least significant first; None if a bit is unknown."""
        if any(b is None for b in values):
            return None
        return sum(int(b) << j for j, b in enumerate(values))

    def newton(sums: list[Any]) -> list[float] | None:
        """The values x_1..x_n whose power sums p_1..p_n are ``sums`` (Newton's identities)."""
        p = [_number(s) for s in sums]
        if any(x is None for x in p):
            return None
        e = [1.0]
        for k in range(1, len(p) + 1):
            e.append(sum((-1) ** (i - 1) * e[k - i] * p[i - 1] for i in range(1, k + 1)) / k)
        coefficients = [(-1) ** k * e[k] for k in range(len(e))]
        return sorted(float(z.real) for z in np.roots(coefficients))

    def changed(i: int, j: int, col: int = -1) -> Any:
        """The group key (first column) whose value differs between queries i and j, or appears in
        only one of them; None unless exactly one such key."""
        a = {row[0]: row[col] for row in rows(i)}
        b = {row[0]: row[col] for row in rows(j)}
        keys = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
        return keys[0] if len(keys) == 1 else None

    def sub(a: Any, b: Any) -> float | None:
        a, b = _number(a), _number(b)
        return None if a is None or b is None else a - b

    def bit(x: Any, threshold: float = 0.5) -> int | None:
        x = _number(x)
        return None if x is None or math.isnan(x) else int(x > threshold)

    return {
        "r": r,
        "v": v,
        "cell": cell,
        "present": present,
        "rows": rows,
        "column": column,
        "nums": nums,
        "num": num,
        "root": root,
        "days": days,
        "bits": bits,
        "newton": newton,
        "changed": changed,
        "sub": sub,
        "bit": bit,
        "EVENT": EVENT_DATE,
        "date": dt.date,
        "math": math,
        "Counter": Counter,
    }


_BUILTINS = (abs, all, any, bool, dict, enumerate, float, int, isinstance, len, list, max, min, next, range)
SAFE_BUILTINS = {f.__name__: f for f in (*_BUILTINS, round, set, sorted, str, sum, tuple, zip)}


def guess_of(attack: Attack, results: list[list[list[Any]] | None]) -> Any:
    """The attacker's guess, or None if decoding fails in any way."""
    try:
        scope = {"__builtins__": SAFE_BUILTINS, **decode_namespace(results)}
        return eval(attack.decode, scope)  # the corpus is ours; names are in globals for comprehensions
    except Exception:
        return None


def matches(guess: Any, secret: Any) -> bool:
    if guess is None:
        return False
    if isinstance(secret, str):
        return isinstance(guess, str) and guess == secret
    value = _number(guess)
    return value is not None and math.isfinite(value) and math.isclose(value, secret, rel_tol=1e-6)


# ---------------------------------------------------------------------------------- running


def _cell(value: Any) -> Any:
    """A released value in plain Python: Decimal becomes float, numpy scalars their Python value, so
    that decodes do the same arithmetic whatever path (fetchall, Arrow) produced the rows."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _rows(rows: Any) -> list[list[Any]]:
    return [[_cell(value) for value in row] for row in rows]


def run_guarded(attack: Attack, world: World) -> list[list[list[Any]] | None]:
    """Each query through the guard, in one session; a refusal or failure of the guard is None.

    Any exception that is not an ``EnclaveError`` propagates: the guard must never crash."""
    ledger = MemoryLedger() if MemoryLedger is not None else None
    results: list[list[list[Any]] | None] = []
    for index, sql in enumerate(attack.queries):
        try:
            if ledger is not None:
                result = run(world.locked, sql, world.policy, ledger=ledger)
            else:
                result = run(world.locked, sql, world.policy)
        except EnclaveError:
            results.append(None)
            continue
        except Exception as exc:  # the guard must refuse or fail cleanly, never crash
            pytest.fail(
                f"the guard crashed on query {index} of {attack.title!r} in world {world.name}: {exc!r}",
                pytrace=True,
            )
        results.append(_rows(result.rows))
    return results


def run_plain(attack: Attack, world: World) -> list[list[list[Any]] | None]:
    results: list[list[list[Any]] | None] = []
    for sql in attack.queries:
        try:
            results.append(_rows(world.plain.execute(sql).fetchall()))
        except duckdb.Error:
            results.append(None)
    return results


def allowed(attack: Attack, world: World) -> bool:
    return all(check(sql, world.policy).allowed for sql in attack.queries)


def outcome(attack: Attack, world: World, runner) -> tuple[bool, Any, Any]:
    """(right, guess, secret) of ``attack`` in ``world`` with ``runner``."""
    secret = world.secrets.as_dict().get(attack.secret)
    if attack.decode == ALLOWED:
        ok = allowed(attack, world)
        return ok, ALLOWED if ok else "refused", secret
    guess = guess_of(attack, runner(attack, world))
    return matches(guess, secret), guess, secret


def succeeds(attack: Attack, worlds: dict[str, World], runner) -> tuple[bool, list[str]]:
    right, notes = True, []
    for name in attack.pair:
        ok, guess, secret = outcome(attack, worlds[name], runner)
        right = right and ok
        notes.append(f"world {name}: guess {guess!r}, secret {secret!r}")
    return right, notes


# ---------------------------------------------------------------------------------- tests


def test_corpus_is_complete():
    assert len(CORPUS) >= 200, len(CORPUS)
    titles = Counter(a.title for a in CORPUS)
    assert [t for t, n in titles.items() if n > 1] == []
    for attack in CORPUS:
        missing = [h for h in REQUIRED if not attack.headers.get(h)]
        assert not missing, f"{attack.title}: missing {missing}"
        assert attack.queries, attack.title
        assert attack.secret in SECRETS, attack.title
        assert attack.klass in MIN_PER_CLASS, attack.title
        assert (attack.klass == 7) == (attack.decode == ALLOWED) == (attack.secret == "fanout"), attack.title
        assert (attack.klass == 8) == (attack.secret == "offset"), attack.title
        assert attack.file.startswith(f"class{attack.klass}_"), attack.title
        if attack.decode != ALLOWED:
            compile(attack.decode, attack.title, "eval")
    per_class = Counter(a.klass for a in CORPUS)
    for klass, least in MIN_PER_CLASS.items():
        assert per_class[klass] >= least, (klass, per_class[klass])


def test_most_attacks_are_proven_to_work_without_a_guard():
    sane = [a for a in CORPUS if a.sane]
    assert len(sane) >= MIN_SANE_SHARE * len(CORPUS), (len(sane), len(CORPUS))
    assert all(a.decode != ALLOWED for a in sane)


def test_decoding_helpers():
    ns = decode_namespace([[["F", 3, 10.0], ["M", 4, 20.0]], None, [["F", 3, 10.0]]])
    assert ns["cell"](0, "M") == 20.0 and ns["cell"](0, "M", col=1) == 4 and ns["cell"](1, "F") is None
    assert ns["v"](1) is None and ns["v"](0, 1, 1) == 4 and ns["nums"](0) == [3.0, 10.0, 4.0, 20.0]
    assert ns["changed"](0, 2) == "M" and ns["bits"]([1, 0, 1]) == 5 and ns["root"](-8.0, 3) == -2.0
    assert [round(x, 6) for x in ns["newton"]([6.0, 14.0, 36.0])] == [1.0, 2.0, 3.0]
    assert ns["days"](dt.date(1970, 1, 11)) == 10 and ns["days"](dt.datetime(1970, 1, 2, 13)) == 2
    assert matches(1, 1) and matches(987654.0000001, 987654.0) and not matches(None, 0)
    assert not matches("B20", 1) and not matches(float("nan"), 1) and matches(True, 1)


GUARD_DOC = Path(__file__).resolve().parents[3] / "docs" / "guard.md"
RESIDUAL = [a for a in CORPUS if a.headers.get("residual")]


def _judged(attack: Attack):
    """Attacks on a documented residual risk are expected to succeed (strictly: if the guard starts
    stopping one, the test says so, and docs/guard.md and the header must be brought up to date)."""
    residual = attack.headers.get("residual")
    if not residual:
        return attack
    reason = f"residual risk '{residual}' (docs/guard.md)"
    return pytest.param(attack, marks=pytest.mark.xfail(strict=True, reason=reason))


@pytest.mark.parametrize("attack", [_judged(a) for a in CORPUS], ids=[a.title for a in CORPUS])
def test_attack_reveals_nothing(attack: Attack, worlds: dict[str, World]):
    right, notes = succeeds(attack, worlds, run_guarded)
    assert not right, f"class {attack.klass} attack recovers {attack.secret}: " + "; ".join(notes)


def test_residual_risks_are_few_and_documented():
    assert len(RESIDUAL) <= 0.06 * len(CORPUS), [a.title for a in RESIDUAL]
    text = GUARD_DOC.read_text(encoding="utf-8")
    for attack in RESIDUAL:
        anchor = attack.headers["residual"]
        assert f"(residual: {anchor})" in text, f"docs/guard.md does not explain residual risk {anchor}"


SANE = [a for a in CORPUS if a.sane]


@pytest.mark.parametrize("attack", SANE, ids=[a.title for a in SANE])
def test_attack_works_on_plain_duckdb(attack: Attack, worlds: dict[str, World]):
    right, notes = succeeds(attack, worlds, run_plain)
    assert right, f"attack does not recover {attack.secret} even without a guard: " + "; ".join(notes)
