"""``actions.actionable`` (the review queue's one-session check) gives what ``actions.abilities`` gives
request by request, for every state, every kind of user and half-cast votes; on SQLite and PostgreSQL."""

from __future__ import annotations

from export_review.service import ExportService
from export_review.web import actions
from export_review.workflow import ExportState
from tests.export_review.factories import ExportEnv, cast, make_project, make_request, submit

TWO_FILES = {"a.csv": "dx,n\nI10,25\nE11,40\n", "b.csv": "dx,n\nJ18,15\nK21,30\n"}


def test_actionable_agrees_with_abilities(any_env: ExportEnv) -> None:
    make_project(any_env)
    reachable = (
        ExportState.IN_REVIEW,
        ExportState.APPROVED,
        ExportState.REJECTED,
        ExportState.CHANGES_REQUESTED,
        ExportState.RELEASED,
        ExportState.WITHDRAWN,
    )
    ids = [make_request(any_env, state) for state in reachable]
    half = submit(any_env, TWO_FILES)
    cast(any_env, half, "rev1", "approve", file_name="a.csv")  # rev1 still owes a vote on b.csv
    whole = submit(any_env, TWO_FILES)
    cast(any_env, whole, "rev2", "approve")  # rev2 voted on every file: nothing left for them
    by_alice = submit(any_env, requester="alice")
    ids += [half, whole, by_alice]
    ctx = ExportService(any_env.sessions, any_env.paths)

    seen_vote, seen_release = set(), set()
    for user in ("rev1", "rev2", "rev3", "bob", "alice", "carol"):
        can_vote, can_release = actions.actionable(ctx, ids, user)
        each = {request_id: actions.abilities(ctx, request_id, user) for request_id in ids}
        assert can_vote == {i for i, a in each.items() if a.vote}, user
        assert can_release == {i for i, a in each.items() if a.release}, user
        seen_vote |= can_vote
        seen_release |= can_release
    # The comparison meant something: some requests can be voted on, some released, not all.
    assert half in seen_vote and seen_release and seen_vote != set(ids)
    assert (
        actions.actionable(ctx, ids, "rev2")[0] >= {half}
        and whole not in actions.actionable(ctx, ids, "rev2")[0]
    )
    assert actions.actionable(ctx, [], "rev1") == (set(), set())
