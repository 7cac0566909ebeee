"""The patient register: one row per person, direct identifiers and quasi-identifiers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from enclave.demo_data import identity, strings
from enclave.demo_data import reference_people as ref
from enclave.demo_data.dates import REFERENCE_DATE, completed_years, day_number, to_arrow
from enclave.demo_data.reference_clinical import CHILD_BELOW, DIAGNOSES, SENIOR_FROM
from enclave.demo_data.sampling import conditional, weighted

PID_PREFIX = "P"
PID_DIGITS = 7

SCHEMA = pa.schema(
    [
        ("pid", pa.string()),
        ("name", pa.string()),
        ("id_number", pa.string()),
        ("sex", strings.DICTIONARY),
        ("birth_date", pa.date32()),
        ("age", pa.int32()),
        ("ethnicity", strings.DICTIONARY),
        ("phone", pa.string()),
        ("address", pa.string()),
        ("postcode", pa.string()),
    ]
)

# Relative number of hospital patients per 5-year age band, 0-4 up to 100-104.
AGE_BAND_WEIGHTS = (4, 3, 3, 3, 4, 5, 6, 7, 7, 7, 8, 9, 10, 10, 9, 8, 6, 4, 2.5, 1, 0.3)
DAYS_PER_YEAR = 365.2425
FLAT_SHARE = 0.8  # addresses with building, unit and room; the rest are houses


@dataclass(frozen=True)
class PatientChunk:
    """What later tables need to know about a chunk of patients (row i is patient ``first + i``)."""

    first: int
    pid: pa.StringArray
    birth_days: np.ndarray
    age: np.ndarray
    male: np.ndarray
    age_group: np.ndarray  # 0 child, 1 adult, 2 senior (at the reference date)
    main_condition: np.ndarray  # index into DIAGNOSES, or -1 for none

    @property
    def size(self) -> int:
        return self.age.size


def age_groups(age: np.ndarray) -> np.ndarray:
    return np.where(age < CHILD_BELOW, 0, np.where(age < SENIOR_FROM, 1, 2)).astype(np.int32)


def pids(first: int, count: int) -> pa.StringArray:
    """Person keys ``P0000001`` ... for patients ``first`` .. ``first + count - 1`` (0-based)."""
    numbers = np.arange(first + 1, first + count + 1, dtype=np.int64)
    return strings.fixed_width(strings.literal(PID_PREFIX, count), strings.digits(numbers, PID_DIGITS))


def _birth_days(rng: np.random.Generator, count: int) -> np.ndarray:
    band = weighted(rng, AGE_BAND_WEIGHTS, count)
    years = (band + rng.random(count)) * 5
    latest = day_number(REFERENCE_DATE) - 1
    return (latest - np.floor(years * DAYS_PER_YEAR)).astype(np.int32)


def _main_conditions(rng: np.random.Generator, group: np.ndarray) -> np.ndarray:
    prevalence = np.array([d.prevalence for d in DIAGNOSES], dtype=np.float64).T  # groups x diagnoses
    table = np.hstack([1.0 - prevalence.sum(axis=1, keepdims=True), prevalence])
    return conditional(rng, table, group) - 1


def _rank_weights(count: int) -> np.ndarray:
    """Weights falling with frequency rank (a Zipf-like law), for lists ordered most common first."""
    return 1.0 / np.arange(1, count + 1) ** 0.7


def _names(rng: np.random.Generator, male: np.ndarray) -> pa.Array:
    count = male.size
    surname = weighted(rng, [w for _, w in ref.SURNAMES], count)
    male_chars, female_chars = list(ref.GIVEN_MALE), list(ref.GIVEN_FEMALE)
    chars = [*male_chars, *female_chars, ""]

    def given_character() -> np.ndarray:
        return np.where(
            male,
            weighted(rng, _rank_weights(len(male_chars)), count),
            len(male_chars) + weighted(rng, _rank_weights(len(female_chars)), count),
        )

    first, second = given_character(), given_character()
    second[rng.random(count) < ref.SINGLE_CHARACTER_GIVEN_NAME_SHARE] = len(chars) - 1
    return strings.join(
        strings.take([s for s, _ in ref.SURNAMES], surname),
        strings.take(chars, first),
        strings.take(chars, second),
    )


def _addresses(rng: np.random.Generator, area: np.ndarray) -> pa.Array:
    count = area.size
    regions = [a.province + a.city + a.county for a in ref.AREAS]
    numbers = [f"{i}号" for i in range(1, ref.MAX_HOUSE_NUMBER + 1)]
    buildings = [f"{i}栋" for i in range(1, ref.MAX_BUILDING + 1)] + [""]
    units = [f"{i}单元" for i in range(1, ref.MAX_UNIT + 1)] + [""]
    rooms = [f"{f}{r:02d}室" for f in range(1, ref.MAX_FLOOR + 1) for r in range(1, ref.ROOMS_PER_FLOOR + 1)]
    house = rng.random(count) >= FLAT_SHARE
    building = np.where(house, len(buildings) - 1, rng.integers(0, ref.MAX_BUILDING, count))
    unit = np.where(house, len(units) - 1, rng.integers(0, ref.MAX_UNIT, count))
    room = np.where(house, len(rooms), rng.integers(0, len(rooms), count))
    return strings.join(
        strings.take(regions, area),
        strings.take(ref.STREETS, rng.integers(0, len(ref.STREETS), count)),
        strings.take(numbers, rng.integers(0, len(numbers), count)),
        strings.take(buildings, building),
        strings.take(units, unit),
        strings.take([*rooms, ""], room),
    )


def _postcodes(rng: np.random.Generator, area: np.ndarray) -> pa.StringArray:
    """The area's postcode with its last two digits varied: the first three always match the area."""
    stem = np.array([int(a.postcode[:4]) for a in ref.AREAS], dtype=np.int64)[area]
    return strings.fixed_width(strings.digits(stem, 4), strings.digits(rng.integers(0, 100, area.size), 2))


def _ethnicities(rng: np.random.Generator, area_codes: np.ndarray) -> np.ndarray:
    table = np.array([[w for _, w, _ in ref.ETHNICITIES], [w for _, _, w in ref.ETHNICITIES]])
    return conditional(rng, table, (area_codes == ref.ENSHI_AREA_CODE).astype(np.int32))


def build_patients(
    rng: np.random.Generator, first: int, count: int, registry: identity.IdRegistry
) -> tuple[pa.Table, PatientChunk]:
    """Patients ``first`` .. ``first + count - 1``: their table rows and the traits later tables use."""
    male = rng.random(count) < 0.5
    birth_days = _birth_days(rng, count)
    age = completed_years(birth_days, REFERENCE_DATE)
    group = age_groups(age)
    main = _main_conditions(rng, group)
    area = weighted(rng, [a.weight for a in ref.AREAS], count)
    area_codes = np.array([a.code for a in ref.AREAS], dtype=np.int64)[area]
    sequences = registry.assign_sequences(rng, area_codes, birth_days, male)
    pid = pids(first, count)
    table = pa.Table.from_arrays(
        [
            pid,
            _names(rng, male),
            identity.id_numbers(area_codes, birth_days, sequences),
            strings.categorical(np.where(male, 0, 1), ["M", "F"]),
            to_arrow(birth_days),
            pa.array(age),
            strings.categorical(_ethnicities(rng, area_codes), [e for e, _, _ in ref.ETHNICITIES]),
            identity.mobile_numbers(rng, ref.MOBILE_PREFIXES, count),
            _addresses(rng, area),
            _postcodes(rng, area),
        ],
        schema=SCHEMA,
    )
    chunk = PatientChunk(first, pid, birth_days, age, male, group, main)
    return table, chunk
