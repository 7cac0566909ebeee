"""The application's one state machine (R-APP-6): every move allowed and refused, by the right
actor, audited in the same transaction; submission, the digest, attachments and locking."""

from __future__ import annotations

import json
import os
import stat
from itertools import product

import pytest
from sqlalchemy import select

from enclave import audit
from enclave.applications import service, workflow
from enclave.applications.workflow import ApplicationActor as A
from enclave.applications.workflow import ApplicationState as S
from enclave.db.models import Application, ApplicationAttachment
from enclave.errors import BadInput, EnclaveError, Forbidden
from tests.applications.conftest import AppEnv, make_form

# Written out by hand, not derived from the module's table: a change to the table must change this.
ALLOWED: dict[tuple[S, S], A] = {
    (S.DRAFT, S.SUBMITTED): A.APPLICANT,
    (S.DRAFT, S.WITHDRAWN): A.APPLICANT,
    (S.SUBMITTED, S.OFFICE_REVIEW): A.SYSTEM,
    (S.SUBMITTED, S.WITHDRAWN): A.APPLICANT,
    (S.OFFICE_REVIEW, S.RETURNED): A.OFFICE,
    (S.OFFICE_REVIEW, S.COMMITTEE_REVIEW): A.OFFICE,
    (S.OFFICE_REVIEW, S.WITHDRAWN): A.APPLICANT,
    (S.RETURNED, S.SUBMITTED): A.APPLICANT,
    (S.RETURNED, S.WITHDRAWN): A.APPLICANT,
    (S.COMMITTEE_REVIEW, S.APPROVED): A.COMMITTEE,
    (S.COMMITTEE_REVIEW, S.REJECTED): A.COMMITTEE,
    (S.COMMITTEE_REVIEW, S.WITHDRAWN): A.APPLICANT,
}
ACTION = {
    S.SUBMITTED: "application.submit",
    S.OFFICE_REVIEW: "application.review",
    S.RETURNED: "application.return",
    S.COMMITTEE_REVIEW: "application.forward",
    S.APPROVED: "application.decide",
    S.REJECTED: "application.decide",
    S.WITHDRAWN: "application.withdraw",
}
USER = {A.APPLICANT: "alice", A.OFFICE: "olga", A.COMMITTEE: "carol", A.SYSTEM: "system", A.NOBODY: "x"}


def bare(state: S) -> Application:
    return Application(id="app-test", applicant="alice", state=state.value, revision=1, form_json="{}")


@pytest.mark.parametrize(("frm", "to", "actor"), list(product(S, S, A)))
def test_every_move_by_every_actor(frm: S, to: S, actor: A) -> None:
    allowed = ALLOWED.get((frm, to))
    if allowed is actor:
        workflow.check_transition(bare(frm), to, actor)
        return
    with pytest.raises(Forbidden) as info:
        workflow.check_transition(bare(frm), to, actor)
    expected = "application_state_invalid" if allowed is None else "application_transition_forbidden"
    assert info.value.code == expected and info.value.message_zh


def test_closed_states_are_terminal() -> None:
    assert {S.APPROVED, S.REJECTED, S.WITHDRAWN} == workflow.TERMINAL_STATES


@pytest.mark.parametrize(("frm", "to"), list(ALLOWED))
def test_each_allowed_move_writes_state_and_audit(env: AppEnv, frm: S, to: S) -> None:
    actor = ALLOWED[(frm, to)]
    app_id = env.in_state(frm)
    before = env.actions(app_id)
    with env.session() as s:
        workflow.set_state(s, service.get(s, app_id), to, user=USER[actor], actor=actor, details={"x": 1})
    app = env.app(app_id)
    assert app.state == to.value
    assert env.actions(app_id) == [*before, ACTION[to]]
    with env.session() as s:
        event = audit.tail(s, limit=1)[0]
        details = json.loads(event.details_json)
    assert (event.actor, details["from"], details["to"], details["as"], details["x"]) == (
        USER[actor],
        frm.value,
        to.value,
        actor.value,
        1,
    )
    assert (app.decided_at is not None) == (to in (S.APPROVED, S.REJECTED))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("frm", [S.APPROVED, S.REJECTED, S.WITHDRAWN])
def test_nothing_leaves_a_closed_state(env: AppEnv, frm: S) -> None:
    app_id = env.in_state(frm)
    for to, actor in product(S, A):
        with env.session() as s, pytest.raises(Forbidden):
            workflow.set_state(s, service.get(s, app_id), to, user=USER[actor], actor=actor)
    assert env.app(app_id).state == frm.value


def test_the_applicant_moves_are_the_applicants_alone(env: AppEnv) -> None:
    app_id = env.in_state(S.DRAFT)
    env.attach(app_id)
    for user in ("bob", "olga"):  # a team member, the Office
        with pytest.raises(Forbidden) as info:
            env.submit(app_id, user=user)
        assert info.value.code == "application_not_applicant"
        with env.session() as s, pytest.raises(Forbidden):
            workflow.set_state(s, service.get(s, app_id), S.SUBMITTED, user=user, actor=A.APPLICANT)
        with env.session() as s, pytest.raises(Forbidden):
            service.withdraw(s, app_id, user=user)
    assert env.app(app_id).state == "draft"
    with env.session() as s, pytest.raises(Forbidden) as info:
        workflow.set_state(s, service.get(s, app_id), S.APPROVED, user="carol", actor=A.COMMITTEE)
    assert info.value.code == "application_state_invalid"


def test_submit_fixes_the_digest_and_queues_for_the_office(env: AppEnv) -> None:
    app_id = env.file()
    env.attach(app_id)
    assert env.submit(app_id) == "office_review"
    app = env.app(app_id)
    assert app.revision == 1 and app.submitted_at and len(app.digest or "") == 64
    with env.session() as s:
        assert app.digest == service.compute_digest(service.get(s, app_id))
    assert env.actions(app_id) == [
        "application.file",
        "application.attach",
        "application.submit",
        "application.review",
    ]
    with pytest.raises(Forbidden) as info:
        env.submit(app_id)
    assert info.value.code == "application_state_invalid"


def test_a_form_edited_after_submission_is_refused(env: AppEnv) -> None:
    app_id = env.in_state(S.OFFICE_REVIEW)
    digest = env.app(app_id).digest
    wider = make_form(datasets={"patients": {"columns": ["pid", "age", "sex", "dx", "income", "zip"]}})
    for state in (S.OFFICE_REVIEW, S.COMMITTEE_REVIEW):
        with env.session() as s, pytest.raises(Forbidden) as info:
            service.update_application(s, env.paths, app_id, wider, user="alice")
        assert info.value.code == "application_locked"
        with pytest.raises(Forbidden) as info:
            env.attach(app_id, "other", b"late evidence")
        assert info.value.code == "application_locked"
        if state is S.OFFICE_REVIEW:
            env.review(app_id, "forward")
    app = env.app(app_id)
    assert app.digest == digest and service.form_of(app) == make_form()
    assert [a.kind for a in app.attachments] == ["ethics_approval"]


def test_only_the_applicant_edits_a_draft(env: AppEnv) -> None:
    app_id = env.file()
    with env.session() as s, pytest.raises(Forbidden) as info:
        service.update_application(s, env.paths, app_id, make_form(title="mine now"), user="bob")
    assert info.value.code == "application_not_applicant"
    with pytest.raises(Forbidden):
        env.attach(app_id, user="bob")
    with env.session() as s:
        service.update_application(s, env.paths, app_id, make_form(title="Narrower"), user="alice")
    assert env.app(app_id).title == "Narrower"
    assert env.actions(app_id) == ["application.file", "application.update"]


def test_missing_attachments_are_listed_at_submit(env: AppEnv) -> None:
    app_id = env.file(track="domestic_partner", legal_basis="consent_waiver", consent="waived by the EC")
    with pytest.raises(BadInput) as info:
        env.submit(app_id)
    assert info.value.code == "application_incomplete"
    assert [r.details["kind"] for r in info.value.reasons] == [
        "ethics_approval",
        "consent_waiver",
        "cooperation_agreement",
        "partner_security",
    ]
    assert all(r.message_zh for r in info.value.reasons)
    assert env.app(app_id).state == "draft" and env.app(app_id).digest is None


def test_cross_border_without_government_approval_is_refused_at_submit(env: AppEnv) -> None:
    app_id = env.file(cross_border=True)
    env.attach(app_id)
    env.attach(app_id, "other", b"a letter from the partner, not the government")
    with pytest.raises(BadInput) as info:
        env.submit(app_id)
    assert [r.details["kind"] for r in info.value.reasons] == ["government_approval"]
    env.attach(app_id, "government_approval", b"sealed approval")
    assert env.submit(app_id) == "office_review"
    assert env.app(app_id).cross_border is True


def test_resubmission_after_return_is_a_new_revision_and_digest(env: AppEnv) -> None:
    app_id = env.in_state(S.RETURNED)
    first = env.app(app_id).digest
    narrower = make_form(datasets={"patients": {"columns": ["pid", "age"]}})
    with env.session() as s:
        service.update_application(s, env.paths, app_id, narrower, user="alice")
    env.attach(app_id, "other", b"answers to the Office")
    assert env.submit(app_id) == "office_review"
    app = env.app(app_id)
    assert app.revision == 2 and app.digest != first
    with env.session() as s:
        fresh = service.get(s, app_id)
        assert fresh.digest == service.compute_digest(fresh)


def test_the_digest_covers_revision_form_and_attachments(env: AppEnv) -> None:
    app_id = env.file()
    env.attach(app_id)
    with env.session() as s:
        app = service.get(s, app_id)
        base = service.compute_digest(app)
        app.revision = 2
        assert service.compute_digest(app) != base
        app.revision = 1
        app.form_json = app.form_json.replace("Hypertension", "Hypotension")
        assert service.compute_digest(app) != base
        s.rollback()
    env.attach(app_id, "other", b"one more page")
    with env.session() as s:
        assert service.compute_digest(service.get(s, app_id)) != base


def test_attachments_are_stored_by_hash_0600_and_once(env: AppEnv) -> None:
    first = env.file()
    second = env.file()
    sha = env.attach(first, data=b"%PDF ethics")
    assert env.attach(first, data=b"%PDF ethics") == sha  # the same document again: nothing new
    assert env.attach(second, data=b"%PDF ethics") == sha
    path = service.attachment_path(env.paths, sha)
    assert path == env.paths.vault / "applications" / sha[:2] / sha
    assert path.read_bytes() == b"%PDF ethics"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [sha]
    with env.session() as s:
        rows = s.scalars(select(ApplicationAttachment).where(ApplicationAttachment.sha256 == sha)).all()
        assert sorted(r.application_id for r in rows) == sorted([first, second])
    assert env.actions(first).count("application.attach") == 1


def test_attachment_kind_size_and_name_are_checked(env: AppEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    app_id = env.file()
    for kind, data, code in (
        ("selfie", b"x", "attachment_kind_unknown"),
        ("other", b"", "attachment_empty"),
        ("other", b"x" * (service.MAX_ATTACHMENT_BYTES + 1), "attachment_too_large"),
    ):
        with pytest.raises(BadInput) as info:
            env.attach(app_id, kind, data)
        assert info.value.code == code
    with env.session() as s:
        row = service.attach(
            s, env.paths, app_id, kind="other", filename="../../etc/passwd", data=b"x", user="alice"
        )
        assert row.filename == "passwd"


def test_withdrawal_by_the_applicant(env: AppEnv) -> None:
    app_id = env.in_state(S.COMMITTEE_REVIEW)
    with env.session() as s:
        service.withdraw(s, app_id, user="alice")
    assert env.app(app_id).state == "withdrawn"
    with env.session() as s, pytest.raises(Forbidden) as info:
        service.withdraw(s, app_id, user="alice")
    assert info.value.code == "application_state_invalid"


def test_a_failed_transaction_keeps_neither_state_nor_audit(env: AppEnv) -> None:
    app_id = env.file()
    env.attach(app_id)
    with pytest.raises(RuntimeError), env.session() as s:
        service.submit(s, env.paths, app_id, user="alice")
        raise RuntimeError("crash before commit")
    app = env.app(app_id)
    assert (app.state, app.digest, app.submitted_at) == ("draft", None, None)
    assert "application.submit" not in env.actions(app_id)


def test_an_audit_failure_undoes_the_state_change(env: AppEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    app_id = env.in_state(S.OFFICE_REVIEW)
    real = audit.record

    def failing(session, action, **kw):  # type: ignore[no-untyped-def]
        if action == "application.forward":
            raise EnclaveError("audit_down", "audit unavailable", "审计不可用")
        return real(session, action, **kw)

    monkeypatch.setattr(audit, "record", failing)
    with pytest.raises(EnclaveError):
        env.review(app_id, "forward")
    monkeypatch.undo()
    assert env.app(app_id).state == "office_review"
    with env.session() as s:
        from enclave.db.models import ApplicationReview

        assert s.scalars(select(ApplicationReview)).all() == []


def test_list_shows_own_and_team_applications_and_all_to_oversight(env: AppEnv) -> None:
    mine = env.file()
    other = env.file(
        applicant="zoe",
        team=[{"user": "zoe", "role": "pi"}],
        organisation="Elsewhere",
        purpose_category="contest",
    )
    with env.session() as s:
        ids = lambda viewer: [a.id for a in service.list_applications(s, viewer=viewer)]  # noqa: E731
        assert ids("alice") == [mine] and ids("bob") == [mine] and ids("zoe") == [other]
        assert ids("mallory") == []
        assert sorted(ids("olga")) == sorted([mine, other]) == sorted(ids("carol"))
        with pytest.raises(Forbidden) as info:
            service.describe(s, env.paths, mine, viewer="zoe")
        assert info.value.code == "application_not_visible"


def test_describe_has_the_agreed_shape(env: AppEnv) -> None:
    app_id = env.in_state(S.RETURNED)
    with env.session() as s:
        info = service.describe(s, env.paths, app_id, viewer="alice")
    assert {
        "id", "title", "applicant", "state", "track", "level", "cross_border", "revision", "digest",
        "form", "attachments", "reviews", "votes", "history",
    } <= set(info)  # fmt: skip
    assert info["state"] == "returned" and info["form"]["team"][0] == {"user": "alice", "role": "pi"}
    assert set(info["attachments"][0]) >= {"kind", "filename", "sha256", "size"}
    (review,) = info["reviews"]
    assert review["outcome"] == "return" and review["comment"] and review["revision"] == 1
    assert info["history"] is None and info["missing_attachments"] == []  # the reviewers' view only
    with env.session() as s:
        assert service.describe(s, env.paths, app_id, viewer="olga")["history"]["overlap"] is False
