"""Benchmark: prepare 10,000,000 visit rows (1,000,000 patients) end to end, beside pandas.

    .venv/bin/python bench/prepare.py [--patients 1000000] [--visits-per-patient 10] [--repeat 1]
                                      [--no-pandas] [--parquet-settings]

Generates the data with DuckDB (``range()`` and hash-based values), then times
``enclave.prepare.build.prepare_workspace`` and a straightforward pandas implementation of the
same transforms, each ``--repeat`` times (the best run counts: the machine may be shared). Prints
what each side does, the seconds, rows per second, the ratio, the machine's load average, and the
enclave's best run step by step (from its progress messages: wall and process CPU seconds), so the
next bottleneck is visible. ``--parquet-settings`` also rewrites the prepared visits with other
Parquet settings (compression, row-group size) and prints the seconds and size of each.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from enclave.config import Paths
from enclave.prepare.build import prepare_workspace
from enclave.specs import parse_dataset_spec, parse_project_spec
from tests.harness.factories import dataset_spec

PATIENTS_SPEC = dataset_spec(
    "patients",
    "patients.parquet",
    {
        "pid": {"role": "person_key"},
        "name": {"role": "direct_id"},
        "id_number": {"role": "direct_id"},
        "phone": {"role": "direct_id"},
        "address": {"role": "direct_id"},
        "postcode": {"role": "quasi_id", "generalize": "postcode_prefix_3"},
        "birth_date": {"role": "quasi_id", "generalize": "year"},
        "age": {"role": "quasi_id", "generalize": "age_band_5"},
        "sex": {"role": "quasi_id"},
    },
    title="Patients",
    steward="bench",
    level=4,
)
VISITS_SPEC = dataset_spec(
    "visits",
    "visits.parquet",
    {
        "visit_id": {"role": "attribute"},
        "pid": {"role": "person_key"},
        "visit_date": {"role": "date"},
        "discharge_date": {"role": "date"},
        "department": {"role": "attribute"},
        "dx": {"role": "sensitive"},
        "cost": {"role": "measure"},
        "visit_type": {"role": "attribute"},
        "notes": {"role": "text"},
    },
    title="Visits",
    steward="bench",
    level=4,
    category="medical_care",
)
APPROVED = {
    "patients": ["pid", "name", "postcode", "age", "sex"],
    "visits": ["pid", "visit_id", "visit_date", "discharge_date", "department", "dx", "cost", "visit_type"],
}


def generate(folder: Path, patients: int, per_patient: int) -> tuple[Path, Path]:
    con = duckdb.connect()
    con.execute("CREATE MACRO h(x, salt, m) AS CAST(hash(x, salt) % m AS BIGINT)")
    patients_file, visits_file = folder / "patients.parquet", folder / "visits.parquet"
    con.execute(
        f"""COPY (SELECT i AS pid, 'Name ' || i AS name, lpad(CAST(i AS VARCHAR), 18, '1') AS id_number,
              '139' || lpad(CAST(i AS VARCHAR), 8, '0') AS phone, 'Street ' || h(i, 0, 999) AS address,
              CAST(100000 + h(i, 1, 90) * 1000 + h(i, 2, 100) AS VARCHAR) AS postcode,
              DATE '1930-01-01' + CAST(h(i, 3, 27000) AS INTEGER) AS birth_date,
              CAST(h(i, 4, 100) AS INTEGER) AS age,
              CASE WHEN h(i, 5, 2) = 0 THEN 'F' ELSE 'M' END AS sex
            FROM range({patients}) t(i)) TO '{patients_file}' (FORMAT parquet)"""
    )
    con.execute(
        f"""COPY (SELECT v AS visit_id, h(v, 6, {patients}) AS pid,
              DATE '2015-01-01' + CAST(h(v, 7, 3000) AS INTEGER) AS visit_date,
              DATE '2015-01-01' + CAST(h(v, 7, 3000) + h(v, 8, 30) AS INTEGER) AS discharge_date,
              ['cardio', 'endo', 'neuro', 'onco', 'ortho'][1 + h(v, 9, 5)] AS department,
              'D' || lpad(CAST(h(v, 10, 400) AS VARCHAR), 3, '0') AS dx,
              round(50 + h(v, 11, 100000) / 10.0, 2) AS cost,
              CAST(1 + h(v, 12, 4) AS INTEGER) AS visit_type,
              'free text about visit ' || v AS notes
            FROM range({patients * per_patient}) t(v)) TO '{visits_file}' (FORMAT parquet)"""
    )
    con.close()
    return patients_file, visits_file


def pandas_prepare(patients_file: Path, visits_file: Path, out: Path, k: int = 5) -> None:
    """The same transforms written the obvious way in pandas."""
    key, offset = secrets.token_bytes(32), pd.Timedelta(days=117)

    def pseudonymise(column: pd.Series) -> pd.Series:
        unique = column.drop_duplicates()
        mapping = {v: "p_" + hmac.new(key, str(v).encode(), hashlib.sha256).hexdigest()[:16] for v in unique}
        return column.map(mapping)

    def age_band(age: pd.Series) -> pd.Series:
        low = (age // 5 * 5).astype("Int64")
        band = low.astype(str) + "-" + (low + 4).astype(str)
        band = band.where(age >= 25, "<25")
        return band.where(age <= 89, ">89")

    patients = pd.read_parquet(patients_file, columns=["pid", "postcode", "age", "sex"])
    patients["pid"] = pseudonymise(patients["pid"])
    patients["postcode"] = patients["postcode"].astype(str).str.strip().str[:3]
    patients["age"] = age_band(patients["age"])
    classes = patients.groupby(["postcode", "age", "sex"], dropna=False)["pid"].nunique()
    _ = (classes < k).sum(), classes.nsmallest(5)
    patients.to_parquet(out / "patients.parquet", index=False)

    visits = pd.read_parquet(visits_file, columns=APPROVED["visits"])
    visits["pid"] = pseudonymise(visits["pid"])
    for column in ("visit_date", "discharge_date"):
        visits[column] = pd.to_datetime(visits[column]) + offset
    _ = visits["pid"].nunique()
    visits.to_parquet(out / "visits.parquet", index=False)


ENCLAVE_DOES = (
    "HMAC-SHA256 pseudonym, ledger subject and date jitter once per distinct person, dates shifted, "
    "ages banded, "
    "postcodes truncated, direct ids and free text dropped, k-anonymity of both datasets, Parquet, "
    "read-only views, synthetic twin, disclosure ledger, SHA-256 of sources and outputs, fsync, atomic switch"
)
PANDAS_DOES = (
    "HMAC-SHA256 pseudonym once per distinct person, dates shifted, ages banded, postcodes truncated, "
    "direct ids and free text not read, k-anonymity of patients, persons of visits counted, Parquet"
)


STEPS = {  # the end of a progress message -> the step it starts
    "reading persons and quasi-identifiers": "read: facts (persons, quasi-identifiers)",
    "pseudonymising persons": "pseudonymise: HMAC map (pseudonym, jitter, ledger subject)",
    "top- and bottom-coding measures": "coding: measure bounds",
    "checking k-anonymity": "k-check",
    "de-identifying": "write: join map, dates, bands, codes, Parquet",
    "counting persons": "counts",
    "synthesising the twin": "twin",
    "recording subjects in the disclosure ledger": "ledger: stage subjects",
    "uploading to object storage": "upload",
    "waiting for the SHA-256 of the files": "wait for SHA-256 of sources and outputs",
    "building views": "views",
    "writing the report and syncing the files": "report, fsync",
    "recording the disclosure ledger": "ledger: commit",
    "switching to the new version": "switch",
}
PARQUET_SETTINGS = [
    "COMPRESSION snappy",
    "COMPRESSION zstd, COMPRESSION_LEVEL 1",
    "COMPRESSION zstd",
    "COMPRESSION lz4_raw",
    "COMPRESSION uncompressed",
    "COMPRESSION zstd, COMPRESSION_LEVEL 1, ROW_GROUP_SIZE 1000000",
    "COMPRESSION zstd, COMPRESSION_LEVEL 1, DICTIONARY_SIZE_LIMIT 1000",
]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class StepTimer:
    """A progress callback that records the wall and CPU time of each step of one preparation."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float, float]] = [("start", time.perf_counter(), cpu_seconds())]

    def __call__(self, message: str) -> None:
        self.marks.append((message, time.perf_counter(), cpu_seconds()))

    def finish(self) -> None:
        self.marks.append(("end", time.perf_counter(), cpu_seconds()))

    def steps(self) -> list[tuple[str, float, float]]:
        """(step, wall seconds, CPU seconds) in order; a dataset's steps carry its name."""
        out = []
        for (message, wall, cpu), (_, next_wall, next_cpu) in zip(self.marks, self.marks[1:], strict=False):
            dataset, _, action = message.rpartition(": ")
            step = STEPS.get(action, action)
            out.append((f"{dataset}: {step}" if dataset else step, next_wall - wall, next_cpu - cpu))
        return out


def print_steps(timer: StepTimer) -> None:
    steps = timer.steps()
    wall, cpu = sum(s[1] for s in steps), sum(s[2] for s in steps)
    print("enclave step by step (best run; CPU is the process's, all threads):")
    for step, seconds, cpu_used in steps:
        print(f"  {seconds:7.2f} s wall {cpu_used:7.2f} s CPU {100 * seconds / wall:5.1f}%  {step}")
    print(f"  {wall:7.2f} s wall {cpu:7.2f} s CPU          total")


def parquet_settings(prepared: Path, folder: Path) -> None:
    """Rewrite the prepared ``prepared`` file with each of ``PARQUET_SETTINGS``; print time and size."""
    con = duckdb.connect(config={"preserve_insertion_order": False})
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet('{prepared}')")
    (rows,) = con.execute("SELECT count(*) FROM t").fetchone()  # type: ignore[misc]
    print(f"Parquet settings, rewriting the prepared {prepared.name} ({rows:,} rows) from memory:")
    for setting in PARQUET_SETTINGS:
        target = folder / "settings.parquet"
        started, cpu = time.perf_counter(), cpu_seconds()
        con.execute(f"COPY t TO '{target}' (FORMAT parquet, {setting})")
        elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        started = time.perf_counter()
        con.execute(f"SELECT count(*), count(DISTINCT pid) FROM read_parquet('{target}')").fetchall()
        read = time.perf_counter() - started
        print(
            f"  write {elapsed:5.2f} s wall {cpu:5.2f} s CPU, {target.stat().st_size / 1e6:6.1f} MB, "
            f"read back {read:4.2f} s  {setting}"
        )
        target.unlink()
    con.close()


def load() -> str:
    return (
        "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg()) + f" on {os.cpu_count()} CPUs"
    )


def best_of(repeat: int, run: Callable[[int], object]) -> float:
    """The shortest wall time of ``repeat`` runs (``run`` gets the run number)."""
    times = []
    for attempt in range(repeat):
        started = time.perf_counter()
        run(attempt)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--visits-per-patient", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1, help="runs per side; the best counts")
    parser.add_argument("--no-pandas", action="store_true", help="time the enclave only")
    parser.add_argument("--parquet-settings", action="store_true", help="compare Parquet write settings")
    args = parser.parse_args()
    print(load())
    visit_rows = args.patients * args.visits_per_patient
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        patients_file, visits_file = generate(folder, args.patients, args.visits_per_patient)
        elapsed = time.perf_counter() - started
        print(f"generated {args.patients:,} patients and {visit_rows:,} visits in {elapsed:.1f} s")

        paths = Paths(folder / "home")
        paths.home.mkdir()
        project = parse_project_spec(
            {
                "id": "bench-1",
                "title": "Benchmark",
                "purpose": "benchmark",
                "pi": "alice",
                "analysts": ["alice"],
                "committee": ["carol", "dave", "erin"],
                "datasets": APPROVED,
                "period": {"start": "2026-01-01", "end": "2027-01-01"},
            }
        )
        datasets = {
            "patients": (parse_dataset_spec(PATIENTS_SPEC), patients_file),
            "visits": (parse_dataset_spec(VISITS_SPEC), visits_file),
        }
        reports = []
        timers: list[StepTimer] = []

        def run_enclave(attempt: int) -> None:
            timers.append(StepTimer())
            reports.append(
                prepare_workspace(paths, project, datasets, version=attempt + 1, progress=timers[-1])
            )
            timers[-1].finish()

        started_cpu = cpu_seconds()
        enclave_seconds = best_of(args.repeat, run_enclave)
        enclave_cpu = (cpu_seconds() - started_cpu) / args.repeat
        print(f"enclave does: {ENCLAVE_DOES}")
        print(
            f"enclave (DuckDB): {enclave_seconds:.1f} s, {visit_rows / enclave_seconds:,.0f} visit rows/s "
            f"(k_ok={reports[-1].k_ok}; {enclave_cpu:.1f} s CPU per run; {load()})"
        )
        print_steps(min(timers, key=lambda timer: timer.marks[-1][1] - timer.marks[0][1]))
        if args.parquet_settings:
            parquet_settings(reports[-1].prepared_dir / "visits.parquet", folder)
        if args.no_pandas:
            return

        def run_pandas(attempt: int) -> None:
            out = folder / f"pandas-{attempt}"
            out.mkdir()
            pandas_prepare(patients_file, visits_file, out)

        started_cpu = cpu_seconds()
        pandas_seconds = best_of(args.repeat, run_pandas)
        pandas_cpu = (cpu_seconds() - started_cpu) / args.repeat
        print(f"pandas does: {PANDAS_DOES}")
        print(
            f"pandas:           {pandas_seconds:.1f} s, {visit_rows / pandas_seconds:,.0f} visit rows/s "
            f"({pandas_cpu:.1f} s CPU per run; {load()})"
        )
        print(f"ratio (enclave / pandas rows per second): {pandas_seconds / enclave_seconds:.1f}x")


if __name__ == "__main__":
    main()
