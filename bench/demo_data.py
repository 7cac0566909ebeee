"""Benchmark the demo-data generator: rows per second per table and overall.

    .venv/bin/python bench/demo_data.py --patients 1000000 --seed 42

Generates into a temporary folder (removed afterwards unless --keep DIR is given) and prints figures;
it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from enclave.demo_data import generate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", type=Path, help="write here and keep the files")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="enclave-demo-bench-") as scratch:
        out = args.keep or Path(scratch)
        cpu_started = time.process_time()
        summary = generate(out, args.patients, args.seed)
        cpu = time.process_time() - cpu_started
        seconds = summary.seconds
        print(f"{args.patients:,} patients, seed {args.seed}: {seconds:.2f} s wall, {cpu:.2f} s CPU")
        print(f"{'table':<14}{'rows':>14}{'rows/s':>14}{'MB':>10}")
        for dataset in summary.datasets:
            size = dataset.parquet.stat().st_size / 1e6
            print(f"{dataset.name:<14}{dataset.rows:>14,}{dataset.rows / seconds:>14,.0f}{size:>10.1f}")
        total = sum(d.rows for d in summary.datasets)
        print(f"{'all':<14}{total:>14,}{total / seconds:>14,.0f}")


if __name__ == "__main__":
    main()
