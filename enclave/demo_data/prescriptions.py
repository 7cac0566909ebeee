"""Prescriptions: a first-line drug for the visit's diagnosis, sometimes an add-on drug."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from enclave.demo_data import strings
from enclave.demo_data.dates import to_arrow
from enclave.demo_data.patients import PatientChunk
from enclave.demo_data.reference_clinical import (
    ADJUNCT_CHANCE,
    DIAGNOSES,
    DRUGS,
    PACK_QUANTITIES,
    PRESCRIPTION_CHANCE,
)
from enclave.demo_data.sampling import conditional, segment_positions
from enclave.demo_data.visits import VisitChunk

SCHEMA = pa.schema(
    [
        ("pid", pa.string()),
        ("rx_date", pa.date32()),
        ("drug", strings.DICTIONARY),
        ("atc_code", strings.DICTIONARY),
        ("quantity", pa.int32()),
        ("cost", pa.float64()),
    ]
)
PRICE_SIGMA = 0.08

_DRUG_INDEX = {d.name: i for i, d in enumerate(DRUGS)}
_PACKS = list(PACK_QUANTITIES)


def _drug_table(attribute: str) -> tuple[np.ndarray, np.ndarray]:
    """(diagnoses x drugs) weights from each diagnosis' list, and which diagnoses have any."""
    table = np.zeros((len(DIAGNOSES), len(DRUGS)))
    for row, diagnosis in enumerate(DIAGNOSES):
        for name, weight in getattr(diagnosis, attribute):
            table[row, _DRUG_INDEX[name]] = weight
    has_any = table.sum(axis=1) > 0
    table[~has_any] = 1.0  # never drawn from; keeps every row a valid distribution
    return table, has_any


_FIRST_LINE, _HAS_FIRST_LINE = _drug_table("drugs")
_ADJUNCT, _HAS_ADJUNCT = _drug_table("adjuncts")
_PACK_OF = np.array([_PACKS.index(d.pack) for d in DRUGS])
_WIDEST = max(len(q) for q in PACK_QUANTITIES.values())
_QUANTITY = np.array(
    [[q for q, _ in PACK_QUANTITIES[p]] + [0] * (_WIDEST - len(PACK_QUANTITIES[p])) for p in _PACKS]
)
_QUANTITY_WEIGHTS = np.array(
    [[w for _, w in PACK_QUANTITIES[p]] + [0.0] * (_WIDEST - len(PACK_QUANTITIES[p])) for p in _PACKS]
)
_PRICE = np.array([d.price for d in DRUGS])


def build_prescriptions(rng: np.random.Generator, patients: PatientChunk, visits: VisitChunk) -> pa.Table:
    """Prescription rows for the visits of a chunk, in visit order, first-line before add-on."""
    chance = np.asarray(PRESCRIPTION_CHANCE)[visits.visit_type]
    first_line = (rng.random(visits.size) < chance) & _HAS_FIRST_LINE[visits.dx]
    adjunct = first_line & _HAS_ADJUNCT[visits.dx] & (rng.random(visits.size) < ADJUNCT_CHANCE)
    visit, position = segment_positions(first_line.astype(np.int64) + adjunct)
    dx = visits.dx[visit]
    drug = np.empty(visit.size, dtype=np.int32)
    first = position == 0
    drug[first] = conditional(rng, _FIRST_LINE, dx[first])
    drug[~first] = conditional(rng, _ADJUNCT, dx[~first])
    pack = _PACK_OF[drug]
    quantity = _QUANTITY[pack, conditional(rng, _QUANTITY_WEIGHTS, pack)]
    cost = np.round(_PRICE[drug] * quantity * np.exp(PRICE_SIGMA * rng.standard_normal(drug.size)), 2)
    return pa.Table.from_arrays(
        [
            patients.pid.take(pa.array(visits.patient[visit])),
            to_arrow(visits.day[visit]),
            strings.categorical(drug, [d.name for d in DRUGS]),
            strings.categorical(drug, [d.atc for d in DRUGS]),
            pa.array(quantity.astype(np.int32)),
            pa.array(cost),
        ],
        schema=SCHEMA,
    )
