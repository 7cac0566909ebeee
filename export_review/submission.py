"""Submitting an export request: copy into the vault, check on the server, enter the review queue.

Nothing here trusts the workspace: the files are copied into the vault first (``store``), and the
checks read that copy. A request with a blocking finding (file type, size, active content) is
refused whole; otherwise it moves draft → submitted → checked → in_review in one transaction,
with one audit record per step (R-EXP-1..4, R-AUD-6). A request made from a batch run takes the
run's outputs from the run store instead of uploads, stores their provenance and queues the
reproducibility rerun (``provenance``, ``reproduction``).
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit
from enclave.config import Paths
from enclave.db.models import ExportFile, ExportRequest, Run
from enclave.errors import BadInput, Forbidden, Reason, Refused
from enclave.filestore import FileStore, StagedFile
from enclave.runs import service as runs
from export_review import permissions, provenance
from export_review.acro import acro_summary
from export_review.checks import CheckPolicy, Severity, StoredFile, failed, run_checks
from export_review.crossborder import check_cross_border
from export_review.digest import request_digest
from export_review.keyspace import KeySpaceProvider
from export_review.lineage import query_lineage
from export_review.policy import ReviewSettings
from export_review.repository import lock_project, lock_request, project_k, seated_committee
from export_review.workflow import Actor, ExportState, set_state

FILE_NAME = re.compile(r"^[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9\u4e00-\u9fff._ -]{0,199}$")
# Names a requester's disk may not hold (Windows device names; a trailing dot or space is dropped).
DEVICE_NAMES = frozenset(
    {"con", "prn", "aux", "nul"} | {f"{port}{i}" for port in ("com", "lpt") for i in range(1, 10)}
)
MAX_JUSTIFICATION = 5000


def file_store(paths: Paths) -> FileStore:
    return FileStore(paths.exports / "files")


def _validate(justification: str, names: Sequence[str], settings: ReviewSettings) -> list[str]:
    if not justification.strip() or len(justification) > MAX_JUSTIFICATION:
        raise BadInput(
            "export_justification_required",
            f"A justification of 1 to {MAX_JUSTIFICATION} characters is required",
            f"需要填写 1 至 {MAX_JUSTIFICATION} 个字符的理由",
        )
    if not names or len(names) > settings.checks.max_files:
        raise BadInput(
            "export_file_count",
            f"A request holds 1 to {settings.checks.max_files} files",
            f"每个申请包含 1 至 {settings.checks.max_files} 个文件",
        )
    bad = [n for n in names if not _portable(n)]
    if bad:
        raise BadInput(
            "export_file_name_invalid",
            f"File names must be letters, digits, '._- ', not start with a dot, not end with a dot or "
            f"space, and not be a device name such as CON: {bad}",
            f"文件名只能包含字母、数字、'._- '，不能以点开头、不能以点或空格结尾，"
            f"也不能是 CON 等设备名：{bad}",
            details={"files": bad},
        )
    # Released files are written side by side: two names one disk would store as one are refused.
    folded = [unicodedata.normalize("NFKC", n).casefold() for n in names]
    if len(set(folded)) != len(folded):
        raise BadInput(
            "export_file_name_repeated",
            "Two files have the same name (ignoring case)",
            "有两个文件同名（不区分大小写）",
        )
    return list(names)


def _portable(name: str) -> bool:
    """A bare file name every requester's disk can hold as it is (checked before anything is stored)."""
    return (
        bool(FILE_NAME.match(name))
        and not name.endswith((".", " "))
        and name.split(".")[0].rstrip(" ").casefold() not in DEVICE_NAMES
    )


def _check_source_root(files: Sequence[Path], source_root: Path | None) -> None:
    if source_root is None:
        return
    root = source_root.resolve()
    outside = [str(f) for f in files if not Path(f).resolve().is_relative_to(root)]
    if outside:
        raise Forbidden(
            "export_file_outside_workspace",
            f"Files must come from the workspace {root}: {outside}",
            f"文件必须来自工作空间 {root}：{outside}",
        )


def _previous(session: Session, revises: str, project_id: str, requester: str) -> ExportRequest:
    previous = lock_request(session, revises)
    if previous.project_id != project_id or previous.requester != requester:
        raise Forbidden(
            "export_not_requester",
            f"Only the requester of {revises} can revise it, in its own project",
            f"只有 {revises} 的申请人可以在同一项目中修订它",
        )
    if previous.state != ExportState.CHANGES_REQUESTED:
        raise Forbidden(
            "export_state_invalid",
            f"Export request {revises} is {previous.state}: only a request with changes requested is revised",
            f"导出申请 {revises} 状态为 {previous.state}：只有被要求修改的申请可以修订",
        )
    if session.scalar(select(ExportRequest.id).where(ExportRequest.previous_id == revises)):
        raise Forbidden(
            "export_already_revised",
            f"Export request {revises} already has a revision",
            f"导出申请 {revises} 已有修订版本",
        )
    return previous


def _block(findings: dict[str, list[dict]]) -> None:
    reasons = [
        Reason(f["code"], f["message"], f["message_zh"], {"file": name})
        for name, items in findings.items()
        for f in items
        if f["severity"] == Severity.BLOCK
    ]
    if reasons:
        raise Refused(
            "export_checks_blocked",
            "The request was refused by the automated checks",
            "申请未通过自动检查",
            reasons=reasons,
        )


def _counted_rows(stored: list[StoredFile]) -> int:
    return sum(len(t.frame) for s in stored for t in s.content.tables)


def _check_committee_can_decide(session: Session, project_id: str, settings: ReviewSettings) -> None:
    """Refuse a request the project's seated committee could never approve under the rule."""
    seated = seated_committee(session, project_id)
    needed = settings.committee.needed(len(seated))
    if not settings.committee.reachable(len(seated)):
        raise BadInput(
            "export_committee_too_small",
            f"Project {project_id} has {len(seated)} voting committee members; approval needs {needed}",
            f"项目 {project_id} 有 {len(seated)} 名表决委员；批准需要 {needed} 票",
        )


def _check_total_size(staged: list[StagedFile], settings: ReviewSettings) -> None:
    """Refuse files that add up to more than the request's cap."""
    total = sum(s.size for s in staged)
    if total > settings.checks.max_request_bytes:
        raise Refused(
            "export_request_too_large",
            f"The files add up to {total} bytes, above the cap of {settings.checks.max_request_bytes}",
            f"文件合计 {total} 字节，超过上限 {settings.checks.max_request_bytes}",
        )


def submit(
    session: Session,
    paths: Paths,
    *,
    project_id: str,
    requester: str,
    justification: str,
    files: Sequence[Path] = (),
    settings: ReviewSettings,
    key_space: KeySpaceProvider,
    abroad: bool = False,
    records: int | None = None,
    revises: str | None = None,
    source_root: Path | None = None,
    today: date | None = None,
    run_id: str | None = None,
    outputs: Sequence[str] | None = None,
) -> ExportRequest:
    """Store, check and queue a request (or a revision of one); return it in ``in_review``.

    With ``run_id`` the files are the requester's run's outputs (``outputs``, or all of them),
    taken from the run store by hash, plus any ``files`` given (compared with the run's output of
    the same name); the provenance is stored and a reproducibility rerun is queued.
    ``today`` replaces the enclave's date in the project's period check (tests)."""
    if outputs is not None and run_id is None:
        raise BadInput(
            "export_outputs_without_run",
            "Outputs are named only with the run they come from",
            "只有指定作业时才能指定其输出",
        )
    given = [Path(f).name for f in files]
    run, taken = None, []
    if run_id is not None:
        permissions.check_user_can_submit(session, project_id, requester, today)
        run = provenance.check_run(session, run_id=run_id, project_id=project_id, requester=requester)
        taken = provenance.chosen_outputs(run, outputs, given)
    names = _validate(justification, [*given, *taken], settings)
    _check_source_root(files, source_root)
    if run is None:
        permissions.check_user_can_submit(session, project_id, requester, today)
    previous = _previous(session, revises, project_id, requester) if revises else None
    _check_committee_can_decide(session, project_id, settings)
    store = file_store(paths)
    staged: list[StagedFile] = []
    try:
        for source, name in zip(files, names[: len(given)], strict=True):
            staged.append(store.stage(Path(source), name, settings.checks.max_file_bytes))
        if run is not None:
            staged += provenance.stage_outputs(paths, store, run, taken, settings.checks.max_file_bytes)
        _check_total_size(staged, settings)
        draft = _Draft(project_id, requester, justification, abroad, records, previous, run)
        request = _create(session, draft, staged, settings, key_space)
        if run is not None:
            runs.rerun(session, paths, run_id=run.id, actor=requester, export_request_id=request.id)
        for item in staged:
            store.commit(item)
    finally:
        for item in staged:
            store.discard(item)
    return request


@dataclass(frozen=True)
class _Draft:
    """What the requester asks for: the project, who asks and why, whether it goes abroad (with the
    records declared), the request it revises and the run its files come from."""

    project_id: str
    requester: str
    justification: str
    abroad: bool
    records: int | None
    previous: ExportRequest | None
    run: Run | None


@dataclass(frozen=True)
class _Checked:
    """The vault's copies as the checks saw them, each file's findings, and the project's k."""

    stored: list[StoredFile]
    findings: dict[str, list[dict]]
    k: int


def _create(
    session: Session,
    draft: _Draft,
    staged: list[StagedFile],
    settings: ReviewSettings,
    key_space: KeySpaceProvider,
) -> ExportRequest:
    """Check the staged files, count the records going abroad, write the request and its files,
    and move it draft → submitted → checked → in_review, one audit record per step."""
    checked = _run_checks(session, draft.project_id, staged, settings, key_space)
    counted = _records_abroad(session, draft, checked.stored, settings)
    origin = None if draft.run is None else provenance.build(draft.run, [(s.name, s.sha256) for s in staged])
    request = _new_request(session, draft, checked, counted, origin)
    _enter_review(session, request, draft, checked, origin)
    return request


def _run_checks(
    session: Session,
    project_id: str,
    staged: list[StagedFile],
    settings: ReviewSettings,
    key_space: KeySpaceProvider,
) -> _Checked:
    """Run the automated checks on the vault's copies; refuse the whole request on a blocking finding."""
    k = project_k(session, project_id)
    policy = CheckPolicy(k=k, limits=settings.checks, key_space=key_space(project_id))
    stored = [StoredFile(s.name, s.path, s.sha256, s.size) for s in staged]
    findings = {s.name: [f.to_dict() for f in run_checks(s, policy)] for s in stored}
    _block(findings)
    return _Checked(stored, findings, k)


def _records_abroad(
    session: Session, draft: _Draft, stored: list[StoredFile], settings: ReviewSettings
) -> int:
    """The records the request counts against the cross-border cap (R-EXP-7): none unless it goes
    abroad; then checked under the project's lock, so two submissions cannot both take the rest."""
    if not draft.abroad:
        return 0
    lock_project(session, draft.project_id)
    return check_cross_border(
        session,
        draft.project_id,
        None if draft.records is None else max(draft.records, _counted_rows(stored)),
        settings.cross_border_cap,
    )


def _new_request(
    session: Session, draft: _Draft, checked: _Checked, counted: int, origin: dict[str, Any] | None
) -> ExportRequest:
    """Write the request (a draft, with its digest) and its files, each with its findings."""
    request_id = f"exp-{uuid.uuid4().hex[:16]}"
    previous = draft.previous
    version = previous.version + 1 if previous else 1
    now = audit.now_iso()
    acro = acro_summary(checked.stored)
    request = ExportRequest(
        id=request_id,
        project_id=draft.project_id,
        requester=draft.requester,
        state=ExportState.DRAFT.value,
        version=version,
        previous_id=previous.id if previous else None,
        justification=draft.justification.strip(),
        abroad=draft.abroad,
        records=counted,
        digest=request_digest(
            request_id=request_id,
            version=version,
            previous_id=previous.id if previous else None,
            project=draft.project_id,
            requester=draft.requester,
            justification=draft.justification.strip(),
            abroad=draft.abroad,
            records=counted,
            files=[(s.name, s.sha256, s.size) for s in checked.stored],
            provenance=origin,
        ),
        k=checked.k,
        acro_json=json.dumps(acro, ensure_ascii=False) if acro else None,
        lineage_json=json.dumps(
            query_lineage(session, draft.project_id, draft.requester), ensure_ascii=False
        ),
        run_id=None if draft.run is None else draft.run.id,
        provenance_json=None if origin is None else json.dumps(origin, ensure_ascii=False),
        lock_seq=0,
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    for item in checked.stored:
        session.add(
            ExportFile(
                request_id=request_id,
                name=item.name,
                sha256=item.sha256,
                size=item.size,
                kind=item.kind,
                findings_json=json.dumps(checked.findings[item.name], ensure_ascii=False),
                failed=failed(checked.findings[item.name]),
            )
        )
    session.flush()
    return request


def _enter_review(
    session: Session, request: ExportRequest, draft: _Draft, checked: _Checked, origin: dict[str, Any] | None
) -> None:
    """Move the new request draft → submitted → checked → in_review, each move with its audit record."""
    summary: dict[str, Any] = {
        "files": [{"name": s.name, "sha256": s.sha256, "size": s.size} for s in checked.stored],
        "digest": request.digest,
        "abroad": draft.abroad,
        "records": request.records,
        "records_declared": draft.records,
        "revises": draft.previous.id if draft.previous else None,
    }
    if origin is not None:
        summary["run"] = origin["run"]
        summary["edited_after_run"] = [f["name"] for f in origin["files"] if f["edited_after_run"]]
        summary["not_from_run"] = [f["name"] for f in origin["files"] if not f["from_run"]]
    set_state(
        session, request, ExportState.SUBMITTED, user=draft.requester, actor=Actor.REQUESTER, details=summary
    )
    check_summary = {
        name: {"failed": failed(items), "codes": sorted({f["code"] for f in items})}
        for name, items in checked.findings.items()
    }
    set_state(
        session,
        request,
        ExportState.CHECKED,
        user="export-review",
        actor=Actor.SYSTEM,
        details={"k": checked.k, "findings": check_summary},
    )
    set_state(session, request, ExportState.IN_REVIEW, user="export-review", actor=Actor.SYSTEM)


def withdraw(session: Session, request_id: str, *, user: str, reason: str = "") -> ExportRequest:
    request = lock_request(session, request_id)
    permissions.check_user_can_withdraw(request, user)
    set_state(
        session, request, ExportState.WITHDRAWN, user=user, actor=Actor.REQUESTER, details={"reason": reason}
    )
    return request
