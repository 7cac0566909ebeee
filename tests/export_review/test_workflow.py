"""The workflow tables as matrices, and the committee rule (R-APP-7, T2)."""

from __future__ import annotations

import itertools

import pytest

from enclave.committee import CommitteeRule, tally
from enclave.db.models import ExportRequest
from enclave.errors import Forbidden
from export_review import workflow
from export_review.workflow import (
    STATE_AUDIT_ACTION,
    STATE_OWNER,
    VALID_TRANSITIONS,
    Actor,
    ExportState,
    decide,
)
from tests.export_review.factories import ExportEnv, make_request


def test_every_state_has_an_owner_and_a_row() -> None:
    assert set(STATE_OWNER) == set(ExportState)
    assert set(VALID_TRANSITIONS) == set(ExportState)
    targets = {to for moves in VALID_TRANSITIONS.values() for to in moves}
    assert targets <= set(STATE_AUDIT_ACTION)
    for state, moves in VALID_TRANSITIONS.items():
        assert (STATE_OWNER[state] is Actor.NOBODY) == (not moves), state


def test_released_is_reached_only_from_approved() -> None:
    sources = {s for s, moves in VALID_TRANSITIONS.items() if ExportState.RELEASED in moves}
    assert sources == {ExportState.APPROVED}


@pytest.mark.parametrize(("current", "to", "actor"), list(itertools.product(ExportState, ExportState, Actor)))
def test_transition_matrix(current: ExportState, to: ExportState, actor: Actor) -> None:
    request = ExportRequest(id="exp-x", state=current.value, project_id="p")
    allowed = VALID_TRANSITIONS[current].get(to) is actor
    if allowed:
        workflow.check_transition(request, to, actor)
    else:
        with pytest.raises(Forbidden) as info:
            workflow.check_transition(request, to, actor)
        expected = (
            "export_transition_forbidden" if to in VALID_TRANSITIONS[current] else "export_state_invalid"
        )
        assert info.value.code == expected


def test_set_state_writes_the_audit_record(env: ExportEnv, project: str) -> None:
    request_id = make_request(env, ExportState.IN_REVIEW)
    assert env.audit_actions(request_id) == ["export.submit", "export.check", "export.check"]
    with env.session() as s:
        request = s.get(ExportRequest, request_id)
        with pytest.raises(Forbidden):
            workflow.set_state(s, request, ExportState.RELEASED, user="rev1", actor=Actor.RELEASER)
    assert env.state(request_id) == "in_review"
    assert env.audit_actions(request_id) == ["export.submit", "export.check", "export.check"]


@pytest.mark.parametrize(
    ("seated", "approvals", "approved"),
    [
        (9, 6, False),
        (9, 7, True),
        (6, 4, False),
        (6, 5, True),
        (3, 2, False),
        (3, 3, True),
        (4, 2, False),
        (4, 3, True),
    ],
)
def test_more_than_two_thirds_of_the_seated_committee(seated: int, approvals: int, approved: bool) -> None:
    members = [f"r{i}" for i in range(seated)]
    choices = {m: "approve" for m in members[:approvals]}
    assert tally(choices, members, CommitteeRule()).approved is approved


def test_never_fewer_than_two_approvals_whatever_the_fraction() -> None:
    lenient = CommitteeRule(numerator=1, denominator=3, strict=False)
    assert lenient.needed(3) == 2
    assert not tally({"a": "approve"}, ["a", "b", "c"], lenient).approved
    with pytest.raises(ValueError):
        CommitteeRule(min_approvals=1)
    with pytest.raises(ValueError):
        CommitteeRule(numerator=4, denominator=3)


def test_votes_from_outside_the_committee_do_not_count() -> None:
    members = ["a", "b", "c"]
    counted = tally({"a": "approve", "b": "approve", "secretary": "approve"}, members, CommitteeRule())
    assert (counted.approvals, counted.outstanding, counted.approved) == (2, 1, False)


def test_decision_waits_until_every_file_is_settled() -> None:
    rule, members = CommitteeRule(), ["a", "b", "c"]
    done = tally(dict.fromkeys(members, "approve"), members, rule)
    open_ = tally({"a": "approve"}, members, rule)
    blocked_reject = tally({"a": "reject"}, members, rule)
    blocked_changes = tally({"a": "changes", "b": "changes", "c": "reject"}, members, rule)
    assert decide({"x": done, "y": open_}) is None
    assert decide({"x": done}) is ExportState.APPROVED
    assert decide({"x": done, "y": blocked_reject}) is ExportState.REJECTED
    assert decide({"x": done, "y": blocked_changes}) is ExportState.CHANGES_REQUESTED
    assert decide({}) is None
