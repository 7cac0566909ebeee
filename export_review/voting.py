"""Committee votes: per file, signed over the request digest, tallied by the committee rule.

A vote is written once (the table refuses updates). The request row is locked first, so two
reviewers voting at the same moment are counted one after the other and exactly one of them
takes the decision (R-APP-7, R-APP-10, R-APP-25, R-EXP-6, T2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from enclave import audit, signing
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.errors import BadInput, Forbidden, NotFound, Refused
from export_review import permissions
from export_review.digest import vote_message
from export_review.models import ExportFile, ExportRequest, ExportVote
from export_review.policy import ReviewSettings
from export_review.repository import lock_request, seated_committee
from export_review.workflow import Actor, ExportState, FileTally, Vote, decide, set_state, tally_file

MAX_TEXT = 5000


def keys_dir(paths: Paths) -> Path:
    return paths.vault / "keys"


def reviewer_public_key(paths: Paths, reviewer: str) -> str | None:
    path = signing.key_path(keys_dir(paths), reviewer)
    if not path.exists():
        return None
    return signing.public_key_hex(signing.load_or_create_key(keys_dir(paths), reviewer))


def _clean(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    if len(text) > MAX_TEXT:
        raise BadInput("export_text_too_long", f"At most {MAX_TEXT} characters", f"最多 {MAX_TEXT} 个字符")
    return text.strip()


def _message(request: ExportRequest, file: ExportFile, vote: ExportVote) -> bytes:
    return vote_message(
        digest=request.digest,
        request_id=request.id,
        file_name=file.name,
        file_sha256=file.sha256,
        reviewer=vote.reviewer,
        choice=vote.choice,
        comment=vote.comment,
        override=vote.override_reason,
    )


def signature_valid(paths: Paths, request: ExportRequest, vote: ExportVote) -> bool:
    """The vote verifies under the reviewer's own key in the vault (not just the key stored beside it)."""
    key = reviewer_public_key(paths, vote.reviewer)
    return (
        key is not None
        and key == vote.public_key
        and signing.verify(key, _message(request, vote.file, vote), vote.signature)
    )


def tallies(
    paths: Paths, session: Session, request: ExportRequest, settings: ReviewSettings
) -> dict[str, FileTally]:
    """Each file's tally; a vote whose signature does not verify is not counted (T2)."""
    seated = seated_committee(session, request.project_id)
    out = {}
    for file in request.files:
        choices = {
            v.reviewer: v.choice
            for v in request.votes
            if v.file_id == file.id and signature_valid(paths, request, v)
        }
        out[file.name] = tally_file(choices, seated, settings.committee)
    return out


def _targets(request: ExportRequest, file_name: str | None) -> list[ExportFile]:
    if file_name is None:
        return list(request.files)
    match = [f for f in request.files if f.name == file_name]
    if not match:
        raise NotFound(
            "export_file_not_found",
            f"Export request {request.id} has no file {file_name!r}",
            f"导出申请 {request.id} 中没有文件 {file_name!r}",
        )
    return match


def vote(
    session: Session,
    paths: Paths,
    request_id: str,
    *,
    user: str,
    choice: str,
    settings: ReviewSettings,
    file_name: str | None = None,
    comment: str | None = None,
    override: str | None = None,
) -> dict[str, Any]:
    """Cast ``user``'s vote on one file or on every file; decide the request when the rule is met."""
    try:
        ballot = Vote(choice)
    except ValueError:
        raise BadInput(
            "export_vote_invalid",
            f"A vote is approve, reject or changes, not {choice!r}",
            f"投票只能是 approve、reject 或 changes，而不是 {choice!r}",
        ) from None
    comment, override = _clean(comment), _clean(override)
    if ballot is not Vote.APPROVE and comment is None:
        raise BadInput(
            "export_comment_required",
            "A rejection or a request for changes needs a comment",
            "拒绝或要求修改时必须填写意见",
        )
    request = lock_request(session, request_id)
    permissions.check_user_can_vote(session, request, user)
    if request.state != ExportState.IN_REVIEW:
        raise Forbidden(
            "export_not_in_review",
            f"Export request {request.id} is {request.state}: votes are closed",
            f"导出申请 {request.id} 状态为 {request.state}：投票已结束",
        )
    targets = _targets(request, file_name)
    already = sorted(
        f.name for f in targets if any(v.file_id == f.id and v.reviewer == user for v in request.votes)
    )
    if already:
        raise Forbidden(
            "export_already_voted",
            f"{user} has already voted on {already}",
            f"{user} 已对 {already} 投过票",
        )
    needs_override = sorted(f.name for f in targets if f.failed)
    if ballot is Vote.APPROVE and needs_override and override is None:
        raise Refused(
            "export_override_required",
            f"{needs_override} failed automated checks: approving needs a written override reason "
            "(--override)",
            f"{needs_override} 未通过自动检查：批准需要书面的超越理由（--override）",
            details={"files": needs_override},
        )
    key = signing.load_or_create_key(keys_dir(paths), user)
    public = signing.public_key_hex(key)
    cast = []
    for file in targets:
        row = ExportVote(
            request_id=request.id,
            file_id=file.id,
            reviewer=user,
            choice=ballot.value,
            comment=comment,
            override_reason=override if ballot is Vote.APPROVE and file.failed else None,
            public_key=public,
            signature="",
            created_at=audit.now_iso(),
        )
        row.file = file
        row.signature = signing.sign(key, _message(request, file, row))
        session.add(row)
        cast.append(row)
    session.flush()
    session.refresh(request, ["votes"])
    audit.record(
        session,
        AuditAction.EXPORT_VOTE,
        actor=user,
        obj=f"export:{request.id}",
        project=request.project_id,
        details={
            "choice": ballot.value,
            "files": [{"name": v.file.name, "signature": v.signature} for v in cast],
            "comment": comment,
            "override": override,
            "digest": request.digest,
            "public_key": public,
        },
    )
    decision = _decide(session, paths, request, settings, user)
    return {
        "request": request.id,
        "state": request.state,
        "voted": [v.file.name for v in cast],
        "decision": decision,
    }


def _decide(
    session: Session, paths: Paths, request: ExportRequest, settings: ReviewSettings, user: str
) -> dict[str, Any] | None:
    counted = tallies(paths, session, request, settings)
    outcome = decide(counted)
    if outcome is None:
        return None
    seated = seated_committee(session, request.project_id)
    decision = {
        "state": outcome.value,
        "rule": settings.committee.describe(len(seated)),
        "files": {name: t.to_dict() for name, t in counted.items()},
        "approvers": sorted({v.reviewer for v in request.votes if v.choice == Vote.APPROVE}),
        "decided_by_vote_of": user,
        "decided_at": audit.now_iso(),
        "digest": request.digest,
    }
    request.decision_json = json.dumps(decision, ensure_ascii=False)
    set_state(session, request, outcome, user=user, actor=Actor.REVIEWER, details=decision)
    return decision
