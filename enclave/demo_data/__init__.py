"""Synthetic demo cohort: patients, visits, labs and prescriptions as Parquet, with dataset specs.

    >>> from enclave.demo_data import generate
    >>> summary = generate(Path("demo"), patients=10_000, seed=42)  # doctest: +SKIP

Everything is fake but shaped like a Chinese hospital's records, including the direct identifiers
that preparation must remove, rare diagnoses and extreme costs that the disclosure rules must catch.
"""

from enclave.demo_data.generator import (
    CHUNK_PATIENTS,
    DATASETS,
    MAX_PATIENTS,
    MAX_SEED,
    DemoDataset,
    DemoSummary,
    generate,
)

__all__ = ["CHUNK_PATIENTS", "DATASETS", "MAX_PATIENTS", "MAX_SEED", "DemoDataset", "DemoSummary", "generate"]
