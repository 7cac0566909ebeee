"""Preparation gives the same prepared data as before the speed work of issue #17 (item 1).

The digests below were computed with the code as it was *before* the change (person maps from
``SELECT DISTINCT`` over each source, one scan per step, default Parquet settings), with fixed
secrets, on samples that cover NULL, empty and non-ASCII person keys, a project offset and a
per-person offset, per-person jitter, measure coding, small k-anonymity classes and a sampled twin.
Each digest covers the rows of a file in a fixed order (the row order of a Parquet file is not part
of the contract), so equal digests mean the same pseudonyms, dates, bands, codes, twin and ledger.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pandas as pd
import pytest

from enclave import ledger
from enclave.config import Paths
from enclave.errors import Refused
from enclave.prepare import build as prepare_module
from enclave.prepare import secrets as project_secrets
from enclave.prepare.build import PreparationReport, prepare_workspace
from enclave.specs import parse_dataset_spec, parse_project_spec
from tests.harness.factories import dataset_spec

PERSONS = 900
STRING_KEYS = ["", "张三", "Zoë", "o'brien", 'a"b', " padded ", "Ω≈ç√", "x" * 80]

PATIENTS = dataset_spec(
    "patients",
    "patients.parquet",
    {
        "pid": {"role": "person_key"},
        "name": {"role": "direct_id"},
        "postcode": {"role": "quasi_id", "generalize": "postcode_prefix_3"},
        "birth_date": {"role": "quasi_id", "generalize": "year"},
        "age": {"role": "quasi_id", "generalize": "age_band_5"},
        "sex": {"role": "quasi_id"},
        "income": {"role": "measure"},
    },
    title="Patients",
    level=4,
)
VISITS = dataset_spec(
    "visits",
    "visits.parquet",
    {
        "visit_id": {"role": "attribute"},
        "pid": {"role": "person_key"},
        "visit_date": {"role": "date"},
        "admitted_at": {"role": "date"},
        "visit_month": {"role": "date", "generalize": "year_month"},
        "department": {"role": "attribute"},
        "dx": {"role": "sensitive"},
        "cost": {"role": "measure"},
        "notes": {"role": "text"},
    },
    title="Visits",
    level=4,
    category="medical_care",
)


def _key(index: int, string_keys: bool) -> Any:
    if not string_keys:
        return index
    return STRING_KEYS[index] if index < len(STRING_KEYS) else f"person-{index:05d}"


def write_sources(folder: Path, *, string_keys: bool, coarse: bool) -> dict[str, Any]:
    """Deterministic patients and visits; ``coarse`` quasi-identifiers make every class big."""
    draw = random.Random(17)
    patients, visits = [], []
    for index in range(PERSONS):
        age = draw.randrange(18, 99)
        patients.append(
            {
                "pid": _key(index, string_keys),
                "name": f"Name {index}",
                "postcode": "100080" if coarse else f"{draw.randrange(100, 140)}0{draw.randrange(10, 99)}",
                "birth_date": date(
                    1986 if coarse else 2026 - age, 1 + draw.randrange(12), 1 + draw.randrange(28)
                ),
                "age": 40 if coarse else age,
                "sex": draw.choice("FM"),
                "income": float(draw.randrange(1000, 90000)) if draw.random() > 0.05 else None,
            }
        )
        for visit in range(draw.randrange(0, 6)):
            day = date(2016, 1, 1) + timedelta(days=draw.randrange(3000))
            visits.append(
                {
                    "visit_id": index * 10 + visit,
                    "pid": _key(index, string_keys) if draw.random() > 0.02 else None,
                    "visit_date": day,
                    "admitted_at": pd.Timestamp(day) + pd.Timedelta(minutes=draw.randrange(1440)),
                    "visit_month": day,
                    "department": draw.choice(["cardio", "endo", "neuro"]),
                    "dx": draw.choice(["I10", "E11", "J45", "C53"]),
                    "cost": round(draw.uniform(10, 5000), 2) if draw.random() > 0.01 else 250_000.0,
                    "notes": "free text",
                }
            )
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(patients).to_parquet(folder / "patients.parquet", index=False)
    pd.DataFrame(visits).to_parquet(folder / "visits.parquet", index=False)
    return {
        "patients": (parse_dataset_spec(PATIENTS), folder / "patients.parquet"),
        "visits": (parse_dataset_spec(VISITS), folder / "visits.parquet"),
    }


def file_digest(path: Path) -> str:
    """SHA-256 of the schema and the rows of a Parquet file, in a fixed order."""
    con = duckdb.connect()
    try:
        relation = f"read_parquet('{path}')"
        schema = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
        rows = con.execute(f"SELECT * FROM {relation} ORDER BY ALL").fetchall()
    finally:
        con.close()
    return hashlib.sha256(repr((schema, rows)).encode("utf-8")).hexdigest()


def digests(paths: Paths, report: PreparationReport) -> dict[str, str]:
    """One digest per prepared file, twin file and ledger stage, and one of the report's findings."""
    out = {}
    for name in sorted(report.datasets):
        out[f"prepared/{name}"] = file_digest(report.prepared_dir / f"{name}.parquet")
        out[f"twin/{name}"] = file_digest(report.prepared_dir / "twin" / f"{name}.parquet")
        stage = ledger.ledger_root(paths) / report.project_id / f"v{report.version}" / f"{name}.parquet"
        con = duckdb.connect()
        try:
            subjects = con.execute(f"SELECT subject FROM read_parquet('{stage}') ORDER BY ALL").fetchall()
        finally:
            con.close()
        out[f"ledger/{name}"] = hashlib.sha256(repr(subjects).encode()).hexdigest()
    findings = {
        name: {key: value for key, value in dataset.to_dict().items() if not key.endswith("_sha256")}
        for name, dataset in report.datasets.items()
    }
    summary = [findings, report.k_ok, report.ledger_subjects, report.date_shift, report.date_jitter_days]
    out["report"] = hashlib.sha256(json.dumps(summary, sort_keys=True, default=str).encode()).hexdigest()
    return out


SCENARIOS: dict[str, dict[str, Any]] = {
    # aggregate access, integer keys, project offset plus jitter, small classes, a sampled twin
    "aggregate_jitter": {"access": "aggregate", "jitter": 7, "per_person": False, "strings": False},
    # row-level access: measures top- and bottom-coded, k-anonymous classes, no jitter
    "rows_coded": {"access": "rows", "jitter": 0, "per_person": False, "strings": False, "coarse": True},
    # row-level access refused: the k-anonymity report names the same classes
    "rows_refused": {"access": "rows", "jitter": 7, "per_person": False, "strings": False},
    # per-person offset plus jitter over text keys (empty, non-ASCII, quotes, longer than a block)
    "per_person_text_keys": {"access": "aggregate", "jitter": 30, "per_person": True, "strings": True},
}

GOLDEN: dict[str, dict[str, str]] = {
    "aggregate_jitter": {
        "prepared/patients": "8446816f054b6447b1646b53fcc7ff17170f82a5de9ec01ad7af631709debb6a",
        "twin/patients": "6411d65b92f000375d0ee508f9fd903c40670ebdd27100b8273c590fe7fb26b1",
        "ledger/patients": "978326098ef393017b5069d110028b8d6088d401cac7cec2a3c227b6425239d7",
        "prepared/visits": "8c8aba81dd874fe139cd37c9b986fcfabbc6cb7bf855fd3a0b437050c2cf39f7",
        "twin/visits": "8a640dc8bccf3338625e9ffc089804bb98fdde7cb866bf08edb6c1f5b0ca917b",
        "ledger/visits": "d65e826c5ffd5691184d239645255d0fff1f0a3be4fce12bee16de1b77a97f54",
        "report": "df2a337b6f874c26af7f141b0f4d4921151bcbf50ee304b9065a48b0c1127ca0",
    },
    "per_person_text_keys": {
        "prepared/patients": "645da05161620863fe302e2bb3eb1fac77f90aa92c4e2bb25d842c06f9d60138",
        "twin/patients": "bc3ab6e12155993b46b3325a7c898df623e6206db1c494270e18f3683036d31c",
        "ledger/patients": "a928f3a7ce51abb0ac9786d979dfd165413401649a96e1fd75c2d86ffc20ba10",
        "prepared/visits": "cdd160633646eb336ea81d7c289144165fdef7e89d56a3015db0aab1699684f7",
        "twin/visits": "b7e8a1aa6900c7b086709a85259cf984afe42bdae0174b6fb145bff500060776",
        "ledger/visits": "57274d46e5485daee6074071a87fa0e72f1a8ced1310266e333516d12872e2c6",
        "report": "96bf9f52735782c401878cb8232a93858d7061be0f6d3a612afd2d77e81a9a83",
    },
    "rows_coded": {
        "prepared/patients": "ab69dff61f2b1f62a9f1dc1971565bf0b66dd6ce2894861d98347a3c95b9786d",
        "twin/patients": "5f86345cfbdef4a972d22b155514929a763908063ee5edebc6a5bcfb1a05d87e",
        "ledger/patients": "978326098ef393017b5069d110028b8d6088d401cac7cec2a3c227b6425239d7",
        "prepared/visits": "67c39b186c6cb407b9f27ee03647ac830692742afacf14c35662e9c51996026b",
        "twin/visits": "d2cb901fb23cf28610999110f8c444fffbefef41b83c254308fb78509d378af1",
        "ledger/visits": "dbc38827840b2f8a872aea038567108ebab37a62e6506773999d61bffeba3c32",
        "report": "7e5d5885fcfcf8c3015ffa677fdcff42c2a5f0013f71e1294161ad1ac23bf46d",
    },
    "rows_refused": {
        "refused": "9fde6659bcecbde17e69f7bd132c0e86e27aecae4b76c9e67a894da47455bb33",
    },
}


def run_scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: dict[str, Any]) -> dict[str, str]:
    """Prepare one scenario with fixed secrets and return its digests."""
    fixed = SimpleNamespace(
        token_bytes=lambda n: bytes((7 * i + 3) % 256 for i in range(n)),
        token_hex=secrets.token_hex,
        randbelow=secrets.randbelow,
    )
    monkeypatch.setattr(project_secrets, "secrets", fixed)  # the project key
    monkeypatch.setattr(ledger, "secrets", fixed)  # the ledger key
    monkeypatch.setattr(project_secrets, "_random_offset", lambda: -123)
    monkeypatch.setattr(prepare_module, "TWIN_SAMPLE_PERSONS", 200)  # sample one person in five
    home = tmp_path / "home"
    home.mkdir()
    paths = Paths(home)
    datasets = write_sources(
        tmp_path / "src", string_keys=scenario["strings"], coarse=scenario.get("coarse", False)
    )
    project = parse_project_spec(
        {
            "id": "equiv-1",
            "title": "Equivalence",
            "purpose": "testing",
            "pi": "alice",
            "analysts": ["alice"],
            "committee": ["carol", "dave", "erin"],
            "datasets": {
                "patients": ["pid", "name", "postcode", "birth_date", "age", "sex", "income"],
                "visits": [
                    "pid",
                    "visit_id",
                    "visit_date",
                    "admitted_at",
                    "visit_month",
                    "department",
                    "dx",
                    "cost",
                    "notes",
                ],
            },
            "access": scenario["access"],
            "date_jitter_days": scenario["jitter"],
            "period": {"start": "2026-01-01", "end": "2027-01-01"},
        }
    )
    try:
        report = prepare_workspace(
            paths, project, datasets, version=1, per_person_offset=scenario["per_person"]
        )
    except Refused as refusal:
        details = [(reason.code, reason.message, reason.details) for reason in refusal.reasons]
        return {
            "refused": hashlib.sha256(json.dumps(details, sort_keys=True, default=str).encode()).hexdigest()
        }
    return digests(paths, report)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_prepared_output_is_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    assert run_scenario(tmp_path, monkeypatch, SCENARIOS[name]) == GOLDEN[name]
