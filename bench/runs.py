"""Batch-run latency (issue 12): from submit to finished for a small notebook, through the worker and
a locked-down run container, beside papermill run directly in this venv on the same notebook.
Needs root and Docker:

    .venv/bin/python bench/runs.py [--runs N]

The enclave is real (a registered dataset, a provisioned and prepared project, published data);
the worker runs each run synchronously (``Worker.run_once``), so the time is the run's own: claim,
checks, run folder, token, container start (publish, network, firewall, create, start: timed
apart), papermill in the container, output collection, the end. The two are interleaved, the
order swapped every round. Every object is named ``enclave-bench-run-*`` and only those are removed.
Prints the median and p95 of each, their ratio, and the median container start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import make_home, print_load, summary  # noqa: E402
from enclave import db  # noqa: E402
from enclave.config import Paths  # noqa: E402
from enclave.runs import service  # noqa: E402
from enclave.runs.worker import Worker  # noqa: E402
from tests.harness.docker_objects import remove_named, sh  # noqa: E402
from tests.runs.factories import notebook_bytes  # noqa: E402

PROJECT = "bench-runs"
USER = "alice"
PREFIX = "enclave-bench-run-"
IMAGE = "enclave/analyst:latest"
NOTEBOOK = notebook_bytes(
    "import csv\nrows = [(i, i * i) for i in range(n)]",
    "with open('squares.csv', 'w', newline='') as f:\n    csv.writer(f).writerows(rows)",
    "print(sum(b for _, b in rows))",
    parameters="n = 10",
)
PARAMETERS = {"n": 1000}


class TimedExecutor:
    """The Docker executor, its ``start`` timed (publish, network, firewall, create, start)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.starts: list[float] = []

    def start(self, *args: Any, **kwargs: Any) -> str:
        began = time.perf_counter()
        try:
            return self.inner.start(*args, **kwargs)
        finally:
            self.starts.append(time.perf_counter() - began)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def time_worker_run(worker: Worker, paths: Paths) -> float:
    sessions = db.connect(f"sqlite:///{paths.state_db}")
    began = time.perf_counter()
    with db.session_scope(sessions) as session:
        run_id = service.submit(
            session,
            paths,
            project=PROJECT,
            user=USER,
            notebook=NOTEBOOK,
            notebook_name="squares.ipynb",
            parameters=PARAMETERS,
            actor=USER,
            image=IMAGE,
        ).id
    assert worker.run_once() == run_id
    took = time.perf_counter() - began
    with db.session_scope(sessions) as session:
        run = service.get_run(session, run_id)
        if run.state != "succeeded":
            raise SystemExit(f"run {run_id} {run.state}: {run.error_json}\n{service.log_text(paths, run)}")
    return took


def time_host_papermill(work: Path) -> float:
    """papermill in this venv, same notebook, parameters and flags as the run container's."""
    notebook, params, out = work / "squares.ipynb", work / "parameters.json", work / "out"
    notebook.write_bytes(NOTEBOOK)
    params.write_text(json.dumps(PARAMETERS))
    out.mkdir(exist_ok=True)
    papermill = Path(sys.executable).parent / "papermill"
    if not papermill.exists():
        raise SystemExit("papermill is not installed in this venv: pip install -e '.[test]'")
    began = time.perf_counter()
    sh(str(papermill), str(notebook), str(out / ".executed.ipynb"), "-f", str(params), "--cwd", str(out),
       "-k", "python3", "--log-output", "--no-progress-bar")  # fmt: skip
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the worker manages Docker networks and the host firewall")
    from hub_config.batch import BatchSettings, DockerRunExecutor

    sh("bash", str(REPO / "scripts/docker/start-dockerd.sh"))
    sh("bash", str(REPO / "images/build.sh"))
    remove_named(PREFIX)
    results: dict[str, list[float]] = {"worker + container": [], "papermill on the host": []}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
            root = Path(tmp)
            paths = make_home(root, PROJECT, USER, datasets=("patients",))
            settings = BatchSettings(image=IMAGE, network_prefix=PREFIX + "net-", name_prefix=PREFIX)
            executor = TimedExecutor(DockerRunExecutor(paths, settings))
            sessions = db.connect(f"sqlite:///{paths.state_db}")
            worker = Worker(lambda: db.session_scope(sessions), paths, executor, host_cap=1, poll_s=0.1)
            (root / "host").mkdir()
            time_worker_run(worker, paths)  # warm-up: network, firewall, published data, page cache
            time_host_papermill(root / "host")
            executor.starts.clear()
            for round_ in range(args.runs):
                order = list(results) if round_ % 2 == 0 else list(results)[::-1]
                for label in order:
                    if label == "worker + container":
                        results[label].append(time_worker_run(worker, paths))
                    else:
                        results[label].append(time_host_papermill(root / "host"))
            starts = list(executor.starts)
    finally:
        remove_named(PREFIX)
    print_load()
    for label, times in results.items():
        median, p95 = summary(times)
        rounded = [round(t, 2) for t in times]
        print(f"{label:22s} n={len(times)} median {median:.2f} s  p95 {p95:.2f} s  all {rounded}")
    start = statistics.median(starts)
    print(f"container start (publish, network, firewall, create, start): median {start:.2f} s")
    ratio = summary(results["worker + container"])[0] / summary(results["papermill on the host"])[0]
    print(f"worker + container / papermill on the host, median ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
