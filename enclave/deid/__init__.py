"""De-identification transforms as DuckDB SQL expression builders (GB/T 39725 §10.2, Table 6).

The builders are pure functions from SQL text to SQL text; secrets are always bound parameters.
"""

from enclave.deid.coding import MeasureBounds, coding_sql, measure_bounds
from enclave.deid.dates import (
    date_shift_sql,
    person_jitter_sql,
    person_offset_sql,
    person_shift_sql,
    project_offset_sql,
)
from enclave.deid.generalize import (
    age_band_5_sql,
    generalize_sql,
    postcode_prefix_3_sql,
    year_month_sql,
    year_sql,
)
from enclave.deid.kanon import KReport, k_anonymity
from enclave.deid.plan import DatasetPlan, plan_dataset
from enclave.deid.pseudonym import hmac_hex, hmac_hex_sql, key_params, pseudonym, pseudonym_sql

# Short names, as the issue spells them.
age_band_5 = age_band_5_sql
postcode_prefix_3 = postcode_prefix_3_sql
year = year_sql
year_month = year_month_sql
date_shift = date_shift_sql

__all__ = [
    "DatasetPlan",
    "KReport",
    "MeasureBounds",
    "age_band_5",
    "age_band_5_sql",
    "coding_sql",
    "date_shift",
    "date_shift_sql",
    "generalize_sql",
    "hmac_hex",
    "hmac_hex_sql",
    "k_anonymity",
    "key_params",
    "measure_bounds",
    "person_jitter_sql",
    "person_offset_sql",
    "person_shift_sql",
    "plan_dataset",
    "postcode_prefix_3",
    "postcode_prefix_3_sql",
    "project_offset_sql",
    "pseudonym",
    "pseudonym_sql",
    "year",
    "year_month",
    "year_month_sql",
    "year_sql",
]
