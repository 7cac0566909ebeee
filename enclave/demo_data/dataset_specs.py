"""The dataset specs (ARCHITECTURE §9) written beside the demo Parquet files.

Roles follow the de-identification rules: names, ID numbers, phones and addresses are direct
identifiers (R-PREP-6, R-PREP-12); visit numbers are institution-internal numbers, removed or replaced
(R-PREP-11); birth and visit dates are dates to shift or generalise (R-PREP-10); age and postcode are
quasi-identifiers with the generalisations of GB/T 39725 Table 6 (R-PREP-8, R-PREP-9); clinical notes
are free text (R-PREP-18).
"""

from __future__ import annotations

from typing import Any

STEWARD = "data-office"
_SYNTHETIC = (
    "Synthetic demo data (enclave demo-data); no real person is described. 合成演示数据，不涉及真实个人。"
)


def _column(role: str, description: str, generalize: str | None = None) -> dict[str, str]:
    column = {"role": role}
    if generalize:
        column["generalize"] = generalize
    column["description"] = description
    return column


SPECS: dict[str, dict[str, Any]] = {
    "patients": {
        "title": "Patient register (demo)",
        "level": 4,
        "category": "personal_attributes",
        "share_type": "conditional",
        "columns": {
            "pid": _column("person_key", "Patient number"),
            "name": _column("direct_id", "Full name in Chinese"),
            "id_number": _column("direct_id", "Resident ID number (GB 11643)"),
            "sex": _column("quasi_id", "M or F"),
            "birth_date": _column("date", "Date of birth"),
            "age": _column("quasi_id", "Age in completed years on 2026-01-01", "age_band_5"),
            "ethnicity": _column("quasi_id", "Ethnic group"),
            "phone": _column("direct_id", "Mobile number"),
            "address": _column("direct_id", "Home address"),
            "postcode": _column("quasi_id", "Postcode of the home address", "postcode_prefix_3"),
        },
    },
    "visits": {
        "title": "Hospital visits (demo)",
        "level": 3,
        "category": "medical_care",
        "share_type": "conditional",
        "columns": {
            "visit_id": _column("direct_id", "Outpatient, emergency or inpatient number"),
            "pid": _column("person_key", "Patient number"),
            "visit_type": _column("attribute", "outpatient, emergency or inpatient"),
            "visit_date": _column("date", "Date of the visit or admission"),
            "discharge_date": _column("date", "Date of discharge; empty for outpatient visits"),
            "department": _column("attribute", "Department"),
            "dx": _column("sensitive", "Main diagnosis, ICD-10 code"),
            "dx_name": _column("sensitive", "Main diagnosis, Chinese name"),
            "cost": _column("measure", "Total cost of the visit in CNY"),
            "notes": _column("text", "Clinical note (free text)"),
        },
    },
    "labs": {
        "title": "Laboratory results (demo)",
        "level": 3,
        "category": "health_status",
        "share_type": "conditional",
        "columns": {
            "pid": _column("person_key", "Patient number"),
            "test_date": _column("date", "Date the sample was taken"),
            "test_code": _column("attribute", "LOINC code"),
            "test_name": _column("attribute", "Test name in Chinese"),
            "value": _column("measure", "Result"),
            "unit": _column("attribute", "Unit of the result"),
            "abnormal_flag": _column("attribute", "N normal, H high, L low against the reference range"),
        },
    },
    "prescriptions": {
        "title": "Prescriptions (demo)",
        "level": 3,
        "category": "medical_care",
        "share_type": "conditional",
        "columns": {
            "pid": _column("person_key", "Patient number"),
            "rx_date": _column("date", "Date of the prescription"),
            "drug": _column("attribute", "Generic drug name in Chinese"),
            "atc_code": _column("attribute", "WHO ATC code"),
            "quantity": _column("measure", "Units dispensed"),
            "cost": _column("measure", "Cost in CNY"),
        },
    },
}


def dataset_spec(name: str, source: str) -> dict[str, Any]:
    """The full spec mapping for one demo dataset whose Parquet file is ``source``."""
    body = SPECS[name]
    return {
        "name": name,
        "title": body["title"],
        "steward": STEWARD,
        "level": body["level"],
        "category": body["category"],
        "share_type": body["share_type"],
        "source": source,
        "person_key": "pid",
        "description": _SYNTHETIC,
        "columns": body["columns"],
    }
