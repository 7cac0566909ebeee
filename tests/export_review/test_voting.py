"""Votes: who may vote, comments and overrides, signatures, blind review, the committee rule."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from enclave.db.models import ExportFile, ExportVote
from enclave.errors import BadInput, Forbidden, NotFound, Refused
from export_review import views
from export_review.workflow import ExportState
from tests.export_review.factories import GOOD_CSV, ExportEnv, cast, make_project, make_request, submit

TWO_FILES = {"a.csv": GOOD_CSV, "b.csv": "dx,n\nI10,3\n"}


@pytest.mark.parametrize(("committee", "not_enough", "enough"), [(9, 6, 7), (3, 2, 3)])
def test_committee_rule_end_to_end(env: ExportEnv, committee: int, not_enough: int, enough: int) -> None:
    make_project(env, committee=committee)
    request_id = submit(env)
    for i in range(1, not_enough + 1):
        assert cast(env, request_id, f"rev{i}")["decision"] is None
    assert env.state(request_id) == "in_review"
    result = cast(env, request_id, f"rev{enough}")
    assert result["state"] == "approved"
    assert result["decision"]["rule"]["needed"] == enough
    assert result["decision"]["rule"]["seated"] == committee
    assert env.audit_actions(request_id).count("export.decide") == 1


def test_the_requester_never_votes_on_their_own_request(env: ExportEnv) -> None:
    make_project(env, extra_members=[("bob", "committee")])  # even if wrongly seated on the committee
    request_id = submit(env)
    with pytest.raises(Forbidden) as info:
        cast(env, request_id, "bob")
    assert info.value.code == "export_self_review"


@pytest.mark.parametrize("user", ["alice", "mallory"])
def test_only_committee_members_vote(env: ExportEnv, project: str, user: str) -> None:
    request_id = submit(env)
    with pytest.raises(Forbidden) as info:
        cast(env, request_id, user)
    assert info.value.code == "export_not_committee"


def test_double_votes_are_refused(env: ExportEnv, project: str) -> None:
    request_id = submit(env, TWO_FILES)
    cast(env, request_id, "rev1", "reject", file_name="b.csv")
    with pytest.raises(Forbidden) as info:
        cast(env, request_id, "rev1", "approve", override="fine")  # every file, b.csv again
    assert info.value.code == "export_already_voted"
    cast(env, request_id, "rev1", file_name="a.csv")
    with env.session() as s:
        assert len(s.scalars(select(ExportVote)).all()) == 2


def test_votes_after_the_decision_are_refused(env: ExportEnv) -> None:
    make_project(env, committee=4)
    request_id = submit(env)
    for reviewer in ("rev1", "rev2", "rev3"):
        cast(env, request_id, reviewer)
    assert env.state(request_id) == "approved"
    with pytest.raises(Forbidden) as info:
        cast(env, request_id, "rev4", "reject")
    assert info.value.code == "export_not_in_review"


def test_reject_and_changes_need_a_comment(env: ExportEnv, project: str) -> None:
    request_id = submit(env)
    for choice in ("reject", "changes"):
        with pytest.raises(BadInput) as info:
            cast(env, request_id, "rev1", choice, comment="  ")
        assert info.value.code == "export_comment_required"
    with pytest.raises(BadInput):
        cast(env, request_id, "rev1", "maybe")


def test_approving_a_failed_file_needs_an_override(env: ExportEnv, project: str) -> None:
    request_id = submit(env, TWO_FILES)
    with pytest.raises(Refused) as info:
        cast(env, request_id, "rev1")
    assert info.value.details == {"files": ["b.csv"]}
    cast(env, request_id, "rev1", file_name="a.csv")  # the clean file needs none
    cast(env, request_id, "rev1", file_name="b.csv", override="the 3 is a published national total")
    with env.session() as s:
        overrides = {v.file.name: v.override_reason for v in s.scalars(select(ExportVote))}
    assert overrides == {"a.csv": None, "b.csv": "the 3 is a published national total"}


def test_per_file_votes_decide_per_file(env: ExportEnv, project: str) -> None:
    request_id = submit(env, TWO_FILES)
    for reviewer in ("rev1", "rev2", "rev3"):
        cast(env, request_id, reviewer, file_name="a.csv")
    assert env.state(request_id) == "in_review"  # b.csv still open
    cast(env, request_id, "rev1", "reject", file_name="b.csv")
    assert env.state(request_id) == "rejected"  # 3 of 3 needed: b.csv can no longer pass
    with pytest.raises(NotFound):
        cast(env, make_request(env), "rev1", file_name="nope.csv")


def test_changes_outweigh_a_tie(env: ExportEnv, project: str) -> None:
    request_id = submit(env)
    cast(env, request_id, "rev1", "changes")
    assert env.state(request_id) == "changes_requested"


def test_reviewers_are_blind_until_all_have_voted(env: ExportEnv) -> None:
    make_project(env, committee=4)
    request_id = submit(env)
    cast(env, request_id, "rev1")
    cast(env, request_id, "rev2", "reject")
    with env.session() as s:
        seen_by_rev1 = views.describe(s, env.paths, request_id, settings=env.settings, viewer="rev1")
        seen_by_rev3 = views.describe(s, env.paths, request_id, settings=env.settings, viewer="rev3")
        seen_by_bob = views.describe(s, env.paths, request_id, settings=env.settings, viewer="bob")
        operator = views.describe(s, env.paths, request_id, settings=env.settings)
    assert [v["reviewer"] for v in seen_by_rev1["votes"]] == ["rev1"] and seen_by_rev1["votes_hidden"]
    assert seen_by_rev3["votes"] == [] and "tally" not in seen_by_rev3["files"][0]
    assert seen_by_bob["votes"] == []
    assert len(operator["votes"]) == 2
    with env.session() as s, pytest.raises(Forbidden):
        views.describe(s, env.paths, request_id, settings=env.settings, viewer="mallory")
    cast(env, request_id, "rev3", "reject")  # rejected: 2 non-approvals of 4, 3 needed
    with env.session() as s:
        after = views.describe(s, env.paths, request_id, settings=env.settings, viewer="rev4")
        requester = views.describe(s, env.paths, request_id, settings=env.settings, viewer="bob")
    assert len(after["votes"]) == 3 and len(requester["votes"]) == 3
    assert all(v["signature_valid"] for v in after["votes"])


def test_a_forged_vote_is_not_counted(env: ExportEnv, project: str) -> None:
    request_id = submit(env)
    cast(env, request_id, "rev1")
    cast(env, request_id, "rev2")
    with env.session() as s:
        file = s.scalars(select(ExportFile)).one()
        genuine = s.scalars(select(ExportVote)).first()
        s.add(
            ExportVote(
                request_id=request_id,
                file_id=file.id,
                reviewer="rev3",
                choice="approve",
                public_key=genuine.public_key,
                signature=genuine.signature,
                created_at="now",
            )
        )
    with env.session() as s:
        shown = views.describe(s, env.paths, request_id, settings=env.settings)
    assert shown["files"][0]["tally"]["approve"] == 2
    assert [v["signature_valid"] for v in shown["votes"]] == [True, True, False]
    with pytest.raises(Forbidden):
        cast(env, request_id, "rev3")  # the forged row still blocks a second vote by that name
    assert env.state(request_id) == ExportState.IN_REVIEW


def test_votes_are_signed_over_the_request_digest(env: ExportEnv, project: str) -> None:
    from enclave import signing
    from export_review.digest import vote_message

    request_id = submit(env)
    cast(env, request_id, "rev1")
    request = env.request(request_id)
    with env.session() as s:
        vote = s.scalars(select(ExportVote)).one()
        message = vote_message(
            digest=request.digest,
            request_id=request_id,
            file_name="table.csv",
            file_sha256=vote.file.sha256,
            reviewer="rev1",
            choice="approve",
            comment=None,
            override=None,
        )
        assert signing.verify(vote.public_key, message, vote.signature)
        assert not signing.verify(vote.public_key, message.replace(b"approve", b"reject"), vote.signature)
