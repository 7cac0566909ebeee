"""The committee rule as it decides applications (R-APP-7, R-APP-11, T2): more than two thirds of the
seated members, countersigned by every yes-voter, the approval chain by level, a denominator fixed
when the application reached the committee. SQLite and PostgreSQL (the ``env`` fixture)."""

from __future__ import annotations

import pytest

from enclave import roles
from enclave.db.models import ApplicationVote
from enclave.roles import Role
from tests.applications.conftest import AppEnv
from tests.applications.test_voting import (
    LEVEL_4,
    approve,
    cast,
    events,
    forge,
    grant,
    in_committee,
    refused,
    sign,
    state,
    tally,
    verify,
)


@pytest.mark.parametrize(
    ("seated", "yes", "approved"),
    [(9, 6, False), (9, 7, True), (6, 4, False), (6, 5, True), (3, 2, False), (3, 3, True)],
)
def test_more_than_two_thirds_of_the_seated_members(
    env: AppEnv, seated: int, yes: int, approved: bool
) -> None:
    app_id, members = in_committee(env, seated)
    approve(env, app_id, *members[:yes])
    assert state(env, app_id) == ("approved" if approved else "committee_review")
    counts = tally(env, app_id)
    assert (counts["seated"], counts["countersigned"], counts["outstanding"]) == (seated, yes, seated - yes)
    assert counts["needed"] == {9: 7, 6: 5, 3: 3}[seated]
    assert counts["still_needed"] == max(0, counts["needed"] - yes)
    assert len(events(env, app_id, "application.decide")) == (1 if approved else 0)
    if not approved:  # exactly two thirds is not enough; one more countersigned approval is
        approve(env, app_id, members[yes])
        assert state(env, app_id) == "approved"


def test_approvals_count_only_once_countersigned(env: AppEnv) -> None:
    app_id, members = in_committee(env)
    for member in members:
        cast(env, app_id, member)
    assert state(env, app_id) == "committee_review"
    sign(env, app_id, "carol")
    sign(env, app_id, "dave")
    counts = tally(env, app_id)
    assert (counts["approve"], counts["countersigned"], counts["awaiting_countersign"]) == (3, 2, 1)
    assert state(env, app_id) == "committee_review"
    sign(env, app_id, "erin")
    assert state(env, app_id) == "approved"


def test_approval_waits_for_every_yes_voter_to_countersign(env: AppEnv) -> None:
    app_id, members = in_committee(env, 4)  # 4 seated need 3; all 4 vote yes
    for member in members:
        cast(env, app_id, member)
    for member in members[:3]:
        sign(env, app_id, member)
    assert state(env, app_id) == "committee_review"  # 3 countersigned, but m4 has not yet (T2)
    sign(env, app_id, members[3])
    assert state(env, app_id) == "approved"


def test_votes_of_non_members_are_ignored(env: AppEnv) -> None:
    app_id, members = in_committee(env)
    assert refused(cast, env, app_id, "adviser").code == "role_required"
    with env.session() as s:  # a secretary's vote, written straight into the table
        s.add(
            ApplicationVote(
                application_id=app_id,
                member="secretary",
                choice="reject",
                comment="",
                digest=env.app(app_id).digest,
                voted_at="2026-11-26T00:00:00+00:00",
            )
        )
    forge(env, app_id, "Adviser Li")  # and an adviser's "yes", countersigned in no account's name
    approve(env, app_id, *members[:2])
    assert (state(env, app_id), tally(env, app_id)["approve"]) == ("committee_review", 2)
    approve(env, app_id, members[2])
    assert state(env, app_id) == "approved"  # the secretary's "no" did not block 3 of 3
    # The rule holds without them, but a countersignature that does not verify is evidence of tampering.
    error = refused(verify, env, app_id)
    assert [(r.code, r.details) for r in error.reasons] == [
        ("application_vote_signature_invalid", {"members": ["Adviser Li"]})
    ]


def test_a_rejection_decides_once_approval_is_out_of_reach(env: AppEnv) -> None:
    app_id, _ = in_committee(env, 9)  # 9 seated need 7: two may say no, a third cannot
    cast(env, app_id, "carol", "reject", comment="no")
    cast(env, app_id, "dave", "reject", comment="no")
    assert state(env, app_id) == "committee_review"
    out = cast(env, app_id, "erin", "reject", comment="no")
    assert out["decision"]["state"] == "rejected" and state(env, app_id) == "rejected"
    assert tally(env, app_id)["decision"] == "rejected"


def test_a_committee_too_small_to_approve_cannot_start_voting(env: AppEnv) -> None:
    app_id, _ = in_committee(env, 3)
    with env.session() as s:  # two members leave between the forward and the first vote
        for member in ("dave", "erin"):
            roles.revoke(s, member, Role.COMMITTEE, actor="admin")
    error = refused(cast, env, app_id, "carol")
    assert error.code == "application_committee_too_small"
    assert events(env, app_id, "application.seat") == []


def test_the_denominator_is_fixed_when_the_application_reached_the_committee(env: AppEnv) -> None:
    app_id, members = in_committee(env)
    grant(env, "yan")  # after the forward, before the first vote
    approve(env, app_id, "carol")
    grant(env, "zoe")  # mid-vote
    assert tally(env, app_id)["committee"] == members
    assert cast(env, app_id, "zoe")["counted"] is False  # a member may vote, but was not seated
    sign(env, app_id, "zoe")
    approve(env, app_id, "dave", "erin")  # 3 of the 3 seated; of 5 members, 4 would be needed
    assert state(env, app_id) == "approved"
    decision = events(env, app_id, "application.decide")[0]["decision"]
    assert (decision["seated"], decision["rule"]["needed"]) == (members, 3)
    assert events(env, app_id, "application.seat")[0]["seated"] == members


def test_level_4_needs_the_chain_role_too(env: AppEnv) -> None:
    grant(env, "sam", Role.SECURITY_ADMIN)
    app_id, members = in_committee(env, **LEVEL_4)
    assert env.app(app_id).level == 4
    approve(env, app_id, *members)
    assert state(env, app_id) == "committee_review"
    assert tally(env, app_id)["chain"] == {"security_admin": False}
    out = cast(env, app_id, "sam")
    assert out["counted"] and not out["seated"]
    assert state(env, app_id) == "committee_review"  # sam's approval waits for the countersignature
    sign(env, app_id, "sam")
    assert state(env, app_id) == "approved"
    counts = tally(env, app_id)
    assert (counts["chain"], counts["seated"], counts["countersigned"]) == ({"security_admin": True}, 3, 3)
    assert verify(env, app_id)["chain"] == {"security_admin": ["sam"]}


def test_level_4_is_rejected_when_every_chain_holder_says_no(env: AppEnv) -> None:
    grant(env, "sam", Role.SECURITY_ADMIN)
    app_id, members = in_committee(env, **LEVEL_4)
    approve(env, app_id, *members[:2])
    cast(env, app_id, "sam", "reject", comment="identifiable data is not needed")
    assert state(env, app_id) == "rejected"


def test_a_chain_holder_outside_the_committee_does_not_count_towards_it(env: AppEnv) -> None:
    grant(env, "sam", Role.SECURITY_ADMIN)
    app_id, members = in_committee(env, **LEVEL_4)
    approve(env, app_id, "sam", *members[:2])
    counts = tally(env, app_id)
    assert (counts["countersigned"], counts["needed"], counts["chain"]) == (2, 3, {"security_admin": True})
    assert state(env, app_id) == "committee_review"


def test_the_chain_comes_from_the_settings(env: AppEnv) -> None:
    (env.paths.home / "governance.yaml").write_text("approval_chain: {steps: {3: [steward]}}\n")
    grant(env, "stella", Role.STEWARD)
    app_id, members = in_committee(env)  # level 3
    approve(env, app_id, *members)
    assert state(env, app_id) == "committee_review"
    approve(env, app_id, "stella")
    assert state(env, app_id) == "approved"
