"""The Committee's vote on a data-use application, countersigned, decided by the committee rule
(R-APP-7, R-APP-10, R-APP-11, R-APP-25, T2).

A member votes once (approve or reject) on the application's current digest, and every member who
voted yes countersigns: an Ed25519 signature over the application, its revision and digest, the
member and their vote. It is made with the member's server-held key in the vault or, once they
have registered their own key in the registry (``enclave.committee_keys``, shared with export votes),
only with that key. An approval counts once countersigned.

The rule is ``enclave.committee``'s: approved when the countersigned approvals of the *seated*
members reach ``CommitteeRule.needed`` (more than two thirds, never fewer than two), every yes-voter
has countersigned, and each role the approval chain adds for the application's level (R-APP-11)
has a countersigned approval from a holder of that role; rejected once that can no longer happen.

Who is seated is fixed when the application entered committee review: the holders of the
committee role granted no later than the Office's forward (``application.forward``), less the
applicant and the team, who recuse themselves. The first vote records that list, signed by the
enclave, in an ``application.seat`` audit record, so a committee role granted mid-vote changes
neither the denominator nor who counts. Anyone else's vote (a member appointed later, an adviser)
is kept but not counted.

Every vote and countersignature takes the application's row lock first, so they are counted one
after the other; the decision is a compare-and-set on the state, so exactly one transaction
decides. The decision is signed by the enclave key with the rule, the seated members and the
approvers' signatures, and ``verify_decision`` recomputes it from the votes whose signatures verify
before anything is provisioned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from enclave import audit, roles, signing
from enclave.applications import service, workflow
from enclave.applications.settings import GovernanceSettings, load_governance
from enclave.applications.workflow import DECISIONS, ApplicationActor, ApplicationState
from enclave.audit import AuditAction, canonical_json
from enclave.committee import APPROVE, REJECT, CommitteeRule, Tally, stricter, tally
from enclave.committee_keys import (
    anchored_registrations,
    enclave_sign,
    enclave_signed,
    reviewer_public_key,
    signing_key,
)
from enclave.config import Paths
from enclave.db.models import Application, ApplicationVote, AuditEvent, StaffRole
from enclave.errors import BadInput, Forbidden, NotFound, Reason
from enclave.roles import Role

CHOICES = (APPROVE, REJECT)
MAX_COMMENT = 5000
# Domain separation: a signature made for one purpose never verifies for another.
COUNTERSIGN_PURPOSE = "application-countersign"
SEAT_PURPOSE = "application-seat"
DECISION_PURPOSE = "application-decision"


def _obj(app_id: str) -> str:
    return f"application:{app_id}"


def _lock(session: Session, app_id: str) -> Application:
    """Take the application's row lock for the rest of the transaction, then read it fresh.

    The write comes first: on SQLite it takes the database's write lock before anything is read,
    on PostgreSQL the row lock. A second voter waits here, then sees what the first committed.
    """
    result = session.execute(
        update(Application)
        .where(Application.id == app_id)
        .values(updated_at=Application.updated_at)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("application_not_found", f"No application {app_id!r}", f"没有编号为 {app_id!r} 的申请")
    app = session.get(Application, app_id, with_for_update=True, populate_existing=True)
    assert app is not None
    return app


def _check_open(app: Application) -> None:
    """Votes and countersignatures only while the committee may still decide (the workflow's
    ``application_state_invalid`` otherwise)."""
    workflow.check_transition(app, ApplicationState.APPROVED, ApplicationActor.COMMITTEE)
    if not app.digest:
        raise Forbidden(
            "application_digest_missing",
            f"Application {app.id} has no digest to vote on",
            f"申请 {app.id} 没有可供表决的摘要",
            details={"application": app.id},
        )


def _check_not_involved(app: Application, member: str) -> None:
    """Nobody votes on their own application: neither the applicant nor a team member (R-APP-10)."""
    if service.involves(app, member):
        raise Forbidden(
            "application_self_vote",
            f"{member} is the applicant or on the team of application {app.id}: they cannot vote on it",
            f"{member} 是申请 {app.id} 的申请人或团队成员：不能对其表决",
            details={"application": app.id, "user": member},
        )


def _role_zh(role: str) -> str:
    try:
        return roles.ROLE_LABELS_ZH[Role(role)]
    except ValueError:
        return role


def _check_voter(session: Session, app: Application, member: str, chain: tuple[str, ...]) -> None:
    """A committee member, or a holder of a role the approval chain needs at this level (R-APP-11)."""
    _check_not_involved(app, member)
    held = {r.value for r in roles.roles_of(session, member)}
    allowed = (Role.COMMITTEE.value, *chain)
    if not held & set(allowed):
        zh = "、".join(_role_zh(r) for r in allowed)
        raise Forbidden(
            "role_required",
            f"{member} cannot vote on application {app.id}: one of the roles {', '.join(allowed)} is needed",
            f"{member} 不能对申请 {app.id} 表决：需要以下角色之一：{zh}",
            details={"user": member, "roles": list(allowed), "application": app.id},
        )


def _clean(comment: str) -> str:
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        raise BadInput(
            "application_text_too_long",
            f"A comment has at most {MAX_COMMENT} characters",
            f"意见最多 {MAX_COMMENT} 个字符",
        )
    return text


def _vote_of(session: Session, app_id: str, member: str) -> ApplicationVote | None:
    return session.scalar(
        select(ApplicationVote).where(
            ApplicationVote.application_id == app_id, ApplicationVote.member == member
        )
    )


def _votes(session: Session, app_id: str) -> list[ApplicationVote]:
    query = select(ApplicationVote).where(ApplicationVote.application_id == app_id)
    return list(session.scalars(query.order_by(ApplicationVote.id)))


def _latest_event(session: Session, app_id: str, action: AuditAction) -> AuditEvent | None:
    query = select(AuditEvent).where(AuditEvent.action == action.value, AuditEvent.object == _obj(app_id))
    return session.scalar(query.order_by(AuditEvent.seq.desc()).limit(1))


# ---- who is seated ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seat:
    """The committee an application is decided by: the seated members, the rule and the chain roles
    recorded with them, and whether the list is recorded yet (``fixed``) or only what it would be."""

    seated: tuple[str, ...]
    rule: CommitteeRule
    chain: tuple[str, ...]
    seated_at: str
    fixed: bool


def _committee_as_of(session: Session, app: Application, as_of: str | None) -> list[str]:
    """Holders of the committee role granted no later than ``as_of`` (all, if ``None``), less the
    applicant and the team (they recuse themselves)."""
    rows = session.execute(
        select(StaffRole.username, StaffRole.granted_at).where(StaffRole.role == Role.COMMITTEE.value)
    )
    # Compared here, in byte order: PostgreSQL's collation may ignore punctuation.
    granted = {m for m, at in rows if as_of is None or at <= as_of}
    return sorted(m for m in granted if not service.involves(app, m))


def _chain_for(
    app: Application, settings: GovernanceSettings, recorded: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The chain roles for the application's level: those recorded, plus any the settings add now."""
    out = list(recorded)
    out.extend(r for r in settings.approval_chain.roles_for(app.level) if r not in out)
    return tuple(out)


def _seat_body(app: Application, seat: Seat) -> dict[str, Any]:
    return {
        "application": app.id,
        "revision": app.revision,
        "digest": app.digest,
        "seated": list(seat.seated),
        "seated_at": seat.seated_at,
        "rule": seat.rule.describe(len(seat.seated)),
        "rule_settings": seat.rule.model_dump(mode="json"),
        "chain": list(seat.chain),
    }


def _recorded_seat(session: Session, paths: Paths, app: Application) -> Seat | None:
    """The seat the first vote recorded; ``Forbidden`` if the record is not the enclave's own."""
    event = _latest_event(session, app.id, AuditAction.APPLICATION_SEAT)
    if event is None:
        return None
    details = json.loads(event.details_json)
    body = {k: v for k, v in details.items() if k != "signature"}
    seat = None
    if (
        enclave_signed(paths, SEAT_PURPOSE, body, details.get("signature"))
        and body.get("application") == app.id
        and body.get("revision") == app.revision
        and body.get("digest") == app.digest
    ):
        try:
            seat = Seat(
                seated=tuple(str(m) for m in body["seated"]),
                rule=CommitteeRule.model_validate(body["rule_settings"]),
                chain=tuple(str(r) for r in body["chain"]),
                seated_at=str(body["seated_at"]),
                fixed=True,
            )
        except (KeyError, TypeError, ValidationError):
            seat = None
    if seat is None:
        raise Forbidden(
            "application_committee_unverified",
            f"The record of the committee seated for application {app.id} is not signed by the enclave",
            f"申请 {app.id} 的表决委员名单记录未经飞地签名",
            details={"application": app.id, "seq": event.seq},
        )
    return seat


def _prospective_seat(session: Session, app: Application, settings: GovernanceSettings) -> Seat:
    forward = _latest_event(session, app.id, AuditAction.APPLICATION_FORWARD)
    as_of = forward.ts if forward is not None else None
    return Seat(
        seated=tuple(_committee_as_of(session, app, as_of)),
        rule=settings.committee,
        chain=_chain_for(app, settings),
        seated_at=as_of or audit.now_iso(),
        fixed=False,
    )


def _check_reachable(app: Application, seat: Seat) -> None:
    seated, needed = len(seat.seated), seat.rule.needed(len(seat.seated))
    if not seat.rule.reachable(seated):
        raise BadInput(
            "application_committee_too_small",
            f"Application {app.id} has {seated} seated committee members; approval needs {needed}",
            f"申请 {app.id} 只有 {seated} 名表决委员；批准需要 {needed} 票",
            details={"application": app.id, "seated": list(seat.seated)},
        )


def check_committee_can_decide(session: Session, paths: Paths, app: Application) -> None:
    """Before the Office forwards: the committee outside the team must be able to reach the rule,
    or the application would sit in committee review with no way to a decision."""
    settings = load_governance(paths)
    seat = Seat(
        seated=tuple(_committee_as_of(session, app, None)),
        rule=settings.committee,
        chain=_chain_for(app, settings),
        seated_at=audit.now_iso(),
        fixed=False,
    )
    _check_reachable(app, seat)


def _seat(
    session: Session, paths: Paths, app: Application, settings: GovernanceSettings, *, user: str
) -> Seat:
    """The recorded seat, or the committee as it stood at the forward, recorded now (first vote)."""
    recorded = _recorded_seat(session, paths, app)
    if recorded is not None:
        return recorded
    seat = _prospective_seat(session, app, settings)
    _check_reachable(app, seat)
    body = _seat_body(app, seat)
    audit.record(
        session,
        AuditAction.APPLICATION_SEAT,
        actor=user,
        obj=_obj(app.id),
        details={**body, "signature": enclave_sign(paths, SEAT_PURPOSE, body)},
    )
    return Seat(seat.seated, seat.rule, seat.chain, seat.seated_at, fixed=True)


# ---- countersignatures --------------------------------------------------------------------------


def countersign_message(app: Application, vote: ApplicationVote) -> bytes:
    """The exact bytes a member countersigns: the application, its revision and digest, the vote."""
    body = {
        "purpose": COUNTERSIGN_PURPOSE,
        "application": app.id,
        "revision": app.revision,
        "digest": app.digest,
        "member": vote.member,
        "choice": vote.choice,
        "comment": vote.comment,
    }
    return canonical_json(body).encode("utf-8")


def _key_in_force(paths: Paths, member: str, at: str) -> str | None:
    """The public key ``member`` signed with at ``at``: their registered key then in force, else the
    server-held key in the vault (never a key stored beside the vote)."""
    if not signing.SIGNER_PATTERN.fullmatch(member):  # a row no account could have written
        return None
    in_force = [r for r in anchored_registrations(paths, member) if r.registered_at <= at]
    if in_force:
        return in_force[-1].public_key or None
    return reviewer_public_key(paths, member)


def signature_valid(paths: Paths, app: Application, vote: ApplicationVote) -> bool:
    """The countersignature verifies, over the application's current digest, under the member's key
    in force when it was made."""
    if not (vote.signature and vote.countersigned_at and app.digest) or vote.digest != app.digest:
        return False
    if vote.application_id != app.id or vote.choice != APPROVE:
        return False
    key = _key_in_force(paths, vote.member, vote.countersigned_at)
    return (
        key is not None
        and signing.fingerprint(key) == vote.key_fingerprint
        and signing.verify(key, countersign_message(app, vote), vote.signature)
    )


def _signing_key(paths: Paths, member: str, own: Ed25519PrivateKey | None) -> tuple[Ed25519PrivateKey, str]:
    """The key ``member`` must sign with now: their registered own key, else the server-held one."""
    return signing_key(
        paths,
        member,
        own,
        not_registered=Forbidden(
            "application_key_not_registered",
            f"{member} has no registered key: register its public key first "
            "(enclave export key register), or countersign without --key",
            f"{member} 没有登记密钥：请先登记公钥（enclave export key register），或不带 --key 会签",
        ),
        key_required=Forbidden(
            "application_key_required",
            f"{member} signs with their own key: countersign with --key FILE",
            f"{member} 须用自己的密钥签名：请使用 --key FILE 会签",
        ),
        mismatch_code="application_key_mismatch",
    )


# ---- the count and the decision -----------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """The committee's tally and the approval chain's state on one application."""

    seat: Seat
    rule: CommitteeRule
    committee: Tally
    chain: dict[str, list[str]]  # role -> its holders whose approval is countersigned
    chain_blocked: list[str]  # roles whose every holder voted no
    chain_awaiting: list[str]  # chain-role holders outside the committee yet to countersign a yes
    valid: frozenset[str]  # members whose countersignature verifies
    holders: dict[str, list[str]]

    @property
    def approved(self) -> bool:
        return self.committee.approved and all(self.chain.values()) and not self.chain_awaiting

    @property
    def outcome(self) -> ApplicationState | None:
        if self.approved:
            return ApplicationState.APPROVED
        if self.committee.blocked or self.chain_blocked:
            return ApplicationState.REJECTED
        return None


def _holders(session: Session, app: Application, role: str) -> list[str]:
    try:
        held = roles.holders(session, Role(role))
    except ValueError:  # a role a later release dropped: nobody holds it
        return []
    return [m for m in held if not service.involves(app, m)]


def _count(
    session: Session, paths: Paths, app: Application, seat: Seat, settings: GovernanceSettings
) -> Count:
    votes = _votes(session, app.id)
    choices = {v.member: v.choice for v in votes}
    valid = frozenset(v.member for v in votes if signature_valid(paths, app, v))
    rule = stricter(settings.committee, seat.rule, len(seat.seated))
    committee = tally(choices, seat.seated, rule, countersigned=valid)
    chain: dict[str, list[str]] = {}
    blocked, awaiting, holders = [], set(), {}
    for role in _chain_for(app, settings, seat.chain):
        held = holders[role] = _holders(session, app, role)
        chain[role] = [m for m in held if choices.get(m) == APPROVE and m in valid]
        if held and all(choices.get(m) == REJECT for m in held):
            blocked.append(role)
        awaiting.update(
            m for m in held if choices.get(m) == APPROVE and m not in valid and m not in seat.seated
        )
    return Count(seat, rule, committee, chain, blocked, sorted(awaiting), valid, holders)


def _approver(vote: ApplicationVote, count: Count) -> dict[str, Any]:
    return {
        "member": vote.member,
        "seated": vote.member in count.seat.seated,
        "roles": sorted(r for r, held in count.holders.items() if vote.member in held),
        "signature": vote.signature,
        "key_fingerprint": vote.key_fingerprint,
        "countersigned_at": vote.countersigned_at,
    }


def _counts(count: Count) -> dict[str, Any]:
    return {
        "approve": count.committee.approvals + count.committee.awaiting,
        "reject": count.committee.rejections,
        "countersigned": count.committee.approvals,
        "awaiting_countersign": count.committee.awaiting + len(count.chain_awaiting),
        "outstanding": count.committee.outstanding,
        "needed": count.committee.needed,
        "still_needed": max(0, count.committee.needed - count.committee.approvals),
        "seated": len(count.seat.seated),
    }


def _decide(
    session: Session, paths: Paths, app: Application, seat: Seat, settings: GovernanceSettings, *, user: str
) -> dict[str, Any] | None:
    """Decide if the rule now says so; the enclave signs the decision and the state changes once."""
    count = _count(session, paths, app, seat, settings)
    outcome = count.outcome
    if outcome is None:
        return None
    votes = _votes(session, app.id)
    now = audit.now_iso()
    decision: dict[str, Any] = {
        "application": app.id,
        "revision": app.revision,
        "digest": app.digest,
        "state": outcome.value,
        "rule": count.rule.describe(len(seat.seated)),
        "rule_settings": count.rule.model_dump(mode="json"),
        "seated": list(seat.seated),
        "seated_at": seat.seated_at,
        "chain": {role: approvers for role, approvers in count.chain.items()},
        "chain_blocked": count.chain_blocked,
        "approvers": [_approver(v, count) for v in votes if v.member in count.valid],
        "rejections": sorted(v.member for v in votes if v.choice == REJECT),
        "tally": _counts(count),
        "decided_by_vote_of": user,
        "decided_at": now,
    }
    decision["signature"] = enclave_sign(paths, DECISION_PURPOSE, decision)
    # Compare-and-set: only the transaction that moves the state out of committee review decides.
    won = session.execute(
        update(Application)
        .where(Application.id == app.id, Application.state == ApplicationState.COMMITTEE_REVIEW.value)
        .values(state=outcome.value, decided_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if won != 1:
        session.refresh(app)
        workflow.check_transition(app, outcome, ApplicationActor.COMMITTEE)  # raises: decided elsewhere
    workflow.set_state(
        session, app, outcome, user=user, actor=ApplicationActor.COMMITTEE, details={"decision": decision}
    )
    return decision


# ---- the public functions -----------------------------------------------------------------------


def vote(
    session: Session, paths: Paths, app_id: str, *, member: str, choice: str, comment: str = ""
) -> dict[str, Any]:
    """Cast ``member``'s vote, once, on the application's current digest; decide if the rule is met.

    An approval counts only once countersigned (``countersign``); a vote cannot be changed.
    """
    _check_choice(choice)
    text = _clean(comment)
    settings = load_governance(paths)
    app = _lock(session, app_id)
    _check_open(app)
    recorded = _recorded_seat(session, paths, app)
    _check_first_vote(session, app, member, _chain_for(app, settings, recorded.chain if recorded else ()))
    seat = recorded or _seat(session, paths, app, settings, user=member)
    row = _add_vote(session, app, member, choice, text)
    counted = _record_vote(session, app, row, seat, settings)
    decision = _decide(session, paths, app, seat, settings, user=member)
    return {
        "application": app.id,
        "member": member,
        "choice": choice,
        "revision": app.revision,
        "digest": app.digest,
        "seated": member in seat.seated,
        "counted": counted,
        "countersign_needed": choice == APPROVE,
        "state": app.state,
        "decision": decision,
    }


def _check_choice(choice: str) -> None:
    """A vote is approve or reject (``application_vote_invalid`` otherwise)."""
    if choice not in CHOICES:
        raise BadInput(
            "application_vote_invalid",
            f"A vote is approve or reject, not {choice!r}",
            f"表决只能是 approve（同意）或 reject（不同意），而不是 {choice!r}",
        )


def _check_first_vote(session: Session, app: Application, member: str, chain: tuple[str, ...]) -> None:
    """``member`` may vote on ``app`` (``_check_voter``) and has not voted on it yet."""
    _check_voter(session, app, member, chain)
    if _vote_of(session, app.id, member) is not None:
        raise Forbidden(
            "application_already_voted",
            f"{member} has already voted on application {app.id}: a vote cannot be changed",
            f"{member} 已对申请 {app.id} 表决：表决不能更改",
            details={"application": app.id, "user": member},
        )


def _add_vote(session: Session, app: Application, member: str, choice: str, comment: str) -> ApplicationVote:
    """Write ``member``'s vote on the application's current digest (not countersigned yet)."""
    row = ApplicationVote(
        application_id=app.id,
        member=member,
        choice=choice,
        comment=comment,
        digest=app.digest,
        voted_at=audit.now_iso(),
    )
    session.add(row)
    session.flush()
    return row


def _record_vote(
    session: Session, app: Application, row: ApplicationVote, seat: Seat, settings: GovernanceSettings
) -> bool:
    """The vote's audit record; return whether it counts (a seated member's, or a chain role holder's)."""
    chain = _chain_for(app, settings, seat.chain)
    counted = row.member in seat.seated or any(row.member in _holders(session, app, r) for r in chain)
    audit.record(
        session,
        AuditAction.APPLICATION_VOTE,
        actor=row.member,
        obj=_obj(app.id),
        details={
            "choice": row.choice,
            "comment": row.comment,
            "revision": app.revision,
            "digest": app.digest,
            "seated": row.member in seat.seated,
            "counted": counted,
        },
    )
    return counted


def countersign(
    session: Session, paths: Paths, app_id: str, *, member: str, key_file: Path | None = None
) -> dict[str, Any]:
    """Countersign ``member``'s approval over the application's digest (R-APP-7); decide if the
    rule is met. ``key_file``: the member's own key, required once they registered one."""
    own = signing.load_key_file(key_file) if key_file is not None else None
    settings = load_governance(paths)
    app = _lock(session, app_id)
    _check_open(app)
    _check_not_involved(app, member)
    row = _approval_to_countersign(session, app, member)
    seat = _seat(session, paths, app, settings, user=member)
    _check_voter(session, app, member, _chain_for(app, settings, seat.chain))
    key, kind = _signing_key(paths, member, own)
    public = signing.public_key_hex(key)
    row.countersigned_at = audit.now_iso()
    row.key_fingerprint = signing.fingerprint(public)
    row.signature = signing.sign(key, countersign_message(app, row))
    session.flush()
    audit.record(
        session,
        AuditAction.APPLICATION_COUNTERSIGN,
        actor=member,
        obj=_obj(app.id),
        details={
            "revision": app.revision,
            "digest": app.digest,
            "signature": row.signature,
            "public_key": public,
            "key_fingerprint": row.key_fingerprint,
            "key_kind": kind,
        },
    )
    decision = _decide(session, paths, app, seat, settings, user=member)
    return {
        "application": app.id,
        "member": member,
        "signature": row.signature,
        "key_fingerprint": row.key_fingerprint,
        "key_kind": kind,
        "countersigned_at": row.countersigned_at,
        "state": app.state,
        "decision": decision,
    }


def _approval_to_countersign(session: Session, app: Application, member: str) -> ApplicationVote:
    """``member``'s approving vote, on the application's current digest and not yet countersigned."""
    row = _vote_of(session, app.id, member)
    if row is None:
        raise Forbidden(
            "application_not_voted",
            f"{member} has not voted on application {app.id}: vote approve first",
            f"{member} 尚未对申请 {app.id} 表决：请先表决同意",
            details={"application": app.id, "user": member},
        )
    if row.choice != APPROVE:
        raise Forbidden(
            "application_countersign_not_approve",
            f"{member} voted {row.choice} on application {app.id}: only members who voted yes countersign",
            f"{member} 对申请 {app.id} 的表决为 {row.choice}：只有表决同意的委员会签",
            details={"application": app.id, "user": member, "choice": row.choice},
        )
    if row.signature is not None:
        raise Forbidden(
            "application_already_countersigned",
            f"{member} has already countersigned application {app.id}",
            f"{member} 已会签申请 {app.id}",
            details={"application": app.id, "user": member},
        )
    if row.digest != app.digest:
        raise Forbidden(
            "application_digest_changed",
            f"Application {app.id} changed after {member} voted: the vote was on another digest",
            f"{member} 表决后申请 {app.id} 已变更：该表决针对的是另一摘要",
            details={"application": app.id, "voted_on": row.digest, "digest": app.digest},
        )
    return row


def _vote_dict(paths: Paths, app: Application, v: ApplicationVote) -> dict[str, Any]:
    return {
        "member": v.member,
        "choice": v.choice,
        "comment": v.comment,
        "voted_at": v.voted_at,
        "countersigned_at": v.countersigned_at,
        "key_fingerprint": v.key_fingerprint,
        "signature_valid": signature_valid(paths, app, v),
    }


def _sees_votes(session: Session, app: Application, viewer: str, count: Count) -> bool:
    """Blind review, as for exports: voters see each other's votes once every seated member has
    voted or the committee decided; everyone else once it decided."""
    if app.state in DECISIONS:
        return True
    held = {r.value for r in roles.roles_of(session, viewer)}
    voter = viewer in count.seat.seated or bool(held & {Role.COMMITTEE.value, *count.chain})
    return voter and count.committee.outstanding == 0


def tally_of(session: Session, paths: Paths, app_id: str, *, viewer: str | None = None) -> dict[str, Any]:
    """The counts, the approvals needed, the rule, the chain's state and the decision.

    Individual votes are listed only for a ``viewer``, and only as blind review allows (their
    own vote always); without a viewer only the counts are given.
    """
    app = service.get(session, app_id)
    if viewer is not None:
        service.check_visible(session, app, viewer)
    settings = load_governance(paths)
    seat = _recorded_seat(session, paths, app) or _prospective_seat(session, app, settings)
    count = _count(session, paths, app, seat, settings)
    out: dict[str, Any] = {
        "application": app.id,
        **_counts(count),
        "committee": list(seat.seated),
        "seated_fixed": seat.fixed,
        "chain": {role: bool(approvers) for role, approvers in count.chain.items()},
        "rule": count.rule.describe(len(seat.seated))["rule"],
        "min_approvals": count.rule.min_approvals,
        "decision": app.state if app.state in DECISIONS else None,
    }
    if viewer is not None:
        votes = [_vote_dict(paths, app, v) for v in _votes(session, app.id)]
        visible = _sees_votes(session, app, viewer, count)
        out["votes"] = votes if visible else [v for v in votes if v["member"] == viewer]
        out["votes_hidden"] = not visible
    return out


def _not_approved(app: Application, problems: list[Reason]) -> Forbidden:
    return Forbidden(
        "application_not_approved",
        f"The approval of application {app.id} cannot be verified from its countersigned votes",
        f"无法根据已会签的表决核实申请 {app.id} 的批准",
        reasons=problems,
        details={"application": app.id, "state": app.state},
    )


def _signed_decision(paths: Paths, app: Application, event: AuditEvent | None) -> dict[str, Any] | None:
    if event is None:
        return None
    decision = json.loads(event.details_json).get("decision")
    if not isinstance(decision, dict):
        return None
    body = {k: v for k, v in decision.items() if k != "signature"}
    ok = (
        enclave_signed(paths, DECISION_PURPOSE, body, decision.get("signature"))
        and body.get("state") == ApplicationState.APPROVED.value
        and body.get("application") == app.id
        and body.get("revision") == app.revision
        and body.get("digest") == app.digest
    )
    return body if ok else None


def verify_decision(session: Session, paths: Paths, app_id: str) -> dict[str, Any]:
    """Recompute the approval from the votes whose countersignatures verify; ``Forbidden``
    (``application_not_approved``) unless it holds. Provisioning calls this first.

    The state column is not trusted: the digest is recomputed from the form and attachments, the
    decision must be the enclave's signed one, every countersignature must verify (one that does
    not is evidence of tampering), and the verified approvals must meet the rule and the chain
    the decision recorded, never a weaker rule than the settings ask now.
    """
    app = service.get(session, app_id)
    if app.state != ApplicationState.APPROVED:
        raise _not_approved(
            app,
            [Reason("application_state", f"The application is {app.state}", f"申请状态为 {app.state}")],
        )
    problems: list[Reason] = []
    if service.compute_digest(app) != app.digest:
        problems.append(
            Reason(
                "application_digest_mismatch",
                "The application no longer matches the digest the committee countersigned",
                "申请内容与委员会会签的摘要不符",
            )
        )
    decision = _signed_decision(paths, app, _latest_event(session, app.id, AuditAction.APPLICATION_DECIDE))
    if decision is None:
        problems.append(
            Reason(
                "application_decision_unverified",
                "There is no approval decision signed by the enclave for this application",
                "该申请没有经飞地签名的批准决定",
            )
        )
        raise _not_approved(app, problems)
    settings = load_governance(paths)
    seated = [str(m) for m in decision["seated"]]
    rule = stricter(settings.committee, CommitteeRule.model_validate(decision["rule_settings"]), len(seated))
    votes = _votes(session, app.id)
    valid = {v.member for v in votes if signature_valid(paths, app, v)}
    bad = sorted(v.member for v in votes if v.signature is not None and v.member not in valid)
    if bad:
        problems.append(
            Reason(
                "application_vote_signature_invalid",
                f"{len(bad)} countersignature(s) do not verify under the member's key",
                f"{len(bad)} 个会签无法用委员的密钥验证",
                {"members": bad},
            )
        )
    counted = tally({v.member: v.choice for v in votes}, seated, rule, countersigned=valid)
    if not counted.approved:
        problems.append(
            Reason(
                "application_votes_not_approving",
                f"The verified approvals ({counted.approvals}) do not meet the rule "
                f"({counted.needed} needed)",
                f"经验证的同意票（{counted.approvals}）未达到规则要求（需要 {counted.needed}）",
                {"tally": counted.to_dict()},
            )
        )
    # A chain role is met by a verified approval of someone the signed decision records as its holder.
    role_of = {a.get("member"): set(a.get("roles") or ()) for a in decision.get("approvers", [])}
    recorded_chain = tuple(str(r) for r in decision.get("chain", {}))
    chain = {
        role: sorted(m for m in valid if role in role_of.get(m, set()))
        for role in _chain_for(app, settings, recorded_chain)
    }
    missing = sorted(role for role, approvers in chain.items() if not approvers)
    if missing:
        problems.append(
            Reason(
                "application_chain_incomplete",
                f"No verified approval from a holder of {', '.join(missing)}",
                f"缺少 {', '.join(missing)} 角色持有人经验证的同意",
                {"roles": missing},
            )
        )
    if problems:
        raise _not_approved(app, problems)
    return {
        "application": app.id,
        "revision": app.revision,
        "digest": app.digest,
        "rule": rule.describe(len(seated)),
        "seated": seated,
        "approvers": sorted(valid),
        "chain": chain,
        "decided_at": decision.get("decided_at"),
    }
