"""The dominance rules (nk and p%) of the compiled SQL against a plain Python reference.

Random groups with several rows per person, negative values, ties and persons whose every value is
NULL: the sums the guard releases must be exactly those the reference finds not dominated.
"""

from __future__ import annotations

import dataclasses
import random

import duckdb
import pytest

from enclave.guard import GuardPolicy, ViewPolicy, run
from enclave.specs import ColumnRole as R

POLICY = GuardPolicy(
    views={"visits": ViewPolicy("visits", "pid", {"pid": R.PERSON_KEY, "g": R.ATTRIBUTE, "cost": R.MEASURE})}
)


def _rows(rng: random.Random) -> list[tuple[str, int, float | None]]:
    rows = []
    for group in range(30):
        persons = rng.randint(6, 14)
        null_persons = rng.choice((0, 0, 5))
        for person in range(persons + null_persons):
            pid = f"g{group}p{person}"
            for _ in range(rng.randint(1, 3)):
                if person >= persons:
                    value = None
                elif rng.random() < 0.3:
                    value = float(rng.choice((-20, 10, 10, 30)))  # ties and negative contributions
                else:
                    value = rng.paretovariate(0.8) * rng.choice((1, 1, 1, -1))
                rows.append((pid, group, value))
    return rows


def _dominated(rows, policy: GuardPolicy) -> dict[int, bool]:
    """Per group: do the top contributors (per-person sums) dominate, by the nk or the p% rule?"""
    per_person: dict[tuple[int, str], float | None] = {}
    for pid, group, value in rows:
        if value is not None:
            per_person[(group, pid)] = (per_person.get((group, pid)) or 0.0) + value
        else:
            per_person.setdefault((group, pid), None)
    verdict = {}
    for group in {g for _, g, _ in rows}:
        sizes = sorted(
            (abs(v) for (g, _), v in per_person.items() if g == group and v is not None), reverse=True
        )
        total = sum(sizes)
        first, second = [*sizes, 0.0, 0.0][:2]
        top_n = sum(sizes[: policy.dominance_n])
        verdict[group] = total > 0 and (
            top_n > policy.dominance_k * total or total - first - second < policy.dominance_p * first
        )
    return verdict


@pytest.mark.parametrize(
    ("seed", "n", "k", "p"), [(1, 2, 0.85, 0.10), (2, 1, 0.5, 0.0), (3, 3, 0.9, 0.3), (4, 4, 0.7, 0.05)]
)
def test_released_groups_are_exactly_the_undominated(seed: int, n: int, k: float, p: float) -> None:
    rng = random.Random(seed)
    rows = _rows(rng)
    policy = dataclasses.replace(POLICY, dominance_n=n, dominance_k=k, dominance_p=p)
    con = duckdb.connect()
    con.execute("CREATE TABLE raw (pid VARCHAR, g INTEGER, cost DOUBLE)")
    con.executemany("INSERT INTO raw VALUES (?, ?, ?)", rows)
    con.execute("CREATE VIEW visits AS SELECT * FROM raw")
    reference = _dominated(rows, policy)
    for sql in (
        "SELECT g, sum(cost) FROM visits GROUP BY g",
        "SELECT g, avg(cost), count(*) FROM visits GROUP BY g",
    ):
        result = run(con, sql, policy)
        released = {row[0] for row in result.rows if row[1] is not None}
        assert released == {g for g, dominated in reference.items() if not dominated}
        expected_dominated = sum(reference.values())
        assert 0 < expected_dominated < len(reference)  # the data exercises both outcomes
        assert result.suppressed_values == expected_dominated and result.suppressed_groups == 0
    con.close()
