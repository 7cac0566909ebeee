"""``enclave.committee``, the one committee rule (R-APP-7, R-APP-11, T2), and that the export review
and the applications use it rather than copies of their own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from enclave import committee, committee_keys
from enclave.committee import ApprovalChain, CommitteeRule, stricter, tally


@pytest.mark.parametrize(
    ("seated", "needed"), [(1, 2), (2, 2), (3, 3), (4, 3), (5, 4), (6, 5), (7, 5), (8, 6), (9, 7), (12, 9)]
)
def test_more_than_two_thirds_never_fewer_than_two(seated: int, needed: int) -> None:
    rule = CommitteeRule()
    assert rule.needed(seated) == needed
    assert rule.needed(seated) * 3 > seated * 2 or needed == 2  # strictly more than two thirds
    assert rule.reachable(seated) is (seated >= 2)


@pytest.mark.parametrize(
    ("seated", "yes", "approved"),
    [(9, 6, False), (9, 7, True), (6, 4, False), (6, 5, True), (3, 2, False), (3, 3, True)],
)
def test_the_t2_table(seated: int, yes: int, approved: bool) -> None:
    members = [f"m{i}" for i in range(seated)]
    counted = tally(dict.fromkeys(members[:yes], "approve"), members, CommitteeRule())
    assert counted.approved is approved


def test_votes_of_anyone_not_seated_are_ignored_and_each_member_counts_once() -> None:
    counted = tally(
        {"a": "approve", "b": "approve", "adviser": "approve", "secretary": "reject"}, "abc", CommitteeRule()
    )
    assert (counted.approvals, counted.rejections, counted.outstanding, counted.approved) == (2, 0, 1, False)


def test_countersigned_approvals_only() -> None:
    members, rule = ["a", "b", "c"], CommitteeRule()
    votes = dict.fromkeys(members, "approve")
    waiting = tally(votes, members, rule, countersigned={"a", "b"})
    assert (waiting.approvals, waiting.awaiting, waiting.approved, waiting.blocked) == (2, 1, False, False)
    assert tally(votes, members, rule, countersigned=members).approved
    # a countersignature without an approving vote, or from outside the committee, is nothing
    assert tally({"a": "reject"}, members, rule, countersigned={"a", "x"}).approvals == 0


def test_every_yes_voter_countersigns_before_approval() -> None:
    members = ["a", "b", "c", "d"]  # 3 of 4 needed
    counted = tally(
        dict.fromkeys(members, "approve"), members, CommitteeRule(), countersigned={"a", "b", "c"}
    )
    assert counted.approvals >= counted.needed and not counted.approved


def test_blocked_once_approval_is_out_of_reach() -> None:
    members, rule = [f"m{i}" for i in range(9)], CommitteeRule()
    assert not tally({"m0": "reject", "m1": "reject"}, members, rule).blocked
    assert tally({"m0": "reject", "m1": "reject", "m2": "reject"}, members, rule).blocked
    # an approval still to be countersigned can become one: not blocked
    four = members[:4]  # 3 of 4 needed: 1 waiting + 2 still to vote can still make it
    assert not tally({"m0": "reject", "m1": "approve"}, four, rule, countersigned=()).blocked
    assert tally({"m0": "reject", "m1": "reject", "m2": "approve"}, four, rule, countersigned=()).blocked


def test_a_recorded_decision_is_never_checked_more_leniently() -> None:
    lenient, strict = CommitteeRule(numerator=1, denominator=2), CommitteeRule(numerator=3, denominator=4)
    assert stricter(CommitteeRule(), lenient, 9) == CommitteeRule()
    assert stricter(CommitteeRule(), strict, 9) == strict
    assert stricter(CommitteeRule(), CommitteeRule(), 9) == CommitteeRule()


def test_rule_settings_are_checked() -> None:
    for bad in ({"min_approvals": 1}, {"numerator": 4, "denominator": 3}, {"base": "voted"}, {"x": 1}):
        with pytest.raises(ValidationError):
            CommitteeRule.model_validate(bad)
    assert CommitteeRule(numerator=1, denominator=3, strict=False).needed(3) == 2  # the floor of two
    assert CommitteeRule().describe(9) == {
        "rule": "> 2/3 of seated",
        "base": "seated",
        "seated": 9,
        "needed": 7,
        "min_approvals": 2,
    }


def test_the_approval_chain_grows_with_the_level() -> None:
    chain = ApprovalChain(steps={3: ("steward",), 4: ("security_admin", "steward")})
    assert [chain.roles_for(level) for level in (2, 3, 4, 5)] == [
        (),
        ("steward",),
        ("steward", "security_admin"),
        ("steward", "security_admin"),
    ]
    assert ApprovalChain().roles_for(3) == () and ApprovalChain().roles_for(4) == ("security_admin",)


def test_one_committee_rule_for_exports_and_applications() -> None:
    from enclave.applications import settings, voting
    from export_review import policy, release, workflow
    from export_review import voting as export_voting

    assert policy.CommitteeRule is settings.CommitteeRule is committee.CommitteeRule
    assert export_voting.tally is voting.tally is committee.tally
    assert release.CommitteeRule is committee.CommitteeRule
    assert not hasattr(workflow, "tally_file") and not hasattr(workflow, "FileTally")
    assert workflow.Vote.APPROVE == committee.APPROVE and workflow.Vote.CHANGES == committee.CHANGES
    # One key rule for export votes and countersignatures, in the vault: the registry is shared.
    assert export_voting.signing_key is voting.signing_key is committee_keys.signing_key
    assert export_voting.anchored_registrations is voting.anchored_registrations
