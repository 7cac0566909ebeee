"""One loader for the guard's SQL fixture files (sqlglot's ``load_sql_fixture_pairs`` idea), and the column
roles of the patients and visits views the guard's tests query."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enclave.guard import ViewPolicy
from enclave.specs import ColumnRole

FIXTURES = Path(__file__).parent / "fixtures"
R = ColumnRole
PATIENT_ROLES: dict[str, ColumnRole] = {
    "pid": R.PERSON_KEY,
    "sex": R.QUASI_ID,
    "age": R.QUASI_ID,
    "zip": R.QUASI_ID,
    "dx": R.SENSITIVE,
    "income": R.MEASURE,
}
VISIT_ROLES: dict[str, ColumnRole] = {
    "pid": R.PERSON_KEY,
    "visit_date": R.DATE,
    "cost": R.MEASURE,
    "dx": R.SENSITIVE,
}
STAY_ROLES: dict[str, ColumnRole] = {**VISIT_ROLES, "discharge_date": R.DATE, "department": R.ATTRIBUTE}


def person_view(name: str, columns: dict[str, ColumnRole], **fields: Any) -> ViewPolicy:
    """A view keyed by ``pid`` with these column roles (a copy)."""
    return ViewPolicy(name, "pid", dict(columns), **fields)


@dataclass
class Case:
    title: str
    sql: str
    headers: dict[str, str] = field(default_factory=dict)


def load_cases(name: str) -> list[Case]:
    """Cases of ``fixtures/<name>``: each starts at ``# title:``, other ``# key: value`` lines are headers."""
    cases: list[Case] = []
    current: Case | None = None
    body: list[str] = []

    def close() -> None:
        if current is not None:
            current.sql = "\n".join(body).strip()
            cases.append(current)

    for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
        if line.startswith("# title:"):
            close()
            current, body = Case(title=line.split(":", 1)[1].strip(), sql=""), []
        elif current is not None and line.startswith("# ") and ":" in line and not body:
            key, value = line[2:].split(":", 1)
            current.headers[key.strip()] = value.strip()
        elif current is not None:
            body.append(line)
    close()
    for case in cases:
        case.sql = case.sql.replace("{many}", ", ".join(str(i) for i in range(6000)))
        case.sql = case.sql.replace("{deep}", "(" * 60 + "age > 1" + ")" * 60)
    return cases
