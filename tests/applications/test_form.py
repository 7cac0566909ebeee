"""The application form (R-APP-2..4, 12, 19, 20) and its checks against the catalog (R-CAT-6, 14)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from enclave import catalog
from enclave.applications import form as forms
from enclave.applications import service
from enclave.applications.form import AttachmentKind as K
from enclave.config import Paths
from enclave.db import session_scope
from enclave.demo_data.generator import generate
from enclave.errors import BadInput, Forbidden
from tests.applications.conftest import AppEnv, form_data, make_form

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "applications" / "demo-application.yaml"


def form_error(**fields: Any) -> BadInput:
    with pytest.raises(BadInput) as info:
        make_form(**fields)
    assert info.value.code == "application_form_invalid"
    return info.value


def filing_error(env: AppEnv, applicant: str = "alice", **fields: Any) -> BadInput:
    with pytest.raises(BadInput) as info:
        env.file(applicant, **fields)
    return info.value


@pytest.mark.parametrize("purpose", ["commercial", "profit", "marketing", ""])
def test_only_non_profit_purposes(purpose: str) -> None:
    error = form_error(purpose_category=purpose)
    assert [r.code for r in error.reasons] == ["purpose_not_allowed"]
    assert "R-APP-3" in error.reasons[0].message and error.reasons[0].message_zh


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ethics_ref": None}, "(form)"),  # research needs ethics approval (R-APP-20)
        ({"ethics_ref": "   "}, "(form)"),
        ({"team": [{"user": "alice", "role": "analyst"}]}, "team"),  # no pi
        ({"team": [{"user": "alice", "role": "pi"}, {"user": "bob", "role": "pi"}]}, "team"),
        ({"team": [{"user": "alice", "role": "pi"}, {"user": "alice", "role": "analyst"}]}, "team"),
        ({"team": [{"user": "alice", "role": "owner"}]}, "team.0.role"),
        ({"min_cell_count": 4}, "min_cell_count"),
        ({"track": "offshore"}, "track"),
        ({"legal_basis": "because"}, "legal_basis"),
        ({"legal_basis": "consent"}, "(form)"),  # consent needs its text (R-APP-19)
        ({"datasets": {}}, "datasets"),
        ({"datasets": {"patients": {"columns": []}}}, "datasets.patients.columns"),
        ({"datasets": {"patients": {"columns": ["pid", "pid"]}}}, "datasets.patients.columns"),
        (
            {
                "datasets": {
                    "patients": {
                        "columns": ["pid"],
                        "time_range": {"start": "2021-01-01", "end": "2020-01-01"},
                    }
                }
            },
            "datasets.patients.time_range",
        ),
        ({"period": {"start": "2027-01-01", "end": "2026-01-01"}}, "period"),
        ({"salary": 1}, "salary"),
    ],
)
def test_form_fields_are_checked(fields: dict[str, Any], field: str) -> None:
    error = form_error(**fields)
    assert field in [r.details["field"] for r in error.reasons]


def test_a_contest_needs_no_ethics_reference_and_consent_with_text_is_fine() -> None:
    form = make_form(
        purpose_category="contest", ethics_ref=None, legal_basis="consent", consent="signed forms"
    )
    assert form.pi == "alice" and forms.required_attachments(form) == []


@pytest.mark.parametrize(
    ("fields", "needed"),
    [
        ({}, [K.ETHICS_APPROVAL]),
        ({"legal_basis": "consent_waiver", "consent": "waived"}, [K.ETHICS_APPROVAL, K.CONSENT_WAIVER]),
        ({"track": "domestic_partner"}, [K.ETHICS_APPROVAL, K.COOPERATION_AGREEMENT, K.PARTNER_SECURITY]),
        ({"track": "foreign"}, [K.ETHICS_APPROVAL, K.GOVERNMENT_APPROVAL, K.PARTNER_SECURITY]),
        ({"cross_border": True}, [K.ETHICS_APPROVAL, K.GOVERNMENT_APPROVAL]),
        (
            {"track": "foreign", "cross_border": True},
            [K.ETHICS_APPROVAL, K.GOVERNMENT_APPROVAL, K.PARTNER_SECURITY],
        ),
        ({"purpose_category": "ai_training", "ethics_ref": None}, []),
    ],
)
def test_required_attachments_by_track_and_basis(fields: dict[str, Any], needed: list[K]) -> None:
    assert forms.required_attachments(make_form(**fields)) == needed


def test_filing_stores_a_draft_with_the_highest_level(env: AppEnv) -> None:
    app_id = env.file()
    app = env.app(app_id)
    assert (app.state, app.applicant, app.level, app.revision, app.digest) == ("draft", "alice", 3, 1, None)
    assert service.form_of(app) == make_form()
    assert env.actions(app_id) == ["application.file"]
    datasets = {"patients": {"columns": ["pid", "age"]}, "identified": {"columns": ["pid", "sex"]}}
    app_id = env.file(datasets=datasets, legal_basis="consent", consent="signed")
    assert env.app(app_id).level == 4


@pytest.mark.parametrize("dataset", ["secret", "closed"])
def test_level_5_and_unshared_datasets_are_refused(env: AppEnv, dataset: str) -> None:
    fields = {"legal_basis": "consent", "consent": "signed"}
    error = filing_error(env, datasets={dataset: {"columns": ["pid", "age"]}}, **fields)
    assert error.code == "application_catalog_mismatch"
    assert [(r.code, r.details["field"]) for r in error.reasons] == [
        ("dataset_not_shared", f"datasets.{dataset}")
    ]


def test_direct_identifiers_are_never_requested(env: AppEnv) -> None:
    error = filing_error(env, datasets={"patients": {"columns": ["pid", "name", "age"]}})
    assert [(r.code, r.details["column"]) for r in error.reasons] == [("column_direct_id", "name")]


def test_unknown_datasets_columns_and_a_missing_person_key(env: AppEnv) -> None:
    datasets = {"nope": {"columns": ["pid"]}, "patients": {"columns": ["age", "bogus"]}}
    error = filing_error(env, datasets=datasets)
    assert sorted(r.code for r in error.reasons) == [
        "column_unknown",
        "dataset_unknown",
        "person_key_required",
    ]
    assert all(r.message_zh for r in error.reasons)


def test_time_ranges_need_dates_and_stay_within_the_period(env: AppEnv) -> None:
    late = {"start": "2020-01-01", "end": "2028-06-30"}
    datasets = {
        "patients": {"columns": ["pid", "age"], "time_range": {"start": "2020-01-01", "end": "2020-12-31"}},
        "visits": {"columns": ["pid", "visit_date"], "time_range": late},
    }
    error = filing_error(env, datasets=datasets)
    assert sorted(r.code for r in error.reasons) == ["time_range_outside_period", "time_range_without_dates"]


def test_level_4_data_needs_consent_evidence(env: AppEnv) -> None:
    error = filing_error(env, datasets={"identified": {"columns": ["pid", "age"]}})
    assert [r.code for r in error.reasons] == ["consent_evidence_required"]
    env.file(datasets={"identified": {"columns": ["pid", "age"]}}, legal_basis="consent_waiver", consent="EC")


def test_the_applicant_is_the_pi(env: AppEnv) -> None:
    assert filing_error(env, applicant="bob").code == "applicant_not_pi"


def test_the_catalog_is_checked_again_at_submit(env: AppEnv) -> None:
    app_id = env.file()
    env.attach(app_id)
    with session_scope(env.sessions) as s:  # the steward withdraws the dataset from sharing meanwhile
        catalog.get(s, "visits").share_type = "none"
    with pytest.raises(BadInput) as info:
        env.submit(app_id)
    assert [r.code for r in info.value.reasons] == ["dataset_not_shared"]
    assert env.app(app_id).state == "draft"


def test_approved_form_only_for_approved_applications(env: AppEnv) -> None:
    from enclave.applications.workflow import ApplicationState

    pending = env.in_state(ApplicationState.COMMITTEE_REVIEW)
    approved = env.in_state(ApplicationState.APPROVED)
    with session_scope(env.sessions) as s:
        with pytest.raises(Forbidden) as info:
            service.approved_form(s, pending)
        assert info.value.code == "application_not_approved"
        assert service.approved_form(s, approved) == make_form()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_example_form_is_valid_for_the_demo_datasets(
    sessions: sessionmaker[Session], paths: Paths, tmp_path: Path
) -> None:
    demo = tmp_path / "demo"
    generate(demo, 20, 1)
    form = forms.load_form(EXAMPLE)
    with session_scope(sessions) as s:
        for name in form.datasets:
            catalog.register(s, paths, demo / f"{name}.yaml", actor="steward")
        app = service.file_application(s, paths, form, applicant=form.pi)
        assert app.level == 4
    assert [k.value for k in forms.required_attachments(form)] == ["ethics_approval", "consent_waiver"]
    assert form_data()  # the shared test form stays a plain dict
