"""Person keys and pseudonyms of the project (R-EXP-4 c, h; T3): matched against the key space.

Column names that look like person identifiers fail, and so does every cell or text token that is
one of the project's pseudonyms. Without a key space the check cannot see pseudonyms, and says so
as a failure: a reviewer must confirm by hand (fail closed).
"""

from __future__ import annotations

import re

from export_review.checks.cells import cell_location
from export_review.checks.content import StoredFile
from export_review.checks.finding import Finding, Severity
from export_review.checks.policy import CheckPolicy

ID_COLUMN = re.compile(
    r"^(pid|person_?id|person_?key|patient_?id|subject_?id|participant_?id|mrn|pseudonym|pseudo_?id"
    r"|ssn|id_?card|id_?number|national_?id|身份证号?|患者编号|病历号|住院号)$",
    re.IGNORECASE,
)
TOKEN = re.compile(r"[A-Za-z0-9_-]{3,}")
PSEUDONYM_SHAPE = re.compile(r"^p_[0-9a-f]{8,}$")
MAX_FINDINGS = 100


def person_keys(stored: StoredFile, policy: CheckPolicy) -> list[Finding]:
    content = stored.content
    findings = [
        Finding(
            "person_keys",
            "person_key_column",
            Severity.FAIL,
            f"{table.label}: column {column!r} looks like a person identifier",
            f"{table.label}：列 {column!r} 看起来是个人标识",
            location={"table": table.label, "column": column},
        )
        for table in content.tables
        for column in table.frame.columns
        if ID_COLUMN.match(column.strip())
    ]
    if not content.tables and not content.texts:
        return findings
    keys = policy.key_space
    if keys is None:
        findings.append(
            Finding(
                "person_keys",
                "key_space_unavailable",
                Severity.FAIL,
                f"{stored.name}: the project's pseudonym key space is not available, so pseudonyms could "
                "not be looked for; check by hand",
                f"{stored.name}：无法获得项目的假名空间，未能检查假名；请人工检查",
            )
        )
        keys = frozenset()
    for table in content.tables:
        for column in table.frame.columns:
            for row, cell in enumerate(table.frame[column]):
                value = str(cell).strip()
                if value in keys or PSEUDONYM_SHAPE.match(value):
                    findings.append(_cell_finding(table.label, row, column, value in keys))
                    if len(findings) >= MAX_FINDINGS:
                        return findings
    for text in content.texts:
        tokens = set(TOKEN.findall(text.text))
        hits = len(tokens & keys)
        shaped = sum(1 for t in tokens if PSEUDONYM_SHAPE.match(t)) if not hits else 0
        if hits or shaped:
            findings.append(
                Finding(
                    "person_keys",
                    "pseudonym_in_text" if hits else "pseudonym_shaped_text",
                    Severity.FAIL,
                    f"{text.label}: {hits or shaped} value(s) that are (or look like) person pseudonyms",
                    f"{text.label}：{hits or shaped} 个值是（或看起来是）个人假名",
                    location={"text": text.label},
                    details={"count": hits or shaped},
                )
            )
    return findings


def _cell_finding(label: str, row: int, column: str, known: bool) -> Finding:
    # The value itself is not repeated in the finding: coordinates are enough for a reviewer.
    return Finding(
        "person_keys",
        "pseudonym_cell" if known else "pseudonym_shaped_cell",
        Severity.FAIL,
        f"{label} row {row + 1}, {column}: "
        + ("a person pseudonym of this project" if known else "looks like a pseudonym"),
        f"{label} 第 {row + 1} 行 {column}：{'是本项目的个人假名' if known else '看起来像假名'}",
        location=cell_location(label, row, column),
    )
