"""The Office's pre-review (R-APP-5, 6, 8, 9): who may review, the checklist and scorecard, and
the applicant's history with overlap flagged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from enclave import roles
from enclave.applications import office, service
from enclave.applications.workflow import ApplicationState as S
from enclave.db.models import ApplicationReview
from enclave.errors import BadInput, Forbidden
from enclave.roles import Role
from tests.applications.conftest import FULL_CHECKLIST, FULL_SCORECARD, AppEnv
from tests.export_review.factories import ExportEnv, make_project
from tests.export_review.factories import submit as submit_export


def refused(env: AppEnv, app_id: str, error: type[Exception] = BadInput, **kw: Any) -> Any:
    with pytest.raises(error) as info:
        env.review(app_id, **kw)
    assert env.app(app_id).state == "office_review"
    return info.value


def test_labels_in_both_languages() -> None:
    assert list(office.CHECKLIST) == [
        "legality",
        "legitimacy",
        "necessity",
        "purpose",
        "content",
        "receiving_party",
        "security_capability",
        "dua_willingness",
    ]
    assert list(office.SCORECARD) == [
        "legality_legitimacy",
        "consistency_with_need",
        "data_value",
        "leakage_risk",
        "provision_cost",
    ]
    for label in [*office.CHECKLIST.values(), *office.SCORECARD.values()]:
        assert label["en"] and label["zh"]


def test_forward_stores_the_review_and_reaches_the_committee(env: AppEnv) -> None:
    app_id = env.in_state(S.OFFICE_REVIEW)
    assert env.review(app_id, "forward", comment="well scoped") == "committee_review"
    with env.session() as s:
        (row,) = s.scalars(select(ApplicationReview)).all()
        assert (row.application_id, row.revision, row.reviewer, row.outcome) == (app_id, 1, "olga", "forward")
        assert json.loads(row.checklist_json) == FULL_CHECKLIST
        assert json.loads(row.scorecard_json) == FULL_SCORECARD
    assert env.actions(app_id)[-1] == "application.forward"


def test_reviewers_need_the_office_role(env: AppEnv) -> None:
    app_id = env.in_state(S.OFFICE_REVIEW)
    for who in ("carol", "mallory"):  # a committee member, a stranger
        assert refused(env, app_id, Forbidden, reviewer=who).code == "role_required"


def test_nobody_reviews_their_own_application(env: AppEnv) -> None:
    with env.session() as s:
        roles.grant(s, "alice", Role.OFFICE, actor="admin")
        roles.grant(s, "bob", Role.OFFICE, actor="admin")
    app_id = env.in_state(S.OFFICE_REVIEW)
    for who in ("alice", "bob"):  # the applicant, a team member
        for outcome in ("forward", "return"):
            error = refused(env, app_id, Forbidden, reviewer=who, outcome=outcome)
            assert error.code == "application_self_review" and error.message_zh


def test_forward_needs_every_checklist_item(env: AppEnv) -> None:
    app_id = env.in_state(S.OFFICE_REVIEW)
    partial = {**FULL_CHECKLIST, "necessity": False}
    del partial["dua_willingness"]
    error = refused(env, app_id, checklist=partial)
    assert error.code == "checklist_incomplete"
    assert [r.details["item"] for r in error.reasons] == ["necessity", "dua_willingness"]
    assert refused(env, app_id, checklist={}).code == "checklist_incomplete"


def test_forward_needs_a_full_scorecard(env: AppEnv) -> None:
    app_id = env.in_state(S.OFFICE_REVIEW)
    partial = {k: 3 for k in list(office.SCORECARD)[:4]}
    assert refused(env, app_id, scorecard=partial).code == "scorecard_incomplete"
    for bad in ({"data_value": 0}, {"data_value": 6}, {"data_value": True}, {"data_value": "5"}, {"fun": 5}):
        assert refused(env, app_id, scorecard={**FULL_SCORECARD, **bad}).code == "scorecard_invalid"
    assert refused(env, app_id, checklist={**FULL_CHECKLIST, "vibes": True}).code == "checklist_invalid"
    assert refused(env, app_id, checklist={**FULL_CHECKLIST, "legality": "yes"}).code == "checklist_invalid"


def test_return_needs_a_comment_but_not_a_full_checklist(env: AppEnv) -> None:
    app_id = env.in_state(S.OFFICE_REVIEW)
    assert refused(env, app_id, outcome="return", comment="  ").code == "comment_required"
    assert refused(env, app_id, outcome="reject", comment="no").code == "review_outcome_invalid"
    state = env.review(
        app_id, "return", checklist={"necessity": False}, scorecard={}, comment="too many columns"
    )
    assert state == "returned"
    assert env.actions(app_id)[-1] == "application.return"


@pytest.mark.parametrize("state", [S.DRAFT, S.RETURNED, S.COMMITTEE_REVIEW, S.WITHDRAWN])
def test_review_only_in_office_review(env: AppEnv, state: S) -> None:
    app_id = env.in_state(state)
    with pytest.raises(Forbidden) as info:
        env.review(app_id, "forward")
    assert info.value.code == "application_state_invalid"
    assert env.app(app_id).state == state.value


def test_a_resubmission_is_reviewed_as_its_new_revision(env: AppEnv) -> None:
    app_id = env.in_state(S.RETURNED)
    env.submit(app_id)
    env.review(app_id, "forward", reviewer="oscar")
    with env.session() as s:
        rows = s.scalars(select(ApplicationReview).order_by(ApplicationReview.id)).all()
        assert [(r.revision, r.outcome, r.reviewer) for r in rows] == [
            (1, "return", "olga"),
            (2, "forward", "oscar"),
        ]


def test_history_flags_overlap_with_earlier_applications(env: AppEnv) -> None:
    earlier = env.in_state(S.APPROVED, datasets={"patients": {"columns": ["pid", "age", "income"]}})
    colleague = env.file(
        applicant="zed", team=[{"user": "zed", "role": "pi"}], organisation=" city  HOSPITAL ",
        datasets={"visits": {"columns": ["pid", "cost"]}},
    )  # fmt: skip
    disjoint = env.file(datasets={"identified": {"columns": ["pid"]}}, legal_basis="consent", consent="yes")
    stranger = env.file(
        applicant="zoe",
        team=[{"user": "zoe", "role": "pi"}],
        organisation="Elsewhere",
        purpose_category="contest",
    )
    current = env.in_state(S.OFFICE_REVIEW)
    with env.session() as s:
        info = office.history(s, current)
    by_id = {a["id"]: a for a in info["applications"]}
    assert set(by_id) == {earlier, colleague, disjoint}  # not the stranger's, not itself
    assert stranger not in by_id
    assert by_id[earlier]["overlap"] == [{"dataset": "patients", "columns": ["age", "pid"]}]
    assert by_id[earlier]["state"] == "approved" and by_id[earlier]["same_applicant"] is True
    assert by_id[colleague]["same_organisation"] is True and by_id[colleague]["same_applicant"] is False
    assert by_id[colleague]["overlap"] == [{"dataset": "visits", "columns": ["cost", "pid"]}]
    assert by_id[disjoint]["overlap"] == []
    assert info["overlap"] is True and info["overlapping_datasets"] == ["patients", "visits"]
    with env.session() as s:
        summary = service.describe(s, env.paths, current, viewer="olga")["history"]
    assert summary["overlapping_applications"] == [earlier, colleague] and summary["applications"] == 3


def test_history_flags_overlap_with_earlier_exports(env: AppEnv, tmp_path: Path) -> None:
    exports = ExportEnv(env.sessions, env.paths, tmp_path / "work")
    make_project(exports)  # cardio-2026: patients and visits; bob is an analyst there
    request = submit_export(exports, requester="bob")
    make_project(exports, project_id="other-2026", extra_members=[("ivan", "analyst")])
    submit_export(exports, project_id="other-2026", requester="ivan")  # not on this team: not shown
    current = env.in_state(S.OFFICE_REVIEW, datasets={"visits": {"columns": ["pid", "visit_date"]}})
    with env.session() as s:
        info = office.history(s, current)
    (export,) = info["exports"]
    assert (export["id"], export["requester"], export["project"]) == (request, "bob", "cardio-2026")
    assert export["files"] == ["table.csv"]
    assert export["overlap"] == [{"dataset": "visits", "columns": ["pid", "visit_date"]}]
    assert info["overlap"] is True and info["overlapping_datasets"] == ["visits"]


def test_history_without_anything_earlier(env: AppEnv) -> None:
    app_id = env.file()
    with env.session() as s:
        info = office.history(s, app_id)
    assert (info["applications"], info["exports"], info["overlap"]) == ([], [], False)


def test_no_forward_to_a_committee_that_cannot_reach_a_decision(env: AppEnv) -> None:
    """Seated members are the committee outside the team: if too few are left, the forward is refused
    rather than leaving the application in committee review with no way to a decision (R-APP-7)."""
    app_id = env.in_state(S.OFFICE_REVIEW)
    with env.session() as s:
        for member in roles.holders(s, Role.COMMITTEE)[1:]:
            roles.revoke(s, member, Role.COMMITTEE, actor="admin")
    assert refused(env, app_id).code == "application_committee_too_small"
