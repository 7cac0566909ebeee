"""The data-use agreement gate (R-APP-15, T14, R-GOV-12): recorded for approved applications only, a
real PDF or the PI's e-signature over the standard terms, covering the approved period, and kept six
years after its end, through project destruction.

``Gov`` builds applications through the real service (file, attach, submit, Office review) and the
committee's approval; the provisioning tests reuse it."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from enclave import agreements, audit, lifecycle, roles, signing
from enclave.applications import form as forms
from enclave.applications import office, service, voting
from enclave.applications.workflow import ApplicationActor, ApplicationState, set_state
from enclave.config import Paths
from enclave.db import session_scope
from enclave.db.models import DataUseAgreement, Project
from enclave.errors import BadInput, Forbidden
from enclave.roles import Role
from tests.harness.factories import (
    StateHome,
    application_form,
    register_patients_and_visits,
)

OFFICE = "olga"
COMMITTEE = ("carol", "dave", "erin")
STEWARD = "sam"
PDF = b"%PDF-1.7\n% a signed data-use agreement\n%%EOF\n"
TODAY = lifecycle.enclave_today()
PERIOD = {"start": (TODAY - timedelta(days=10)).isoformat(), "end": (TODAY + timedelta(days=365)).isoformat()}
START, END = date.fromisoformat(PERIOD["start"]), date.fromisoformat(PERIOD["end"])


def form_data(**fields: Any) -> dict[str, Any]:
    """The shared test form over the current period, with a k of 10 and no time range on visits."""
    datasets = {
        "patients": {"columns": ["pid", "age", "sex", "dx"]},
        "visits": {"columns": ["pid", "visit_date", "cost"]},
    }
    return application_form(**{"datasets": datasets, "period": PERIOD, "min_cell_count": 10, **fields})


def approve_by_committee(s: Session, paths: Paths, app_id: str) -> None:
    """The committee's approval: every member votes yes and countersigns."""
    for member in COMMITTEE:
        voting.vote(s, paths, app_id, member=member, choice="approve")
        voting.countersign(s, paths, app_id, member=member)
    assert service.get(s, app_id).state == ApplicationState.APPROVED


def forge_approval(s: Session, app_id: str) -> None:
    """Approved in the state column, with no votes behind it."""
    set_state(
        s, service.get(s, app_id), ApplicationState.APPROVED, user="carol", actor=ApplicationActor.COMMITTEE
    )


class Gov(StateHome):
    """A catalog, the Office, a committee of three, a steward; applications through the real service."""

    def application(self, state: ApplicationState = ApplicationState.APPROVED, **fields: Any) -> str:
        """A new application by alice, brought to ``state`` (approved: by the committee's votes)."""
        with self.session() as s:
            app = service.file_application(
                s, self.paths, forms.parse_form(form_data(**fields)), applicant="alice"
            )
            app_id = app.id
        if state is ApplicationState.DRAFT:
            return app_id
        with self.session() as s:
            service.attach(
                s, self.paths, app_id, kind="ethics_approval", filename="ec.pdf", data=PDF, user="alice"
            )
            service.submit(s, self.paths, app_id, user="alice")
            office.review(
                s,
                self.paths,
                app_id,
                reviewer=OFFICE,
                outcome="forward",
                checklist=dict.fromkeys(office.CHECKLIST, True),
                scorecard=dict.fromkeys(office.SCORECARD, 4),
            )
        if state is ApplicationState.COMMITTEE_REVIEW:
            return app_id
        with self.session() as s:
            if state is ApplicationState.APPROVED:
                approve_by_committee(s, self.paths, app_id)
            else:
                set_state(s, service.get(s, app_id), state, user="carol", actor=ApplicationActor.COMMITTEE)
        return app_id

    def record(self, app_id: str, **kw: Any) -> DataUseAgreement:
        kw.setdefault("kind", "pdf")
        kw.setdefault("start", START)
        kw.setdefault("end", END)
        kw.setdefault("actor", STEWARD)
        kw.setdefault("signer", "alice")
        if kw["kind"] == "pdf":
            kw.setdefault("pdf", PDF)
            kw.setdefault("filename", "dua.pdf")
        with self.session() as s:
            row = agreements.record_dua(s, self.paths, app_id, **kw)
            s.expunge(row)
            return row

    def approved_with_dua(self, **fields: Any) -> str:
        app_id = self.application(**fields)
        self.record(app_id)
        return app_id


def make_gov(sessions: sessionmaker[Session], paths: Paths, sources: Path) -> Gov:
    with session_scope(sessions) as s:
        register_patients_and_visits(s, paths, sources)
        roles.grant(s, OFFICE, Role.OFFICE, actor="admin")
        for name in COMMITTEE:
            roles.grant(s, name, Role.COMMITTEE, actor="admin")
        roles.grant(s, STEWARD, Role.STEWARD, actor="admin")
    return Gov(sessions, paths)


@pytest.fixture
def gov(sessions: sessionmaker[Session], paths: Paths, tmp_path: Path) -> Gov:
    return make_gov(sessions, paths, tmp_path / "src")


def refused(error_type: type[Exception], call: Any, *args: Any, **kw: Any) -> Any:
    with pytest.raises(error_type) as info:
        call(*args, **kw)
    return info.value


# ---- recording -------------------------------------------------------------------------------------


def test_a_pdf_is_stored_by_sha256_and_the_record_is_audited(gov: Gov) -> None:
    app_id = gov.application()
    row = gov.record(app_id)
    sha = hashlib.sha256(PDF).hexdigest()
    stored = gov.paths.vault / "agreements" / sha
    assert row.sha256 == sha and stored.read_bytes() == PDF
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert (row.kind, row.signer, row.signature, row.filename) == ("pdf", "alice", None, "dua.pdf")
    assert (row.start, row.end) == (START.isoformat(), END.isoformat())
    assert row.retain_until == END.replace(year=END.year + 6).isoformat()  # R-GOV-12
    with gov.session() as s:
        (event,) = audit.tail(s, action="dua.record")
        assert event.actor == STEWARD and event.object == f"application:{app_id}"
        assert json.loads(event.details_json)["sha256"] == sha
        assert agreements.check_dua(s, app_id, paths=gov.paths).id == row.id


@pytest.mark.parametrize(
    "pdf",
    [
        b"<html>not a pdf</html>",
        b"PDF-1.7 but no percent sign",
        b"",
        None,
        b"%PDF-" + b"0" * agreements.MAX_PDF_BYTES,
    ],
)
def test_only_a_pdf_is_taken(gov: Gov, pdf: bytes | None) -> None:
    app_id = gov.application()
    error = refused(BadInput, gov.record, app_id, pdf=pdf)
    assert error.code == "dua_invalid" and error.message_zh
    with gov.session() as s:
        assert agreements.current_dua(s, app_id) is None
    assert not (gov.paths.vault / "agreements").exists() or not any(
        (gov.paths.vault / "agreements").iterdir()
    )


def test_the_pi_e_signs_the_standard_terms(gov: Gov) -> None:
    app_id = gov.application()
    row = gov.record(app_id, kind="esign", actor="alice", signer="alice")
    statement = (gov.paths.vault / "agreements" / row.sha256).read_bytes()
    assert hashlib.sha256(statement).hexdigest() == row.sha256
    body = json.loads(statement)
    assert body["application"] == app_id and body["signer"] == "alice"
    assert (body["start"], body["end"]) == (START.isoformat(), END.isoformat())
    with gov.session() as s:
        assert body["digest"] == service.get(s, app_id).digest
    assert [t["id"] for t in body["terms"]] == [
        "purpose_limitation",
        "no_reidentification",
        "no_linkage",
        "no_onward_provision",
        "confidentiality",
    ]
    assert all(t["en"] and t["zh"] for t in body["terms"])
    public = signing.public_key_hex(signing.load_or_create_key(gov.paths.vault / "keys", "alice"))
    assert row.signature and signing.verify(public, statement, row.signature)
    assert not signing.verify(public, statement.replace(b"no_linkage", b"linkage_ok"), row.signature)


def test_a_steward_may_e_sign_for_the_pi_but_only_as_the_pi(gov: Gov) -> None:
    app_id = gov.application()
    error = refused(Forbidden, gov.record, app_id, kind="esign", signer="bob")
    assert error.code == "dua_signer_not_pi"
    assert gov.record(app_id, kind="esign", signer="alice").recorded_by == STEWARD


@pytest.mark.parametrize(
    ("actor", "kind", "code"),
    [
        ("bob", "pdf", "role_required"),  # an analyst is not a steward
        ("bob", "esign", "role_required"),  # nor may he e-sign for the PI
        ("carol", "pdf", "role_required"),  # the committee decides; stewards record
        ("alice", "pdf", "role_required"),  # the PI may e-sign, not record a paper DUA herself
    ],
)
def test_who_may_record(gov: Gov, actor: str, kind: str, code: str) -> None:
    app_id = gov.application()
    kw: dict[str, Any] = {"pdf": None} if kind == "esign" else {}
    error = refused(Forbidden, gov.record, app_id, actor=actor, kind=kind, **kw)
    assert error.code == code


def test_a_steward_records_no_paper_dua_of_their_own_application(gov: Gov) -> None:
    with gov.session() as s:
        roles.grant(s, "alice", Role.STEWARD, actor="admin")
    app_id = gov.application()
    assert refused(Forbidden, gov.record, app_id, actor="alice").code == "own_application"


@pytest.mark.parametrize(
    "state",
    [
        ApplicationState.DRAFT,
        ApplicationState.COMMITTEE_REVIEW,
        ApplicationState.REJECTED,
    ],
)
def test_only_an_approved_application_gets_a_dua(gov: Gov, state: ApplicationState) -> None:
    app_id = gov.application(state)
    assert refused(Forbidden, gov.record, app_id).code == "application_not_approved"


def test_an_unknown_application(gov: Gov) -> None:
    error = refused(Exception, gov.record, "app-0000000000000000")
    assert getattr(error, "code", None) == "application_not_found"


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        (START + timedelta(days=1), END, "dua_period_mismatch"),  # starts after the approved start
        (START, END - timedelta(days=1), "dua_period_mismatch"),  # ends before the approved end
        (END, START, "dua_period_invalid"),
    ],
)
def test_the_dua_covers_the_approved_period(gov: Gov, start: date, end: date, code: str) -> None:
    app_id = gov.application()
    assert refused(BadInput, gov.record, app_id, start=start, end=end).code == code
    longer = gov.record(app_id, start=START - timedelta(days=30), end=END + timedelta(days=30))
    assert longer.end == (END + timedelta(days=30)).isoformat()


def test_an_unknown_kind_is_refused(gov: Gov) -> None:
    app_id = gov.application()
    assert refused(BadInput, gov.record, app_id, kind="handshake").code == "dua_kind_invalid"


def test_retention_of_a_leap_day_end() -> None:
    assert agreements.retain_until(date(2028, 2, 29)) == date(2034, 2, 28)


# ---- the gate --------------------------------------------------------------------------------------


def test_check_dua_refuses_a_missing_or_altered_agreement(gov: Gov) -> None:
    app_id = gov.application()
    with gov.session() as s:
        assert refused(Forbidden, agreements.check_dua, s, app_id).code == "dua_missing"
    row = gov.record(app_id)
    stored = gov.paths.vault / "agreements" / row.sha256
    os.chmod(stored, 0o600)
    stored.write_bytes(PDF + b"edited")
    with gov.session() as s:
        assert agreements.check_dua(s, app_id).id == row.id  # the row alone
        assert refused(Forbidden, agreements.check_dua, s, app_id, paths=gov.paths).code == "dua_invalid"
        assert agreements.describe(s, gov.paths, app_id)["current"]["verified"] is False


def test_a_later_dua_is_current_and_the_earlier_one_is_kept(gov: Gov) -> None:
    app_id = gov.application()
    first = gov.record(app_id)
    second = gov.record(app_id, kind="esign", signer="alice")
    with gov.session() as s:
        assert agreements.current_dua(s, app_id).id == second.id  # type: ignore[union-attr]
        info = agreements.describe(s, gov.paths, app_id)
    assert [a["id"] for a in info["agreements"]] == [first.id, second.id]
    assert all(a["verified"] for a in info["agreements"])


def test_the_dua_outlives_the_project(gov: Gov) -> None:
    """R-GOV-12: destruction and the sweep delete the project's data, never its agreement."""
    from enclave import provisioning

    app_id = gov.application()
    row = gov.record(app_id)
    with gov.session() as s:
        provisioning.provision_from_application(s, gov.paths, app_id, project_id="htn-2026", actor=STEWARD)
    for day in (END + timedelta(days=1), END + timedelta(days=30)):  # expired, then destroyed
        lifecycle.sweep(gov.session, gov.paths, today=day)
    with gov.session() as s:
        assert s.get(Project, "htn-2026").state == "destroyed"  # type: ignore[union-attr]
        assert s.scalar(select(DataUseAgreement).where(DataUseAgreement.application_id == app_id)) is not None
        assert agreements.check_dua(s, app_id, paths=gov.paths).id == row.id
    assert (gov.paths.vault / "agreements" / row.sha256).read_bytes() == PDF
