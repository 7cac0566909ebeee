"""``generate``: write the demo cohort (four Parquet files and their dataset specs) into a folder.

Patients are generated in chunks of a fixed size; each (table, chunk) has its own random stream, so
the same seed always gives byte-identical files and memory stays bounded however many patients.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from enclave.demo_data import labs, patients, prescriptions, visits
from enclave.demo_data.dataset_specs import dataset_spec
from enclave.demo_data.identity import IdRegistry
from enclave.demo_data.output import OutputSet
from enclave.demo_data.sampling import stream
from enclave.errors import BadInput

CHUNK_PATIENTS = 100_000
MAX_PATIENTS = 5_000_000  # the 7-digit person key allows more; this bounds time and disk
MAX_SEED = 2**63 - 1
BYTES_PER_PATIENT = 600  # generous estimate of all four files together, for the free-space check
SCHEMAS: dict[str, pa.Schema] = {
    "patients": patients.SCHEMA,
    "visits": visits.SCHEMA,
    "labs": labs.SCHEMA,
    "prescriptions": prescriptions.SCHEMA,
}
DATASETS = tuple(SCHEMAS)

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class DemoDataset:
    """One dataset written: its name, Parquet file, spec file and number of rows."""

    name: str
    parquet: Path
    spec: Path
    rows: int


@dataclass(frozen=True)
class DemoSummary:
    """Everything ``generate`` wrote, and how long it took."""

    datasets: tuple[DemoDataset, ...]
    seconds: float

    def rows(self, name: str) -> int:
        return next(d.rows for d in self.datasets if d.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "datasets": [
                {"name": d.name, "parquet": str(d.parquet), "spec": str(d.spec), "rows": d.rows}
                for d in self.datasets
            ],
            "seconds": round(self.seconds, 3),
        }


def _check_arguments(patients_wanted: object, seed: object) -> None:
    if not isinstance(patients_wanted, int) or isinstance(patients_wanted, bool):
        raise BadInput(
            "demo_patients_invalid",
            f"The number of patients must be a whole number, not {patients_wanted!r}",
            f"患者人数必须是整数，而不是 {patients_wanted!r}",
        )
    if not 1 <= patients_wanted <= MAX_PATIENTS:
        raise BadInput(
            "demo_patients_out_of_range",
            f"The number of patients must be between 1 and {MAX_PATIENTS:,}, not {patients_wanted:,}",
            f"患者人数必须在 1 到 {MAX_PATIENTS:,} 之间，而不是 {patients_wanted:,}",
            details={"patients": patients_wanted, "min": 1, "max": MAX_PATIENTS},
        )
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise BadInput(
            "demo_seed_invalid",
            f"The seed must be a whole number between 0 and {MAX_SEED}, not {seed!r}",
            f"随机种子必须是 0 到 {MAX_SEED} 之间的整数，而不是 {seed!r}",
        )


def _prepare_directory(out_dir: Path, patients_wanted: int) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BadInput(
            "demo_out_dir_invalid",
            f"The output path exists and is not a folder: {out}",
            f"输出路径已存在且不是文件夹：{out}",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(out).free
    except OSError as exc:
        raise BadInput(
            "demo_out_dir_invalid",
            f"Cannot create the output folder {out}: {exc.strerror or exc}",
            f"无法创建输出文件夹 {out}：{exc.strerror or exc}",
        ) from None
    needed = patients_wanted * BYTES_PER_PATIENT
    if free < needed:
        raise BadInput(
            "demo_disk_full",
            f"{out} has {free:,} bytes free; {patients_wanted:,} patients need about {needed:,}",
            f"{out} 仅剩 {free:,} 字节可用；{patients_wanted:,} 名患者约需 {needed:,} 字节",
            details={"free_bytes": free, "needed_bytes": needed},
        )
    return out


def _spec_yaml(name: str) -> str:
    return yaml.safe_dump(dataset_spec(name, f"{name}.parquet"), allow_unicode=True, sort_keys=False)


def _build_chunk(
    seed: int, chunk: int, first: int, count: int, first_visit: int, registry: IdRegistry
) -> dict[str, pa.Table]:
    """The rows of all four tables for patients ``first`` .. ``first + count - 1``."""
    people_table, people = patients.build_patients(stream(seed, "patients", chunk), first, count, registry)
    planted = visits.plant_rare_diagnoses(stream(seed, "planted"), people) if chunk == 0 else []
    visit_table, visit_chunk = visits.build_visits(
        stream(seed, "visits", chunk), people, first_visit, planted
    )
    return {
        "patients": people_table,
        "visits": visit_table,
        "labs": labs.build_labs(stream(seed, "labs", chunk), people, visit_chunk),
        "prescriptions": prescriptions.build_prescriptions(
            stream(seed, "prescriptions", chunk), people, visit_chunk
        ),
    }


def _write_all(
    output: OutputSet, patients_wanted: int, seed: int, progress: Progress | None
) -> dict[str, int]:
    """Generate chunk by chunk; a writer thread compresses one chunk while the next is generated."""
    writers = {name: output.parquet(f"{name}.parquet", schema) for name, schema in SCHEMAS.items()}
    rows = dict.fromkeys(DATASETS, 0)
    registry = IdRegistry()

    def write(tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            writers[name].write_table(table)

    def report(tables: dict[str, pa.Table]) -> None:
        for name, table in tables.items():
            rows[name] += table.num_rows
            if progress is not None:
                progress(name, rows[name])

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-data-writer") as writer:
        pending: tuple[Future[None], dict[str, pa.Table]] | None = None
        first_visit = 1
        for chunk, first in enumerate(range(0, patients_wanted, CHUNK_PATIENTS)):
            count = min(CHUNK_PATIENTS, patients_wanted - first)
            tables = _build_chunk(seed, chunk, first, count, first_visit, registry)
            first_visit += tables["visits"].num_rows
            if pending is not None:  # at most one chunk waits to be written: memory stays bounded
                pending[0].result()
                report(pending[1])
            pending = (writer.submit(write, tables), tables)
        if pending is not None:
            pending[0].result()
            report(pending[1])
    for name in DATASETS:
        output.text(f"{name}.yaml", _spec_yaml(name))
    return rows


def generate(out_dir: Path, patients: int, seed: int, progress: Progress | None = None) -> DemoSummary:
    """Write a synthetic cohort of ``patients`` people into ``out_dir``, reproducibly for ``seed``.

    Writes ``patients``, ``visits``, ``labs`` and ``prescriptions`` as ``NAME.parquet`` with a
    ``NAME.yaml`` dataset spec beside each (its ``source`` is the Parquet file name). Existing files
    of those names are replaced only once every new file is complete. ``progress(dataset, rows)`` is
    called after each chunk with the rows written so far.
    """
    started = time.perf_counter()
    _check_arguments(patients, seed)
    out = _prepare_directory(out_dir, patients)
    try:
        with OutputSet(out) as output:
            rows = _write_all(output, patients, seed, progress)
            output.commit()
    except OSError as exc:
        raise BadInput(
            "demo_write_failed",
            f"Could not write the demo data into {out}: {exc.strerror or exc}",
            f"无法将演示数据写入 {out}：{exc.strerror or exc}",
        ) from None
    datasets = tuple(
        DemoDataset(name, out / f"{name}.parquet", out / f"{name}.yaml", rows[name]) for name in DATASETS
    )
    return DemoSummary(datasets, time.perf_counter() - started)
