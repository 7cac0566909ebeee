"""Exports from batch runs: which run the files came from and how (issue 12, R-EXP-3 lineage).

A request made from a run takes the run's outputs from the run store by hash: the analyst uploads
nothing, so the files are exactly what the run wrote. A file the analyst gives as well is compared by
name with the run's output: another hash marks it ``edited_after_run``, and a name the run never
wrote is not ``from_run``. The provenance (run, notebook, parameters, data version, image digest,
the queries the run made, each file's origin) is stored with the request, covered by the request
digest the reviewers sign, and carried by the release manifest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from enclave.config import Paths
from enclave.db.models import Run
from enclave.errors import BadInput, Forbidden, NotFound, Refused
from enclave.filestore import FileStore, StagedFile
from enclave.runs import service as runs
from enclave.runs.states import RunState

MAX_QUERIES = 1000  # the run's queries kept in the provenance; more are counted, not listed


def check_run(session: Session, *, run_id: str, project_id: str, requester: str) -> Run:
    """The requester's own succeeded run in this project, or a refusal that says which rule failed.

    A run the requester may not see is ``run_not_found``, as everywhere else (its existence is not
    revealed)."""
    run = runs.get_visible(session, run_id, requester)
    if run.user != requester:
        raise Forbidden(
            "export_run_not_own",
            f"Run {run.id} is {run.user}'s: an export is made from your own run only",
            f"作业 {run.id} 属于 {run.user}：只能从您自己的作业导出",
            details={"run": run.id},
        )
    if run.project_id != project_id:
        raise Forbidden(
            "export_run_other_project",
            f"Run {run.id} belongs to project {run.project_id}, not {project_id}",
            f"作业 {run.id} 属于项目 {run.project_id}，而不是 {project_id}",
            details={"run": run.id, "project": run.project_id},
        )
    if run.kind != runs.KIND_RUN:
        raise Forbidden(
            "export_run_is_rerun",
            f"{run.id} is a reproducibility rerun: export from the original run {run.rerun_of}",
            f"{run.id} 是复现重跑：请从原作业 {run.rerun_of} 导出",
            details={"run": run.id, "rerun_of": run.rerun_of},
        )
    if run.state != RunState.SUCCEEDED:
        raise Forbidden(
            "export_run_not_succeeded",
            f"Run {run.id} is {run.state}: only a succeeded run's outputs can be exported",
            f"作业 {run.id} 状态为 {run.state}：只能导出成功作业的输出",
            details={"run": run.id, "state": run.state},
        )
    return run


def chosen_outputs(run: Run, outputs: Sequence[str] | None, given: Sequence[str]) -> list[str]:
    """The run's outputs the request takes from the store: the named ones, or all of them; a name
    also given as a file is the analyst's file, not the store's."""
    known = {o.name for o in run.outputs}
    if outputs is None:
        names = sorted(known)
    else:
        names = list(outputs)
        if len(set(names)) != len(names):
            raise BadInput("export_output_repeated", "An output is named twice", "同一输出被指定了两次")
        unknown = [n for n in names if n not in known]
        if unknown:
            raise NotFound(
                "run_output_not_found",
                f"Run {run.id} has no output {unknown}",
                f"作业 {run.id} 没有输出 {unknown}",
                details={"run": run.id, "files": unknown},
            )
    return [n for n in names if n not in set(given)]


def stage_outputs(
    paths: Paths, store: FileStore, run: Run, names: Sequence[str], max_bytes: int
) -> list[StagedFile]:
    """Copy the named outputs from the run store into the export store's staging, checking each
    against the hash the run recorded (``run_output_tampered`` when the stored bytes changed)."""
    recorded = {o.name: o.sha256 for o in run.outputs}
    run_store = runs.run_store(paths)
    staged: list[StagedFile] = []
    try:
        for name in names:
            # The copy is hashed as it is made: checked against the record, the bytes are read once.
            source = run_store.path_for(recorded[name])
            item = store.stage(source, name, max_bytes) if source.is_file() else None
            if item is not None:
                staged.append(item)
            if item is None or item.sha256 != recorded[name]:
                raise Refused(
                    "run_output_tampered",
                    f"The stored output {name} of run {run.id} no longer matches its recorded sha256",
                    f"作业 {run.id} 的已存储输出 {name} 与记录的 sha256 不再一致",
                    details={"run": run.id, "file": name},
                )
    except BaseException:
        for item in staged:
            store.discard(item)
        raise
    return staged


def file_origin(run: Run, name: str, sha256: str) -> dict[str, Any]:
    """How one file of the request relates to the run's output of the same name."""
    recorded = {o.name: o.sha256 for o in run.outputs}.get(name)
    return {
        "name": name,
        "sha256": sha256,
        "run_sha256": recorded,
        "from_run": recorded is not None,
        "edited_after_run": recorded is not None and recorded != sha256,
    }


def build(run: Run, files: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The provenance of a request made from ``run`` with ``files`` as ``(name, sha256)``."""
    queries = [
        {"query_id": q.query_id, "sql": q.sql, "outcome": q.outcome, "at": q.at}
        for q in sorted(run.queries, key=lambda q: (q.at, q.id))
    ]
    return {
        "run": run.id,
        "user": run.user,
        "project": run.project_id,
        "template": run.template,
        "notebook": {"name": run.notebook_name, "sha256": run.notebook_sha256},
        "executed_sha256": run.executed_sha256,
        "parameters": json.loads(run.parameters_json),
        "data_version": run.data_version,
        "image": run.image,
        "image_digest": run.image_digest,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "queries": queries[:MAX_QUERIES],
        "queries_total": len(queries),
        "files": [file_origin(run, name, sha) for name, sha in sorted(files)],
    }
