"""Lab results: panels ordered at visits, values shifted by the patient's conditions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from enclave.demo_data import strings
from enclave.demo_data.dates import to_arrow
from enclave.demo_data.patients import PatientChunk
from enclave.demo_data.reference_clinical import (
    DEFAULT_PANELS,
    DIAGNOSES,
    LAB_PANELS,
    LAB_SHIFTS,
    LAB_TESTS,
    PANEL_CHANCE,
)
from enclave.demo_data.sampling import conditional, segment_positions
from enclave.demo_data.visits import VisitChunk

SCHEMA = pa.schema(
    [
        ("pid", pa.string()),
        ("test_date", pa.date32()),
        ("test_code", strings.DICTIONARY),
        ("test_name", strings.DICTIONARY),
        ("value", pa.float64()),
        ("unit", strings.DICTIONARY),
        ("abnormal_flag", strings.DICTIONARY),
    ]
)
FLAGS = ("N", "H", "L")  # normal, high, low

_TEST_INDEX = {t.code: i for i, t in enumerate(LAB_TESTS)}
_DX_INDEX = {d.code: i for i, d in enumerate(DIAGNOSES)}
_PANEL_NAMES = list(LAB_PANELS)
_PANEL_TESTS = np.array([_TEST_INDEX[c] for name in _PANEL_NAMES for c in LAB_PANELS[name]])
_PANEL_SIZE = np.array([len(LAB_PANELS[name]) for name in _PANEL_NAMES])
_PANEL_START = np.cumsum(_PANEL_SIZE) - _PANEL_SIZE


def _panel_weights() -> np.ndarray:
    """(diagnoses x panels) chance of each panel at a visit for that diagnosis."""
    table = np.zeros((len(DIAGNOSES), len(_PANEL_NAMES)))
    for row, diagnosis in enumerate(DIAGNOSES):
        for name, weight in diagnosis.panels or DEFAULT_PANELS:
            table[row, _PANEL_NAMES.index(name)] = weight
    return table


_PANEL_WEIGHTS = _panel_weights()
_LOGNORMAL = np.array([t.lognormal for t in LAB_TESTS])
_CENTRE = np.array([t.centre for t in LAB_TESTS])
_SPREAD = np.array([t.spread for t in LAB_TESTS])
_LOW = np.array([t.low for t in LAB_TESTS])
_HIGH = np.array([t.high for t in LAB_TESTS])
_SCALE = 10.0 ** np.array([t.decimals for t in LAB_TESTS])


def _values(
    rng: np.random.Generator, test: np.ndarray, dx: np.ndarray, main_condition: np.ndarray
) -> np.ndarray:
    centre, spread = _CENTRE[test], _SPREAD[test]
    for code, conditions, shifted_centre, shifted_spread in LAB_SHIFTS:
        has = np.zeros(len(DIAGNOSES) + 1, dtype=bool)  # the extra last entry is "no main condition" (-1)
        has[[_DX_INDEX[c] for c in conditions]] = True
        affected = (test == _TEST_INDEX[code]) & (has[dx] | has[main_condition])
        centre = np.where(affected, shifted_centre, centre)
        spread = np.where(affected, shifted_spread, spread)
    z = rng.standard_normal(test.size)
    value = np.where(_LOGNORMAL[test], centre * np.exp(spread * z), centre + spread * z)
    scale = _SCALE[test]
    return np.maximum(np.rint(value * scale), 1.0) / scale  # never zero or negative


def flags(test: np.ndarray, value: np.ndarray) -> np.ndarray:
    """0 normal, 1 high, 2 low, against the test's reference range."""
    high = value > _HIGH[test]
    low = (_LOW[test] > 0) & (value < _LOW[test])
    return np.where(high, 1, np.where(low, 2, 0))


def build_labs(rng: np.random.Generator, patients: PatientChunk, visits: VisitChunk) -> pa.Table:
    """Lab rows for the visits of a chunk: one panel at some visits, each panel a few tests."""
    ordered = np.flatnonzero(rng.random(visits.size) < np.asarray(PANEL_CHANCE)[visits.visit_type])
    panel = conditional(rng, _PANEL_WEIGHTS, visits.dx[ordered])
    owner, position = segment_positions(_PANEL_SIZE[panel])
    visit = ordered[owner]
    test = _PANEL_TESTS[_PANEL_START[panel[owner]] + position]
    patient = visits.patient[visit]
    value = _values(rng, test, visits.dx[visit], patients.main_condition[patient])
    return pa.Table.from_arrays(
        [
            patients.pid.take(pa.array(patient)),
            to_arrow(visits.day[visit]),
            strings.categorical(test, [t.code for t in LAB_TESTS]),
            strings.categorical(test, [t.name for t in LAB_TESTS]),
            pa.array(value),
            strings.categorical(test, [t.unit for t in LAB_TESTS]),
            strings.categorical(flags(test, value), FLAGS),
        ],
        schema=SCHEMA,
    )
