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

    files = {i: {f["name"] for f in ctx.describe(i, viewer=None)["files"]} for i in ids}
    in_review = {i for i in ids if any_env.state(i) == ExportState.IN_REVIEW}
    seen_vote, seen_release = set(), set()
    for user in ("rev1", "rev2", "rev3", "bob", "alice", "carol"):
        found = actions.actionable(ctx, ids, user)
        each = {request_id: actions.abilities(ctx, request_id, user) for request_id in ids}
        assert found.vote == {i for i, a in each.items() if a.vote}, user
        assert found.voted == {i for i in in_review if each[i].voted_files == files[i]}, user
        assert found.release == {i for i, a in each.items() if a.release}, user
        seen_vote |= found.vote
        seen_release |= found.release
    # The comparison meant something: some requests can be voted on, some released, not all.
    assert half in seen_vote and seen_release and seen_vote != set(ids)
    rev2 = actions.actionable(ctx, ids, "rev2")
    assert half in rev2.vote and whole in rev2.voted and whole not in rev2.vote
    assert half not in actions.actionable(ctx, ids, "rev1").voted  # one file of two is not "voted"
    assert actions.actionable(ctx, [], "rev1") == actions.Actionable(set(), set(), set())
