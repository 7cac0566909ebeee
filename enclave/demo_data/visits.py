"""Hospital visits: about ten per patient, skewed, with diagnoses, costs and a short clinical note.

Older patients and patients with a chronic main condition come more often. Costs are log-normal with a
few planted extreme admissions, so that dominance rules (R-QRY-8 style nk / p% checks) have cells to
suppress; rare diagnoses are planted on fewer than five patients for the minimum-count rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa

from enclave.demo_data import strings
from enclave.demo_data.dates import VISITS_FROM, VISITS_TO, day_number, to_arrow
from enclave.demo_data.patients import DAYS_PER_YEAR, PatientChunk
from enclave.demo_data.reference_clinical import (
    CHILD_BELOW,
    DIAGNOSES,
    EMERGENCY,
    EMERGENCY_DEPARTMENT,
    INPATIENT,
    NOTE_DURATIONS,
    NOTE_PERSONS,
    NOTE_PLANS,
    OUTPATIENT,
    PAEDIATRICS,
    SEE_CHILDREN,
    SENIOR_FROM,
    VISIT_TYPES,
)
from enclave.demo_data.sampling import conditional, segment_positions

SCHEMA = pa.schema(
    [
        ("visit_id", pa.string()),
        ("pid", pa.string()),
        ("visit_type", strings.DICTIONARY),
        ("visit_date", pa.date32()),
        ("discharge_date", pa.date32()),
        ("department", strings.DICTIONARY),
        ("dx", strings.DICTIONARY),
        ("dx_name", strings.DICTIONARY),
        ("cost", pa.float64()),
        ("notes", strings.DICTIONARY),
    ]
)

# Extra visits beyond the first: negative binomial (few for most, many for some) with these means.
EXTRA_VISITS_MEAN = (3.0, 4.8, 8.7)  # child, adult, senior
CHRONIC_VISIT_FACTOR = 1.8
VISIT_DISPERSION = 0.7  # smaller is more skewed
MAX_VISITS = 400
MAIN_CONDITION_SHARE = 0.55  # visits of a chronic patient that are about the main condition
RARE_REPEAT_SHARE = 0.5  # visits of a planted patient, beyond the first, about the rare diagnosis

# Cost in CNY: log-normal median and sigma per visit type; admissions scale with length of stay.
COST_MEDIAN = (220.0, 650.0, 1800.0)  # outpatient, emergency, inpatient per day
COST_SIGMA = (0.8, 0.8, 0.6)
LENGTH_OF_STAY_MEDIAN = 7.0
EXTREME_COST_MEDIAN = 1_200_000.0
VISITS_PER_EXTREME_COST = 400_000

VISIT_ID_PREFIXES = ("MZ", "JZ", "ZY")  # 门诊, 急诊, 住院 numbers: institution-internal (R-PREP-11)
VISIT_ID_DIGITS = 10

_CODES = [d.code for d in DIAGNOSES]
_NAMES = [d.name for d in DIAGNOSES]
_INPATIENT = np.array([d.inpatient for d in DIAGNOSES])
_EMERGENCY = np.array([d.emergency for d in DIAGNOSES])
_COST_FACTOR = np.array([d.cost for d in DIAGNOSES])
_DEPARTMENTS = sorted({d.department for d in DIAGNOSES} | {EMERGENCY_DEPARTMENT, PAEDIATRICS})
_DEPARTMENT_OF = np.array([_DEPARTMENTS.index(d.department) for d in DIAGNOSES])
_ADULT_ONLY = np.array([d.department not in SEE_CHILDREN for d in DIAGNOSES])


@dataclass(frozen=True)
class VisitChunk:
    """What labs and prescriptions need to know about the visits of a chunk of patients."""

    patient: np.ndarray  # row in the PatientChunk
    day: np.ndarray
    dx: np.ndarray  # index into DIAGNOSES
    visit_type: np.ndarray

    @property
    def size(self) -> int:
        return self.day.size


def plant_rare_diagnoses(rng: np.random.Generator, patients: PatientChunk) -> list[tuple[int, int]]:
    """(patient row, diagnosis) pairs: each rare diagnosis on 1-4 distinct eligible patients."""
    taken = np.zeros(patients.size, dtype=bool)
    planted = []
    for index, diagnosis in enumerate(DIAGNOSES):
        if not diagnosis.rare:
            continue
        wanted = int(rng.integers(1, 5))
        eligible = ~taken & (patients.age >= diagnosis.ages[0]) & (patients.age <= diagnosis.ages[1])
        if diagnosis.sex is not None:
            eligible &= patients.male == (diagnosis.sex == "M")
        candidates = np.flatnonzero(eligible)
        chosen = rng.choice(candidates, size=min(wanted, candidates.size), replace=False)
        taken[chosen] = True
        planted += [(int(row), index) for row in np.sort(chosen)]
    return planted


def _visit_counts(rng: np.random.Generator, patients: PatientChunk) -> np.ndarray:
    mean = np.asarray(EXTRA_VISITS_MEAN)[patients.age_group]
    mean = np.where(patients.main_condition >= 0, mean * CHRONIC_VISIT_FACTOR, mean)
    extra = rng.negative_binomial(VISIT_DISPERSION, VISIT_DISPERSION / (VISIT_DISPERSION + mean))
    return np.minimum(1 + extra, MAX_VISITS)


def _diagnoses(rng: np.random.Generator, patients: PatientChunk, owner: np.ndarray) -> np.ndarray:
    weights = np.array([d.weights for d in DIAGNOSES], dtype=np.float64).T  # groups x diagnoses
    drawn = conditional(rng, weights, patients.age_group[owner])
    main = patients.main_condition[owner]
    about_main = (main >= 0) & (rng.random(owner.size) < MAIN_CONDITION_SHARE)
    return np.where(about_main, main, drawn).astype(np.int32)


def _apply_planted(
    rng: np.random.Generator, dx: np.ndarray, counts: np.ndarray, planted: list[tuple[int, int]]
) -> None:
    starts = np.cumsum(counts) - counts
    for patient, diagnosis in planted:
        rows = np.arange(starts[patient], starts[patient] + counts[patient])
        again = rng.random(rows.size) < RARE_REPEAT_SHARE
        again[0] = True
        dx[rows[again]] = diagnosis


def _visit_types(rng: np.random.Generator, dx: np.ndarray) -> np.ndarray:
    u = rng.random(dx.size)
    admitted = u < _INPATIENT[dx]
    emergency = ~admitted & (u < _INPATIENT[dx] + _EMERGENCY[dx])
    return np.where(admitted, INPATIENT, np.where(emergency, EMERGENCY, OUTPATIENT)).astype(np.int32)


def _lengths_of_stay(rng: np.random.Generator, visit_type: np.ndarray) -> np.ndarray:
    stay = np.rint(rng.lognormal(np.log(LENGTH_OF_STAY_MEDIAN), 0.55, visit_type.size))
    overnight = (rng.random(visit_type.size) < 0.3).astype(np.int64)
    return np.select(
        [visit_type == INPATIENT, visit_type == EMERGENCY],
        [np.clip(stay, 1, 90).astype(np.int64), overnight],
        0,
    )


def _visit_days(
    rng: np.random.Generator, birth_day: np.ndarray, stay: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Visit days inside the study window, after birth, with discharge still inside the window."""
    start = np.maximum(day_number(VISITS_FROM), birth_day.astype(np.int64))
    last = day_number(VISITS_TO)
    stay = np.minimum(stay, last - start)
    end = last - stay
    day = start + np.floor(rng.random(start.size) * (end - start + 1)).astype(np.int64)
    return day, stay


def _departments(dx: np.ndarray, visit_type: np.ndarray, age_at_visit: np.ndarray) -> np.ndarray:
    department = _DEPARTMENT_OF[dx]
    department = np.where(
        (age_at_visit < CHILD_BELOW) & _ADULT_ONLY[dx], _DEPARTMENTS.index(PAEDIATRICS), department
    )
    return np.where(visit_type == EMERGENCY, _DEPARTMENTS.index(EMERGENCY_DEPARTMENT), department)


def _costs(rng: np.random.Generator, dx: np.ndarray, visit_type: np.ndarray, stay: np.ndarray) -> np.ndarray:
    median = np.asarray(COST_MEDIAN)[visit_type] * _COST_FACTOR[dx]
    median = np.where(visit_type == INPATIENT, median * np.maximum(stay, 1) ** 0.85, median)
    cost = median * np.exp(np.asarray(COST_SIGMA)[visit_type] * rng.standard_normal(dx.size))
    admissions = np.flatnonzero(visit_type == INPATIENT)
    pool = admissions if admissions.size else np.arange(dx.size)
    extremes = rng.choice(pool, size=min(pool.size, 2 + dx.size // VISITS_PER_EXTREME_COST), replace=False)
    cost[extremes] = EXTREME_COST_MEDIAN * np.exp(0.5 * rng.standard_normal(extremes.size))
    return np.round(cost, 2)


def visit_ids(first_number: int, visit_type: np.ndarray) -> pa.StringArray:
    """``ZY0000000001``-style numbers: a prefix per visit type and a running number."""
    prefixes = np.array([list(p.encode("ascii")) for p in VISIT_ID_PREFIXES], dtype=np.uint8)
    numbers = np.arange(first_number, first_number + visit_type.size, dtype=np.int64)
    return strings.fixed_width(prefixes[visit_type], strings.digits(numbers, VISIT_ID_DIGITS))


@cache
def note_vocabulary() -> tuple[str, ...]:
    """Every note text, indexed by ``note_index`` (texts repeat where a complaint has no duration)."""
    return tuple(
        f"{person}，{diagnosis.complaint.format(d=duration)}。{plan}"
        for person in NOTE_PERSONS
        for diagnosis in DIAGNOSES
        for duration in NOTE_DURATIONS
        for plans in NOTE_PLANS
        for plan in plans
    )


def note_index(person: np.ndarray, dx: np.ndarray, duration: np.ndarray, plan: np.ndarray) -> np.ndarray:
    """Position in ``note_vocabulary``; ``plan`` counts across all visit types' plans."""
    plans = sum(len(p) for p in NOTE_PLANS)
    return ((person * len(DIAGNOSES) + dx) * len(NOTE_DURATIONS) + duration) * plans + plan


def _notes(
    rng: np.random.Generator,
    dx: np.ndarray,
    visit_type: np.ndarray,
    age_at_visit: np.ndarray,
    male: np.ndarray,
) -> pa.DictionaryArray:
    group = np.where(age_at_visit < CHILD_BELOW, 0, np.where(age_at_visit < SENIOR_FROM, 1, 2))
    person = group * 2 + np.where(male, 0, 1)
    plan_offsets = np.cumsum([0] + [len(p) for p in NOTE_PLANS])[:-1]
    plans_of_type = np.array([len(p) for p in NOTE_PLANS])[visit_type]
    plan = plan_offsets[visit_type] + np.floor(rng.random(dx.size) * plans_of_type).astype(np.int64)
    duration = rng.integers(0, len(NOTE_DURATIONS), dx.size)
    return strings.categorical(note_index(person, dx, duration, plan), note_vocabulary())


def build_visits(
    rng: np.random.Generator, patients: PatientChunk, first_number: int, planted: list[tuple[int, int]]
) -> tuple[pa.Table, VisitChunk]:
    """The visits of a chunk of patients, numbered from ``first_number``, sorted by patient and date."""
    counts = _visit_counts(rng, patients)
    owner, _ = segment_positions(counts)
    dx = _diagnoses(rng, patients, owner)
    _apply_planted(rng, dx, counts, planted)
    visit_type = _visit_types(rng, dx)
    stay = _lengths_of_stay(rng, visit_type)
    day, stay = _visit_days(rng, patients.birth_days[owner], stay)

    # Rows are grouped by patient already; a stable sort of (patient, day) keys is nearly free.
    order = np.argsort(owner * (day_number(VISITS_TO) + 1) + day, kind="stable")
    owner, dx, visit_type, stay, day = owner[order], dx[order], visit_type[order], stay[order], day[order]

    age_at_visit = (day - patients.birth_days[owner]) / DAYS_PER_YEAR
    table = pa.Table.from_arrays(
        [
            visit_ids(first_number, visit_type),
            patients.pid.take(pa.array(owner)),
            strings.categorical(visit_type, VISIT_TYPES),
            to_arrow(day),
            to_arrow(day + stay, missing=visit_type == OUTPATIENT),
            strings.categorical(_departments(dx, visit_type, age_at_visit), _DEPARTMENTS),
            strings.categorical(dx, _CODES),
            strings.categorical(dx, _NAMES),
            pa.array(_costs(rng, dx, visit_type, stay)),
            _notes(rng, dx, visit_type, age_at_visit, patients.male[owner]),
        ],
        schema=SCHEMA,
    )
    return table, VisitChunk(owner, day, dx, visit_type)
