"""Finished batch runs without Docker, for the export tests: the rows and stored files a worker
leaves, and the end of a rerun followed by its finish hook (``export_review.reproduction.record``)."""

from __future__ import annotations

import json
from typing import Any

from enclave import audit
from enclave.db.models import Run, RunOutput, RunQuery
from enclave.runs import service as runs
from enclave.runs.states import RunActor, RunState, move
from export_review import reproduction
from tests.export_review.factories import PROJECT, ExportEnv
from tests.runs.factories import TABLE_NOTEBOOK

TABLE = b"group,n\na,25\nb,40\nc,15\n"
SUMMARY = b"group,mean\na,1.5\nb,2.25\nc,3.0\n"


def make_run(
    env: ExportEnv,
    *,
    user: str = "bob",
    project: str = PROJECT,
    outputs: dict[str, bytes] | None = None,
    state: RunState = RunState.SUCCEEDED,
    queries: tuple[str, ...] = ("SELECT dx, count(*) FROM patients GROUP BY dx",),
) -> str:
    """A finished run as the worker leaves it: rows, stored notebook and outputs."""
    outputs = {"table.csv": TABLE, "summary.csv": SUMMARY} if outputs is None else outputs
    notebook_sha = runs.store_bytes(env.paths, TABLE_NOTEBOOK, "table.ipynb")
    now = audit.now_iso()
    with env.session() as s:
        run = Run(
            id=runs.new_run_id(),
            project_id=project,
            user=user,
            kind=runs.KIND_RUN,
            notebook_name="table.ipynb",
            notebook_sha256=notebook_sha,
            parameters_json=json.dumps({"scale": 2}),
            image="enclave/analyst:latest",
            image_digest="sha256:" + "ab" * 32,
            data_version=1,
            state=state.value,
            cancel_requested=False,
            timeout_s=600,
            created_at=now,
            started_at=now,
            ended_at=now,
            executed_sha256=notebook_sha,
        )
        s.add(run)
        s.flush()
        for name, data in outputs.items():
            sha = runs.store_bytes(env.paths, data, name)
            s.add(RunOutput(run_id=run.id, name=name, sha256=sha, size=len(data)))
        for i, sql in enumerate(queries):
            s.add(RunQuery(run_id=run.id, query_id=f"q{i}", sql=sql, outcome="allowed", at=now))
        return run.id


def finish_rerun(
    env: ExportEnv,
    rerun_id: str,
    outputs: dict[str, bytes],
    state: RunState = RunState.SUCCEEDED,
    error: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """What the worker does at the end of a rerun, then its finish hook."""
    with env.session() as s:
        rerun = runs.get_run(s, rerun_id)
        move(s, rerun, RunState.RUNNING, RunActor.WORKER, by="worker")
        for name, data in outputs.items():
            s.add(
                RunOutput(
                    run_id=rerun.id, name=name, sha256=runs.store_bytes(env.paths, data, name), size=len(data)
                )
            )
        rerun.error_json = json.dumps(error) if error else None
        move(s, rerun, state, RunActor.WORKER, by="worker")
        s.flush()
        s.refresh(rerun)
        return reproduction.record(s, env.paths, rerun)
