"""Committee votes: per file, signed over the request digest, tallied by the committee rule.

A vote is written once (the table refuses updates). The request row is locked first, so two
reviewers voting at the same moment are counted one after the other and exactly one of them
takes the decision (R-APP-7, R-APP-10, R-APP-25, R-EXP-6, T2).

A vote is signed with a **server-held** key (in the vault, the default for small sites) or, once
the reviewer has registered their own public key, only with that **reviewer-held** key: the
enclave then cannot sign for them (the keys and their registry are ``enclave.committee_keys``',
shared with application countersignatures). Which key was in force is decided by when the vote was
cast.
The decision is signed by the enclave key with the committee and rule it was taken under, and
``verify_approval`` recomputes it from the votes before anything is released or downloaded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from enclave import audit, signing
from enclave.audit import AuditAction
from enclave.committee import CommitteeRule, Tally, stricter, tally
from enclave.committee_keys import (
    REGISTRATION_PURPOSE,
    REVIEWER_HELD,
    SERVER_HELD,
    anchored_registrations,
    append_registration,
    enclave_sign,
    enclave_signed,
    registered_key,
    registration_body,
    reviewer_public_key,
    signing_key,
)
from enclave.config import Paths
from enclave.db.models import ExportFile, ExportRequest, ExportVote, ReviewerKey
from enclave.errors import BadInput, Forbidden, NotFound, Reason, Refused
from export_review import permissions
from export_review.digest import request_digest, vote_message
from export_review.policy import ReviewSettings
from export_review.repository import lock_request, seated_committee
from export_review.workflow import Actor, ExportState, Vote, decide, set_state

MAX_TEXT = 5000

# ---- registering a reviewer's own key (the registry itself is ``enclave.committee_keys``') -------


def _vote_tag(vote: ExportVote) -> str:
    """How a registry line names a server-held vote it keeps valid."""
    return hashlib.sha256(vote.signature.encode("ascii", "replace")).hexdigest()


def registrations(session: Session, reviewer: str) -> list[ReviewerKey]:
    """The database's mirror of ``reviewer``'s registrations, oldest first (for listing only)."""
    query = select(ReviewerKey).where(ReviewerKey.reviewer == reviewer)
    return list(session.scalars(query.order_by(ReviewerKey.registered_at, ReviewerKey.id)))


def register_key(
    session: Session, paths: Paths, *, reviewer: str, public_key: str, user: str, stewards: tuple[str, ...]
) -> dict[str, Any]:
    """Register ``reviewer``'s own public key; it replaces any earlier one from now on (audited)."""
    if not signing.SIGNER_PATTERN.fullmatch(reviewer):
        raise BadInput(
            "reviewer_invalid", f"Invalid reviewer name: {reviewer!r}", f"审核人名称无效：{reviewer!r}"
        )
    permissions.check_user_can_register_key(reviewer, user, stewards)
    previous = registered_key(paths, reviewer)
    if previous is not None and previous.public_key == public_key:
        raise BadInput(
            "export_key_already_registered",
            f"This key is already {reviewer}'s registered key",
            f"该密钥已是 {reviewer} 的登记密钥",
        )
    row = ReviewerKey(
        reviewer=reviewer,
        public_key=public_key,
        fingerprint=signing.fingerprint(public_key),
        registered_at=audit.now_iso(),
        registered_by=user,
        signature="",
    )
    # The server-held votes cast so far stay valid: named here, so none can be added later.
    server_key = reviewer_public_key(paths, reviewer) if previous is None else None
    kept = [
        _vote_tag(v)
        for v in session.scalars(select(ExportVote).where(ExportVote.reviewer == reviewer))
        if server_key is not None and v.public_key == server_key
    ]
    body = registration_body(row, kept)
    row.signature = enclave_sign(paths, REGISTRATION_PURPOSE, body)
    session.add(row)
    session.flush()
    details = {
        "reviewer": reviewer,
        "fingerprint": row.fingerprint,
        "public_key": public_key,
        "replaces": previous.fingerprint if previous else None,
        "server_held_votes_kept": len(kept),
    }
    audit.record(
        session, AuditAction.EXPORT_KEY_REGISTER, actor=user, obj=f"reviewer:{reviewer}", details=details
    )
    # Last, so a refused registration leaves no line; a line whose transaction then fails to commit
    # only names a key the reviewer holds.
    append_registration(paths, {**body, "signature": row.signature})
    return {**details, "registered_at": row.registered_at}


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


@dataclass(frozen=True)
class VoteCheck:
    """Whether a vote's signature verifies under the key that was in force for its reviewer."""

    valid: bool
    key_kind: str
    fingerprint: str | None


def check_vote(session: Session, paths: Paths, request: ExportRequest, vote: ExportVote) -> VoteCheck:
    """Verify ``vote`` under the reviewer's key in force when it was cast.

    Once a reviewer is in the vault's registry, only their registered keys count, plus the
    server-held votes the registry kept from before; otherwise the server-held key in the vault
    (not the key stored beside the vote).
    """
    try:
        fingerprint = signing.fingerprint(vote.public_key)
    except ValueError:
        return VoteCheck(False, SERVER_HELD, None)
    if vote.key_fingerprint is not None and vote.key_fingerprint != fingerprint:
        return VoteCheck(False, SERVER_HELD, fingerprint)
    anchored = anchored_registrations(paths, vote.reviewer)
    server_key = reviewer_public_key(paths, vote.reviewer)
    key: str | None
    kept = bool(anchored) and _vote_tag(vote) in anchored[0].server_held_votes
    if not anchored or (kept and vote.public_key == server_key):
        key, kind = server_key, SERVER_HELD
    else:
        in_force = [r for r in anchored if r.registered_at <= vote.created_at]
        key, kind = (in_force[-1].public_key or None) if in_force else None, REVIEWER_HELD
    valid = (
        key is not None
        and key == vote.public_key
        and vote.request_id == request.id
        and signing.verify(key, _message(request, vote.file, vote), vote.signature)
    )
    return VoteCheck(valid, kind, fingerprint)


def signature_valid(paths: Paths, request: ExportRequest, vote: ExportVote) -> bool:
    """The vote verifies under the reviewer's key in force when it was cast (see ``check_vote``)."""
    session = object_session(vote)
    return session is not None and check_vote(session, paths, request, vote).valid


def _tally(
    session: Session, paths: Paths, request: ExportRequest, members: list[str], rule: CommitteeRule
) -> dict[str, Tally]:
    out = {}
    for file in request.files:
        choices = {
            v.reviewer: v.choice
            for v in request.votes
            if v.file_id == file.id and check_vote(session, paths, request, v).valid
        }
        out[file.name] = tally(choices, members, rule)
    return out


def tallies(
    paths: Paths, session: Session, request: ExportRequest, settings: ReviewSettings
) -> dict[str, Tally]:
    """Each file's tally; a vote whose signature does not verify is not counted (T2)."""
    return _tally(session, paths, request, seated_committee(session, request.project_id), settings.committee)


def recomputed_digest(request: ExportRequest) -> str:
    """The request digest from the request's row and its files, as submission computed it."""
    return request_digest(
        request_id=request.id,
        version=request.version,
        previous_id=request.previous_id,
        project=request.project_id,
        requester=request.requester,
        justification=request.justification,
        abroad=request.abroad,
        records=request.records,
        files=[(f.name, f.sha256, f.size) for f in request.files],
        provenance=json.loads(request.provenance_json) if request.provenance_json else None,
    )


def _recorded_rule(
    session: Session, paths: Paths, request: ExportRequest, configured: CommitteeRule, problems: list[Reason]
) -> tuple[list[str], CommitteeRule]:
    """The committee and rule the signed decision records; never weaker than the configured rule."""
    decision = json.loads(request.decision_json or "null")
    body = {k: v for k, v in decision.items() if k != "signature"} if isinstance(decision, dict) else {}
    recorded = None
    if (
        body.get("state") == ExportState.APPROVED
        and body.get("digest") == request.digest
        and isinstance(body.get("committee"), list)
        and enclave_signed(paths, "export-decision", body, decision.get("signature"))
    ):
        try:
            recorded = CommitteeRule.model_validate(body.get("rule_settings"))
        except ValidationError:
            recorded = None
    if recorded is None:
        problems.append(
            Reason(
                "export_decision_unverified",
                "There is no approval decision signed by the enclave for this request",
                "该申请没有经飞地签名的批准决定",
            )
        )
        return seated_committee(session, request.project_id), configured
    members = [str(m) for m in body["committee"]]
    return members, stricter(configured, recorded, len(members))


def verify_approval(
    session: Session, paths: Paths, request: ExportRequest, configured: CommitteeRule
) -> dict[str, Any]:
    """Recompute the decision from votes whose signatures verify; raise unless it is "approved".

    The state column is not trusted: the digest is recomputed from the request, every vote on it
    must verify (one that does not is evidence of tampering), and the verified votes must approve
    every file under the committee and rule the signed decision recorded.
    """
    problems: list[Reason] = []
    if recomputed_digest(request) != request.digest:
        problems.append(
            Reason(
                "export_digest_mismatch",
                "The request no longer matches the digest its votes signed",
                "申请内容与投票所签名的摘要不符",
            )
        )
    members, rule = _recorded_rule(session, paths, request, configured, problems)
    bad = [
        {"file": v.file.name, "reviewer": v.reviewer}
        for v in request.votes
        if not check_vote(session, paths, request, v).valid
    ]
    if bad:
        problems.append(
            Reason(
                "export_vote_signature_invalid",
                f"{len(bad)} vote(s) do not verify under the reviewer's key",
                f"{len(bad)} 张投票无法用审核人的密钥验证",
                {"votes": bad},
            )
        )
    counted = _tally(session, paths, request, members, rule)
    if decide(counted) is not ExportState.APPROVED:
        problems.append(
            Reason(
                "export_votes_not_approving",
                "The verified votes do not approve every file under the committee rule",
                "经验证的投票未按委员会规则批准全部文件",
                {"files": {name: t.to_dict() for name, t in counted.items()}},
            )
        )
    if problems:
        raise Refused(
            "export_approval_unverified",
            f"The approval of export request {request.id} cannot be verified from its signed votes",
            f"无法根据已签名的投票核实导出申请 {request.id} 的批准",
            reasons=problems,
            details={"request": request.id},
        )
    return {"rule": rule.describe(len(members)), "files": {name: t.to_dict() for name, t in counted.items()}}


def _signing_key(
    session: Session, paths: Paths, user: str, private_key: Ed25519PrivateKey | None
) -> tuple[Ed25519PrivateKey, str]:
    """The key ``user`` must sign with now: their registered own key, else the server-held one."""
    return signing_key(
        paths,
        user,
        private_key,
        not_registered=Forbidden(
            "export_key_not_registered",
            f"{user} has no registered key: register its public key first "
            "(enclave export key register), or vote without --key",
            f"{user} 没有登记密钥：请先登记公钥（enclave export key register），或不带 --key 投票",
        ),
        key_required=Forbidden(
            "export_vote_key_required",
            f"{user} signs votes with their own key: vote with `enclave export vote --key FILE`",
            f"{user} 须用自己的密钥签名投票：请使用 `enclave export vote --key FILE`",
        ),
        mismatch_code="export_vote_key_mismatch",
    )


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


@dataclass(frozen=True)
class _Ballot:
    """A reviewer's ballot once checked: the choice, its comment and the written override reason."""

    choice: Vote
    comment: str | None
    override: str | None


@dataclass(frozen=True)
class _Signer:
    """Who signs the votes, the key they must sign with now, and who holds that key."""

    user: str
    key: Ed25519PrivateKey
    kind: str

    @property
    def public(self) -> str:
        return signing.public_key_hex(self.key)


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
    private_key: Ed25519PrivateKey | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Cast ``user``'s vote on one file or on every file; decide the request when the rule is met.
    Frozen unless the project is active and inside its period (``today``: the date, for tests).

    ``private_key`` is the reviewer's own key (read by the CLI from their file); it is required
    once they have registered one, and refused before.
    """
    ballot = _ballot(choice, comment, override)
    request = lock_request(session, request_id)
    targets = _open_targets(session, request, user, file_name, today)
    _check_override(ballot, targets)
    signer = _Signer(user, *_signing_key(session, paths, user, private_key))
    cast = _sign_votes(session, request, targets, ballot, signer)
    _record_vote(session, request, ballot, signer, cast)
    decision = _decide(session, paths, request, settings, user)
    return {
        "request": request.id,
        "state": request.state,
        "voted": [v.file.name for v in cast],
        "decision": decision,
    }


def _ballot(choice: str, comment: str | None, override: str | None) -> _Ballot:
    """Check the choice and the texts before anything is locked."""
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
    return _Ballot(ballot, comment, override)


def _open_targets(
    session: Session, request: ExportRequest, user: str, file_name: str | None, today: date | None
) -> list[ExportFile]:
    """The files ``user`` votes on now: they may vote, votes are open, and they have not voted on any."""
    permissions.check_user_can_vote(session, request, user, today)
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
    return targets


def _check_override(ballot: _Ballot, targets: list[ExportFile]) -> None:
    """Approving a file that failed the automated checks needs a written override reason."""
    needs_override = sorted(f.name for f in targets if f.failed)
    if ballot.choice is Vote.APPROVE and needs_override and ballot.override is None:
        raise Refused(
            "export_override_required",
            f"{needs_override} failed automated checks: approving needs a written override reason "
            "(--override)",
            f"{needs_override} 未通过自动检查：批准需要书面的超越理由（--override）",
            details={"files": needs_override},
        )


def _sign_votes(
    session: Session, request: ExportRequest, targets: list[ExportFile], ballot: _Ballot, signer: _Signer
) -> list[ExportVote]:
    """Write one signed vote per file (under the request's lock), then reload the request's votes."""
    public = signer.public
    cast = []
    for file in targets:
        row = ExportVote(
            request_id=request.id,
            file_id=file.id,
            reviewer=signer.user,
            choice=ballot.choice.value,
            comment=ballot.comment,
            override_reason=ballot.override if ballot.choice is Vote.APPROVE and file.failed else None,
            public_key=public,
            signature="",
            created_at=audit.now_iso(),
            key_fingerprint=signing.fingerprint(public),
        )
        row.file = file
        row.signature = signing.sign(signer.key, _message(request, file, row))
        session.add(row)
        cast.append(row)
    session.flush()
    session.refresh(request, ["votes"])
    return cast


def _record_vote(
    session: Session, request: ExportRequest, ballot: _Ballot, signer: _Signer, cast: list[ExportVote]
) -> None:
    """The vote's audit record: the ballot, each file's signature, and the key that made them."""
    public = signer.public
    audit.record(
        session,
        AuditAction.EXPORT_VOTE,
        actor=signer.user,
        obj=f"export:{request.id}",
        project=request.project_id,
        details={
            "choice": ballot.choice.value,
            "files": [{"name": v.file.name, "signature": v.signature} for v in cast],
            "comment": ballot.comment,
            "override": ballot.override,
            "digest": request.digest,
            "public_key": public,
            "key_kind": signer.kind,
            "key_fingerprint": signing.fingerprint(public),
        },
    )


def _decide(
    session: Session, paths: Paths, request: ExportRequest, settings: ReviewSettings, user: str
) -> dict[str, Any] | None:
    counted = tallies(paths, session, request, settings)
    outcome = decide(counted)
    if outcome is None:
        return None
    seated = seated_committee(session, request.project_id)
    decision: dict[str, Any] = {
        "state": outcome.value,
        "rule": settings.committee.describe(len(seated)),
        "rule_settings": settings.committee.model_dump(mode="json"),
        "committee": seated,
        "files": {name: t.to_dict() for name, t in counted.items()},
        "approvers": sorted({v.reviewer for v in request.votes if v.choice == Vote.APPROVE}),
        "decided_by_vote_of": user,
        "decided_at": audit.now_iso(),
        "digest": request.digest,
    }
    # Signed, so the committee and rule that release recomputes under cannot be rewritten in the table.
    decision["signature"] = enclave_sign(paths, "export-decision", decision)
    request.decision_json = json.dumps(decision, ensure_ascii=False)
    set_state(session, request, outcome, user=user, actor=Actor.REVIEWER, details=decision)
    return decision
