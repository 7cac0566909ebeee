"""The Committee's vote on an application (R-APP-7, R-APP-10, R-APP-25, T2): who may vote, once,
countersigned over the digest with the right key, one decision under concurrency, signed and
verified before provisioning, and blind review. SQLite and PostgreSQL (the ``env`` fixture)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from enclave import audit, committee_keys, roles, signing
from enclave.applications import voting
from enclave.applications.settings import load_governance
from enclave.applications.workflow import ApplicationState
from enclave.db.models import Application, ApplicationVote, AuditEvent
from enclave.errors import BadInput, EnclaveError, Forbidden, NotFound
from enclave.roles import Role
from export_review import voting as export_voting
from tests.applications.conftest import COMMITTEE, AppEnv

LEVEL_4 = {
    "datasets": {"identified": {"columns": ["pid", "age"]}},
    "legal_basis": "consent",
    "consent": "signed consent of every subject",
}


# ---- helpers (test_committee_rule.py uses them too) ----------------------------------------------


def seat(env: AppEnv, n: int) -> list[str]:
    """Make the committee ``n`` members: carol, dave, erin, then m4, m5, ... (before the forward)."""
    members = [*COMMITTEE, *(f"m{i}" for i in range(4, n + 1))]
    with env.session() as s:
        for member in members[:n]:
            roles.grant(s, member, Role.COMMITTEE, actor="admin")
        for member in members[n:]:
            roles.revoke(s, member, Role.COMMITTEE, actor="admin")
    return members[:n]


def grant(env: AppEnv, user: str, role: Role = Role.COMMITTEE) -> None:
    with env.session() as s:
        roles.grant(s, user, role, actor="admin")


def in_committee(env: AppEnv, n: int = 3, **form: Any) -> tuple[str, list[str]]:
    members = seat(env, n)
    return env.in_state(ApplicationState.COMMITTEE_REVIEW, **form), members


def cast(env: AppEnv, app_id: str, member: str, choice: str = "approve", **kw: Any) -> dict[str, Any]:
    with env.session() as s:
        return voting.vote(s, env.paths, app_id, member=member, choice=choice, **kw)


def sign(env: AppEnv, app_id: str, member: str, key_file: Path | None = None) -> dict[str, Any]:
    with env.session() as s:
        return voting.countersign(s, env.paths, app_id, member=member, key_file=key_file)


def approve(env: AppEnv, app_id: str, *members: str) -> None:
    for member in members:
        cast(env, app_id, member)
        sign(env, app_id, member)


def tally(env: AppEnv, app_id: str, viewer: str | None = None) -> dict[str, Any]:
    with env.session() as s:
        return voting.tally_of(s, env.paths, app_id, viewer=viewer)


def verify(env: AppEnv, app_id: str) -> dict[str, Any]:
    with env.session() as s:
        return voting.verify_decision(s, env.paths, app_id)


def state(env: AppEnv, app_id: str) -> str:
    return env.app(app_id).state


def refused(call: Any, *args: Any, **kw: Any) -> EnclaveError:
    with pytest.raises(EnclaveError) as info:
        call(*args, **kw)
    assert info.value.message and info.value.message_zh
    return info.value


def events(env: AppEnv, app_id: str, action: str) -> list[dict[str, Any]]:
    with env.session() as s:
        rows = s.scalars(
            select(AuditEvent)
            .where(AuditEvent.object == f"application:{app_id}", AuditEvent.action == action)
            .order_by(AuditEvent.seq)
        )
        return [json.loads(e.details_json) for e in rows]


def drop_audit_guards(session: Session) -> None:
    """What an intruder with SQL does first: remove the audit log's append-only triggers."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("DROP TRIGGER audit_events_no_update"))
    else:
        session.execute(text("DROP FUNCTION audit_append_only() CASCADE"))


def drop_vote_guards(session: Session) -> None:
    """What an intruder with SQL does first: remove the votes' write-once trigger (R-APP-25)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("DROP TRIGGER application_votes_countersign_once"))
    else:
        session.execute(text("DROP FUNCTION application_vote_write_once() CASCADE"))


def forge(env: AppEnv, app_id: str, member: str, *, signature: str = "ab" * 64) -> None:
    """A countersigned approval written straight into the table, not signed by ``member``'s key."""
    app = env.app(app_id)
    with env.session() as s:
        s.add(
            ApplicationVote(
                application_id=app_id,
                member=member,
                choice="approve",
                comment="",
                digest=app.digest,
                voted_at=audit.now_iso(),
                signature=signature,
                key_fingerprint=signing.fingerprint("cd" * 32),
                countersigned_at=audit.now_iso(),
            )
        )


# ---- who may vote, and how often ----------------------------------------------------------------


def test_a_vote_binds_the_digest_and_an_approval_waits_for_its_countersignature(env: AppEnv) -> None:
    app_id, _ = in_committee(env)
    out = cast(env, app_id, "carol", comment="  fits the purpose ")
    assert (out["counted"], out["countersign_needed"], out["decision"]) == (True, True, None)
    with env.session() as s:
        row = s.scalar(select(ApplicationVote).where(ApplicationVote.member == "carol"))
        assert (row.digest, row.comment, row.signature) == (env.app(app_id).digest, "fits the purpose", None)
    counts = tally(env, app_id)
    assert (counts["approve"], counts["countersigned"], counts["awaiting_countersign"]) == (1, 0, 1)
    assert env.actions(app_id)[-2:] == ["application.seat", "application.vote"]


def test_the_applicant_and_the_team_cannot_vote_and_are_not_seated(env: AppEnv) -> None:
    grant(env, "alice")
    grant(env, "bob")
    app_id, members = in_committee(env)
    for user in ("alice", "bob"):
        assert refused(cast, env, app_id, user).code == "application_self_vote"
    assert tally(env, app_id)["committee"] == members  # they recuse: 3 seated, not 5


def test_only_the_committee_or_a_chain_role_votes(env: AppEnv) -> None:
    grant(env, "sam", Role.SECURITY_ADMIN)
    app_id, _ = in_committee(env)  # level 3: no chain role
    for outsider in ("adviser", "olga", "sam"):
        error = refused(cast, env, app_id, outsider)
        assert isinstance(error, Forbidden) and error.code == "role_required"
    assert events(env, app_id, "application.vote") == []


def test_one_vote_per_member_and_no_change_of_mind(env: AppEnv) -> None:
    app_id, _ = in_committee(env)
    cast(env, app_id, "carol")
    assert refused(cast, env, app_id, "carol", "reject").code == "application_already_voted"
    sign(env, app_id, "carol")
    assert refused(cast, env, app_id, "carol").code == "application_already_voted"
    assert refused(sign, env, app_id, "carol").code == "application_already_countersigned"
    with env.session() as s:
        votes = s.scalars(select(ApplicationVote).where(ApplicationVote.application_id == app_id)).all()
        assert [(v.member, v.choice) for v in votes] == [("carol", "approve")]


def test_bad_choices_and_unknown_applications(env: AppEnv) -> None:
    app_id, _ = in_committee(env)
    assert isinstance(refused(cast, env, app_id, "carol", "abstain"), BadInput)
    assert refused(cast, env, app_id, "carol", "changes").code == "application_vote_invalid"
    assert refused(cast, env, app_id, "carol", comment="x" * 5001).code == "application_text_too_long"
    assert isinstance(refused(cast, env, "app-nope", "carol"), NotFound)


def test_only_in_committee_review(env: AppEnv) -> None:
    seat(env, 3)
    app_id = env.in_state(ApplicationState.OFFICE_REVIEW)
    assert refused(cast, env, app_id, "carol").code == "application_state_invalid"


def test_a_vote_after_the_decision_is_refused(env: AppEnv) -> None:
    app_id, members = in_committee(env)
    approve(env, app_id, *members)
    assert state(env, app_id) == "approved"
    grant(env, "zoe")
    assert refused(cast, env, app_id, "zoe").code == "application_state_invalid"
    assert refused(cast, env, app_id, "carol", "reject").code == "application_state_invalid"
    assert events(env, app_id, "application.decide")[0]["to"] == "approved"
    assert len(events(env, app_id, "application.decide")) == 1


def test_a_withdrawn_application_takes_no_votes(env: AppEnv) -> None:
    app_id, _ = in_committee(env)
    cast(env, app_id, "carol")
    from enclave.applications import service

    with env.session() as s:
        service.withdraw(s, app_id, user="alice")
    assert refused(sign, env, app_id, "carol").code == "application_state_invalid"


# ---- countersignatures --------------------------------------------------------------------------


def test_only_an_approval_is_countersigned(env: AppEnv) -> None:
    app_id, _ = in_committee(env, 6)
    cast(env, app_id, "carol", "reject", comment="not necessary")
    assert refused(sign, env, app_id, "carol").code == "application_countersign_not_approve"
    assert refused(sign, env, app_id, "dave").code == "application_not_voted"
    assert events(env, app_id, "application.countersign") == []


def test_a_countersignature_over_a_stale_digest_is_refused(env: AppEnv) -> None:
    app_id, _ = in_committee(env)
    cast(env, app_id, "carol")
    with env.session() as s:  # the application changed under the vote
        s.execute(update(Application).where(Application.id == app_id).values(digest="0" * 64))
    assert refused(sign, env, app_id, "carol").code == "application_digest_changed"


def test_the_countersignature_is_the_members_own_over_the_digest(env: AppEnv) -> None:
    app_id, _ = in_committee(env)
    cast(env, app_id, "carol")
    out = sign(env, app_id, "carol")
    app = env.app(app_id)
    carol = signing.public_key_hex(signing.load_or_create_key(committee_keys.keys_dir(env.paths), "carol"))
    with env.session() as s:
        row = s.scalar(select(ApplicationVote).where(ApplicationVote.member == "carol"))
        assert signing.verify(carol, voting.countersign_message(app, row), out["signature"])
        assert voting.signature_valid(env.paths, app, row)
        assert (row.key_fingerprint, out["key_kind"]) == (signing.fingerprint(carol), "server-held")
    details = events(env, app_id, "application.countersign")[0]
    assert (details["signature"], details["digest"]) == (out["signature"], app.digest)


def test_a_registered_key_is_required_once_registered(env: AppEnv, tmp_path: Path) -> None:
    app_id, members = in_committee(env)
    own, other = tmp_path / "carol.pem", tmp_path / "other.pem"
    signing.generate_key_file(own)
    signing.generate_key_file(other)
    for member in members:
        cast(env, app_id, member)
    # erin has no registered key: her own key file is refused, the enclave's server-held one is used
    assert refused(sign, env, app_id, "erin", other).code == "application_key_not_registered"
    with env.session() as s:
        public = signing.public_key_hex(signing.load_key_file(own))
        export_voting.register_key(
            s, env.paths, reviewer="carol", public_key=public, user="carol", stewards=()
        )
    assert refused(sign, env, app_id, "carol").code == "application_key_required"
    assert refused(sign, env, app_id, "carol", other).code == "application_key_mismatch"
    assert sign(env, app_id, "carol", own)["key_kind"] == "reviewer-held"
    approve_rest = [m for m in members if m != "carol"]
    for member in approve_rest:
        sign(env, app_id, member)
    assert state(env, app_id) == "approved"
    assert verify(env, app_id)["approvers"] == members


# ---- one decision under concurrency -------------------------------------------------------------


def race(env: AppEnv, calls: list[tuple[Any, tuple[Any, ...]]]) -> list[object]:
    barrier = threading.Barrier(len(calls))
    results: list[object] = []
    lock = threading.Lock()

    def run(call: Any, args: tuple[Any, ...]) -> None:
        barrier.wait()
        try:
            outcome: object = call(env, *args)
        except EnclaveError as error:
            outcome = error
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=c) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_simultaneous_countersignatures_give_exactly_one_decision(env: AppEnv) -> None:
    app_id, members = in_committee(env)
    for member in members:
        cast(env, app_id, member)
    results = race(env, [(sign, (app_id, m)) for m in members])
    assert not [r for r in results if isinstance(r, EnclaveError)]
    decided = [r for r in results if isinstance(r, dict) and r["decision"]]
    assert len(decided) == 1 and decided[0]["decision"]["state"] == "approved"
    assert state(env, app_id) == "approved"
    assert len(events(env, app_id, "application.decide")) == 1
    assert verify(env, app_id)["approvers"] == members


def test_simultaneous_rejections_give_exactly_one_decision(env: AppEnv) -> None:
    app_id, _ = in_committee(env)  # 3 seated need 3 approvals: one rejection decides
    results = race(env, [(cast, (app_id, m, "reject")) for m in ("dave", "erin")])
    decided = [r for r in results if isinstance(r, dict) and r["decision"]]
    errors = [r.code for r in results if isinstance(r, EnclaveError)]
    assert len(decided) == 1 and errors == ["application_state_invalid"]
    assert state(env, app_id) == "rejected"
    assert len(events(env, app_id, "application.decide")) == 1


def test_simultaneous_first_votes_seat_the_committee_once(env: AppEnv) -> None:
    app_id, members = in_committee(env, 6)
    results = race(env, [(cast, (app_id, m)) for m in members])
    assert all(isinstance(r, dict) for r in results)
    assert len(events(env, app_id, "application.seat")) == 1


# ---- the signed decision and its verification ---------------------------------------------------


def test_the_decision_is_signed_and_verified(env: AppEnv) -> None:
    app_id, members = in_committee(env)
    approve(env, app_id, *members)
    details = events(env, app_id, "application.decide")[0]
    decision = details["decision"]
    assert (details["from"], details["to"], details["as"]) == ("committee_review", "approved", "committee")
    assert decision["seated"] == members and decision["digest"] == env.app(app_id).digest
    assert decision["rule"]["rule"] == "> 2/3 of seated" and decision["rule"]["needed"] == 3
    assert [a["member"] for a in decision["approvers"]] == members
    assert all(a["signature"] for a in decision["approvers"])
    assert committee_keys.enclave_signed(
        env.paths,
        voting.DECISION_PURPOSE,
        {k: v for k, v in decision.items() if k != "signature"},
        decision["signature"],
    )
    out = verify(env, app_id)
    assert (out["seated"], out["approvers"], out["rule"]["needed"]) == (members, members, 3)


def test_verify_refuses_an_application_that_is_not_approved(env: AppEnv) -> None:
    app_id, _ = in_committee(env)
    error = refused(verify, env, app_id)
    assert isinstance(error, Forbidden) and error.code == "application_not_approved"


def test_a_forged_vote_row_does_not_approve(env: AppEnv) -> None:
    app_id, _ = in_committee(env, 4)  # 4 seated need 3
    approve(env, app_id, "carol", "dave")
    forge(env, app_id, "erin")
    cast(env, app_id, "m4", "reject", comment="no")  # the count runs again: the forgery is not an approval
    assert state(env, app_id) == "committee_review"
    assert tally(env, app_id)["countersigned"] == 2
    with env.session() as s:  # the state column is then set by hand
        s.execute(update(Application).where(Application.id == app_id).values(state="approved"))
    error = refused(verify, env, app_id)
    assert error.code == "application_not_approved"
    assert "application_decision_unverified" in [r.code for r in error.reasons]


def test_a_tampered_countersignature_fails_verification(env: AppEnv) -> None:
    app_id, members = in_committee(env)
    approve(env, app_id, *members)
    verify(env, app_id)
    with env.session() as s:
        carol = s.scalar(select(ApplicationVote).where(ApplicationVote.member == "carol"))
        drop_vote_guards(s)
        s.execute(
            update(ApplicationVote).where(ApplicationVote.member == "erin").values(signature=carol.signature)
        )
    codes = [r.code for r in refused(verify, env, app_id).reasons]
    assert codes == ["application_vote_signature_invalid", "application_votes_not_approving"]


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "cd" * 64},  # a second countersignature over the first
        {"choice": "reject"},
        {"digest": "0" * 64},
        {"member": "mallory"},
    ],
)
def test_the_database_refuses_to_change_a_countersigned_vote(env: AppEnv, change: dict[str, str]) -> None:
    app_id, members = in_committee(env)
    approve(env, app_id, *members)
    with pytest.raises(DBAPIError), env.session() as s:
        s.execute(update(ApplicationVote).where(ApplicationVote.member == "erin").values(**change))
    with pytest.raises(DBAPIError), env.session() as s:
        s.execute(delete(ApplicationVote).where(ApplicationVote.member == "erin"))
    verify(env, app_id)  # still intact


def test_a_changed_form_fails_verification(env: AppEnv) -> None:
    app_id, members = in_committee(env)
    approve(env, app_id, *members)
    form = json.loads(env.app(app_id).form_json)
    form["datasets"]["patients"]["columns"].append("zip")
    with env.session() as s:
        s.execute(update(Application).where(Application.id == app_id).values(form_json=json.dumps(form)))
    codes = [r.code for r in refused(verify, env, app_id).reasons]
    assert codes[0] == "application_digest_mismatch"


def test_a_rewritten_seat_record_stops_the_vote(env: AppEnv) -> None:
    app_id, _ = in_committee(env, 6)
    cast(env, app_id, "carol")
    with env.session() as s:  # shrink the seated committee in the audit record itself
        drop_audit_guards(s)
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "application.seat"))
        details = json.loads(event.details_json)
        details["seated"] = ["carol", "dave"]
        event.details_json = audit.canonical_json(details)
    assert refused(cast, env, app_id, "dave").code == "application_committee_unverified"


# ---- blind review -------------------------------------------------------------------------------


def test_votes_stay_blind_until_everyone_voted_or_the_decision(env: AppEnv) -> None:
    app_id, _ = in_committee(env)
    cast(env, app_id, "carol")
    cast(env, app_id, "dave")
    seen = tally(env, app_id, viewer="dave")
    assert seen["votes_hidden"] and [v["member"] for v in seen["votes"]] == ["dave"]
    assert (seen["approve"], seen["outstanding"], seen["needed"]) == (2, 1, 3)  # counts are shown
    assert tally(env, app_id, viewer="alice")["votes"] == []
    assert "votes" not in tally(env, app_id)
    cast(env, app_id, "erin", "reject", comment="too broad")  # decides: rejected
    for viewer in ("dave", "alice"):
        seen = tally(env, app_id, viewer=viewer)
        assert not seen["votes_hidden"] and len(seen["votes"]) == 3
    assert tally(env, app_id)["decision"] == "rejected"
    assert refused(tally, env, app_id, "mallory").code == "application_not_visible"


def test_the_settings_file(env: AppEnv) -> None:
    assert load_governance(env.paths).committee.needed(9) == 7
    (env.paths.home / "governance.yaml").write_text("committee: {numerator: 3, denominator: 4}\n")
    app_id, members = in_committee(env, 4)
    assert tally(env, app_id)["needed"] == 4  # more than 3/4 of 4
    approve(env, app_id, *members[:3])
    assert state(env, app_id) == "committee_review"
    approve(env, app_id, members[3])
    assert state(env, app_id) == "approved"
    (env.paths.home / "governance.yaml").write_text("password_max_age_days: 0\n")
    error = refused(load_governance, env.paths)
    assert isinstance(error, BadInput) and error.code == "governance_settings_invalid"
