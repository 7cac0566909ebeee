"""The reproducibility check of an export from a batch run (issue 12).

Submitting a request from a run queues a rerun (same notebook, parameters, data version, image and
analyst identity). When the rerun ends the worker calls ``record`` (one of its finish hooks): the
request's stored files are compared with the rerun's outputs (``enclave.runs.compare``), the result
is stored on the rerun (``reproduction_json``) and audited (``run.reproduce``). A rerun that failed,
timed out or was cancelled is ``not_reproduced`` with that reason; so is a rerun whose data version
is no longer the project's current prepared one (``data_version_changed``), whatever it wrote.

Reviewers (the project's committee members and stewards) and the requester may ask for another
rerun while the request is in review or approved, one at a time. The requester may: a rerun can
only add evidence, and every rerun and its result stay listed for the reviewers, so asking again
cannot hide a result that did not reproduce.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db.models import ExportRequest, Run
from enclave.errors import BadInput, EnclaveError, Forbidden
from enclave.prepare import layout
from enclave.projects import get as get_project
from enclave.projects import roles_of
from enclave.roles import ProjectRole
from enclave.runs import compare
from enclave.runs import service as runs
from enclave.runs.states import RunState, is_terminal
from export_review import permissions
from export_review.repository import lock_request
from export_review.submission import file_store
from export_review.workflow import ExportState

PENDING = "pending"
SYSTEM_ACTOR = "export-review"
RERUN_STATES = frozenset({ExportState.IN_REVIEW, ExportState.APPROVED})
_ENDED = {
    RunState.FAILED: ("rerun_failed", "the rerun failed", "重跑失败"),
    RunState.TIMED_OUT: ("rerun_timed_out", "the rerun timed out", "重跑超时"),
    RunState.CANCELLED: ("rerun_cancelled", "the rerun was cancelled", "重跑已取消"),
}


def _current_version(paths: Paths, project_id: str) -> int | None:
    try:
        return layout.current_version(paths, project_id)
    except (EnclaveError, OSError, ValueError):
        return None  # no prepared data any more


def _ended_badly(rerun: Run) -> dict[str, Any]:
    code, en, zh = _ENDED.get(
        RunState(rerun.state), ("rerun_not_finished", "the rerun did not finish", "重跑未完成")
    )
    error = json.loads(rerun.error_json) if rerun.error_json else None
    if error:
        en += f": {error.get('message', '')}"
        zh += f"：{error.get('message_zh', error.get('message', ''))}"
    return compare.not_reproduced(code, en, zh, state=rerun.state, error=error)


def _compared(session: Session, paths: Paths, request: ExportRequest, rerun: Run) -> dict[str, Any]:
    origin = json.loads(request.provenance_json or "{}")
    recorded = {f["name"]: f.get("run_sha256") for f in origin.get("files", [])}
    store = file_store(paths)
    exported = {
        f.name: compare.Exported(store.path_for(f.sha256), recorded.get(f.name)) for f in request.files
    }
    outputs = runs.run_store(paths)
    produced = {o.name: compare.Produced(outputs.path_for(o.sha256), o.sha256) for o in rerun.outputs}
    result = compare.compare(exported, produced)
    # A stored copy that no longer hashes to the request's record was changed in the vault, which
    # ``compare`` can only call "edited": say which it was.
    recorded_request = {f.name: f.sha256 for f in request.files}
    for item in result["files"]:
        if item["sha256"] != recorded_request[item["name"]]:
            item["stored_copy_changed"] = True
            item["reason"] = "the export's stored copy no longer matches the request's recorded hash"
            item["reason_zh"] = "导出文件的存储副本与申请记录的哈希不符"
    return result


def _data_changed(result: dict[str, Any], rerun: Run, current: int | None) -> dict[str, Any]:
    en = (
        f"the project's data changed since the run (version {rerun.data_version}, now "
        f"{current if current is not None else 'none'})"
    )
    zh = f"运行后项目数据已更新（版本 {rerun.data_version}，当前 {current if current is not None else '无'}）"
    out = compare.not_reproduced(
        "data_version_changed", en, zh, run_version=rerun.data_version, current_version=current
    )
    return {**result, **{k: out[k] for k in ("verdict", "reason", "summary", "summary_zh")}}


def evaluate(session: Session, paths: Paths, request: ExportRequest, rerun: Run) -> dict[str, Any]:
    """The reproduction result of a finished ``rerun`` of ``request``'s run (nothing stored)."""
    if rerun.state != RunState.SUCCEEDED:
        return _ended_badly(rerun)
    result = _compared(session, paths, request, rerun)
    current = _current_version(paths, request.project_id)
    if current != rerun.data_version:
        return _data_changed(result, rerun, current)
    return result


def record(session: Session, paths: Paths, rerun: Run) -> dict[str, Any] | None:
    """The worker's finish hook: compare, store the result on the rerun and audit it. Does nothing
    (``None``) for a run that is not the rerun of an export request."""
    if rerun.kind != runs.KIND_RERUN or not rerun.export_request_id:
        return None
    request = session.get(ExportRequest, rerun.export_request_id)
    if request is None or request.run_id != rerun.rerun_of:
        result = compare.not_reproduced(
            "export_request_mismatch",
            f"export request {rerun.export_request_id} was not made from run {rerun.rerun_of}",
            f"导出申请 {rerun.export_request_id} 并非来自作业 {rerun.rerun_of}",
        )
    else:
        result = evaluate(session, paths, request, rerun)
    result = {
        **result,
        "rerun": rerun.id,
        "rerun_of": rerun.rerun_of,
        "export_request": rerun.export_request_id,
        "compared_at": audit.now_iso(),
    }
    rerun.reproduction_json = json.dumps(result, ensure_ascii=False)
    audit.record(
        session,
        AuditAction.RUN_REPRODUCE,
        actor=SYSTEM_ACTOR,
        obj=f"run:{rerun.id}",
        project=rerun.project_id,
        outcome=result["verdict"],
        details={
            "run": rerun.id,
            "rerun_of": rerun.rerun_of,
            "export_request": rerun.export_request_id,
            "verdict": result["verdict"],
            "counts": result["counts"],
            "reason": (result.get("reason") or {}).get("code"),
            "files": {f["name"]: f["status"] for f in result["files"]},
        },
    )
    session.flush()
    return result


def reruns_of(session: Session, request: ExportRequest) -> list[Run]:
    """The request's reruns, newest first."""
    return list(
        session.scalars(
            select(Run)
            .where(Run.export_request_id == request.id, Run.kind == runs.KIND_RERUN)
            .order_by(Run.created_at.desc(), Run.id.desc())
        )
    )


def _state(rerun: Run) -> str:
    if rerun.reproduction_json:
        return str(json.loads(rerun.reproduction_json)["verdict"])
    return PENDING


def view(session: Session, request: ExportRequest) -> dict[str, Any] | None:
    """The latest rerun's result for ``show`` and the pages (``None`` for a request not from a run):
    ``state`` is ``pending``, ``reproduced`` or ``not_reproduced``; ``history`` lists every rerun."""
    if request.run_id is None:
        return None
    reruns = reruns_of(session, request)
    if not reruns:
        return {"state": PENDING, "rerun": None, "rerun_state": None, "result": None, "history": []}
    latest = reruns[0]
    return {
        "state": _state(latest),
        "rerun": latest.id,
        "rerun_state": latest.state,
        "result": json.loads(latest.reproduction_json) if latest.reproduction_json else None,
        "history": [
            {"rerun": r.id, "state": _state(r), "rerun_state": r.state, "created_at": r.created_at}
            for r in reruns
        ],
    }


def check_user_can_rerun(
    session: Session, request: ExportRequest, user: str, stewards: Collection[str]
) -> None:
    """The requester, the project's committee members and stewards; a request from a run, in review
    or approved, in an open project, with no rerun already waiting or running."""
    if request.run_id is None:
        raise BadInput(
            "export_not_from_run",
            f"Export request {request.id} was not made from a run: there is nothing to rerun",
            f"导出申请 {request.id} 并非来自批处理作业：无可重跑",
        )
    if (
        user != request.requester
        and user not in stewards
        and ProjectRole.COMMITTEE not in roles_of(session, request.project_id, user)
    ):
        raise Forbidden(
            "export_rerun_forbidden",
            f"{user} may not ask for a rerun of export request {request.id}: its requester, committee "
            "members and stewards may",
            f"{user} 不能为导出申请 {request.id} 申请重跑：只有申请人、委员和数据管理员可以",
        )
    if request.state not in RERUN_STATES:
        raise Forbidden(
            "export_state_invalid",
            f"Export request {request.id} is {request.state}: a rerun is asked for in review or approved",
            f"导出申请 {request.id} 状态为 {request.state}：只有审核中或已批准的申请可以重跑",
            details={"state": request.state},
        )
    permissions.check_project_open_for_exports(get_project(session, request.project_id))
    waiting = [r.id for r in reruns_of(session, request) if not is_terminal(r.state)]
    if waiting:
        raise Forbidden(
            "export_rerun_pending",
            f"Rerun {waiting[0]} of export request {request.id} has not finished yet",
            f"导出申请 {request.id} 的重跑 {waiting[0]} 尚未完成",
            details={"rerun": waiting[0]},
        )


def request_rerun(
    session: Session, paths: Paths, request_id: str, *, user: str, stewards: Collection[str] = ()
) -> dict[str, Any]:
    """Queue another rerun of the request's run; its result replaces the shown one when it ends."""
    request = lock_request(session, request_id)
    permissions.check_user_can_view(session, request, user, stewards)
    check_user_can_rerun(session, request, user, stewards)
    assert request.run_id is not None
    rerun = runs.rerun(session, paths, run_id=request.run_id, actor=user, export_request_id=request.id)
    return {"request": request.id, "rerun": rerun.id, "state": PENDING}
