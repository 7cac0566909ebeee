"""Provisioning from the approved application (R-APP-15, T14, T6, R-ROLE-5): the spec is generated from
the approval and may only be narrowed; any spec naming an application is held to it; no project without
an application unless the override and its reason are audited."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit, db, projects, provisioning, roles
from enclave.applications import service
from enclave.applications.workflow import ApplicationState
from enclave.config import Paths
from enclave.db import session_scope
from enclave.db.models import Application, DataUseAgreement, Project, ProjectSpecVersion
from enclave.errors import BadInput, EnclaveError, Forbidden
from enclave.roles import Role
from enclave.specs import ProjectSpec, parse_project_spec
from tests.conftest import write_yaml
from tests.harness.cli import enclave_cli
from tests.harness.factories import project_spec
from tests.test_agreements import (
    COMMITTEE,
    END,
    OFFICE,
    PDF,
    PERIOD,
    START,
    STEWARD,
    Gov,
    forge_approval,
    make_gov,
    refused,
)

PROJECT = "htn-2026"


@pytest.fixture
def gov(sessions: sessionmaker[Session], paths: Paths, tmp_path: Path) -> Gov:
    return make_gov(sessions, paths, tmp_path / "src")


def provision(g: Gov, app_id: str, *, actor: str = STEWARD, **kw: Any) -> Project:
    with g.session() as s:
        project = provisioning.provision_from_application(
            s, g.paths, app_id, project_id=kw.pop("project_id", PROJECT), actor=actor, **kw
        )
        s.expunge(project)
        return project


def generated(g: Gov, app_id: str, narrowing: dict[str, Any] | None = None) -> dict[str, Any]:
    with g.session() as s:
        spec = provisioning.spec_from_application(s, g.paths, app_id, project_id=PROJECT, narrowing=narrowing)
    return spec.model_dump(mode="json")


def create(g: Gov, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
    with g.session() as s:
        return projects.create_project(
            s, g.paths, parse_project_spec(data), actor=STEWARD, preparer=None, **kw
        )


def widened_codes(error: EnclaveError) -> list[str]:
    assert error.code == "application_widened" and isinstance(error, Forbidden), error
    return sorted(r.code for r in error.reasons)


# ---- the generated spec ----------------------------------------------------------------------------


def test_the_spec_is_the_approved_application(gov: Gov) -> None:
    app_id = gov.application()
    spec = generated(gov, app_id)
    assert spec["application"] == app_id and spec["id"] == PROJECT
    assert (spec["pi"], spec["analysts"]) == ("alice", ["alice", "bob"])
    assert spec["committee"] == sorted(COMMITTEE)
    assert spec["datasets"] == {
        "patients": ["pid", "age", "sex", "dx"],
        "visits": ["pid", "visit_date", "cost"],
    }
    assert (spec["access"], spec["min_cell_count"], spec["cross_border"]) == ("aggregate", 10, False)
    assert spec["period"] == PERIOD and spec["ethics_ref"] == "EC-2026-001"
    assert spec["title"] == "Hypertension outcomes" and spec["purpose"]


def test_the_project_committee_excludes_the_team_and_needs_three(gov: Gov) -> None:
    with gov.session() as s:
        roles.grant(s, "bob", Role.COMMITTEE, actor="admin")  # on the team: never reviews its exports
    app_id = gov.application()
    assert "bob" not in generated(gov, app_id)["committee"]
    with gov.session() as s:
        roles.revoke(s, "erin", Role.COMMITTEE, actor="admin")
    error = refused(BadInput, generated, gov, app_id)
    assert error.code == "committee_too_small"


def test_provisioning_creates_the_project_with_its_application(gov: Gov) -> None:
    app_id = gov.approved_with_dua()
    project = provision(gov, app_id)
    assert (project.id, project.application_id, project.state) == (PROJECT, app_id, "approved")
    with gov.session() as s:
        info = projects.describe(s, PROJECT)
        assert info["application"] == app_id and info["spec"]["application"] == app_id
        assert {"user": "bob", "role": "analyst"} in info["members"]
        (event,) = audit.tail(s, action="project.create")
        assert json.loads(event.details_json)["application"] == app_id
        assert audit.tail(s, action="project.create_without_application") == []


# ---- the gate: approval and DUA --------------------------------------------------------------------


def test_refused_without_a_dua(gov: Gov) -> None:
    app_id = gov.application()
    assert refused(Forbidden, provision, gov, app_id).code == "dua_missing"
    spec = generated(gov, app_id)
    assert refused(Forbidden, create, gov, spec).code == "dua_missing"
    with gov.session() as s:
        assert projects.list_projects(s) == []


@pytest.mark.parametrize(
    "state",
    [ApplicationState.DRAFT, ApplicationState.COMMITTEE_REVIEW, ApplicationState.REJECTED],
)
def test_refused_for_an_application_not_approved(gov: Gov, state: ApplicationState) -> None:
    approved = gov.approved_with_dua()
    app_id = gov.application(state)
    assert refused(Forbidden, provision, gov, app_id).code == "application_not_approved"
    spec = {**generated(gov, approved), "application": app_id}  # a hand-written spec naming it
    assert refused(Forbidden, create, gov, spec).code == "application_not_approved"


def test_a_forged_approval_is_refused(gov: Gov) -> None:
    """Approved in the state column, by no countersigned votes: ``verify_decision`` refuses it."""
    app_id = gov.application(ApplicationState.COMMITTEE_REVIEW)
    with gov.session() as s:
        forge_approval(s, app_id)
    gov.record(app_id)  # the DUA is there: only the approval is false
    error = refused(Forbidden, provision, gov, app_id)
    assert error.code == "application_not_approved"
    assert "application_decision_unverified" in [r.code for r in error.reasons]


def test_an_approval_edited_afterwards_is_refused(gov: Gov) -> None:
    """Widening the stored form after the vote breaks the countersigned digest."""
    app_id = gov.approved_with_dua()
    with gov.session() as s:
        app = service.get(s, app_id)
        form = json.loads(app.form_json)
        form["datasets"]["patients"]["columns"].append("income")
        app.form_json = audit.canonical_json(form)
    error = refused(Forbidden, provision, gov, app_id)
    assert error.code == "application_not_approved"
    assert "application_digest_mismatch" in [r.code for r in error.reasons]


# ---- never wider than the approval -----------------------------------------------------------------

LATER_END = (END + timedelta(days=1)).isoformat()
EARLIER_START = (START - timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"datasets": {"patients": ["pid", "age", "sex", "dx", "income"]}}, "columns_not_approved"),
        (
            {"datasets": {"patients": ["pid", "age"], "visits": ["pid", "cost"], "labs": ["pid"]}},
            "dataset_not_approved",
        ),
        ({"analysts": ["alice", "bob", "mallory"]}, "analysts_not_in_team"),
        ({"period": {"start": PERIOD["start"], "end": LATER_END}}, "period_not_approved"),
        ({"period": {"start": EARLIER_START, "end": PERIOD["end"]}}, "period_not_approved"),
        ({"access": "rows"}, "access_widened"),
        ({"min_cell_count": 9}, "min_cell_count_lowered"),
        ({"cross_border": True}, "cross_border_added"),
        ({"pi": "bob"}, "pi_not_applicant"),
    ],
)
def test_a_widened_spec_is_refused(gov: Gov, change: dict[str, Any], code: str) -> None:
    app_id = gov.approved_with_dua()
    spec = {**generated(gov, app_id), **change}
    assert code in widened_codes(refused(Forbidden, create, gov, spec))
    if set(change) <= set(provisioning.NARROWING_KEYS):  # a "narrowing" cannot widen either
        assert code in widened_codes(refused(Forbidden, provision, gov, app_id, narrowing=change))
    with gov.session() as s:
        assert projects.list_projects(s) == []


def test_every_widened_item_has_its_reason(gov: Gov) -> None:
    app_id = gov.approved_with_dua()
    spec = {
        **generated(gov, app_id),
        "datasets": {"patients": ["pid", "age", "sex", "dx", "income"], "labs": ["pid"]},
        "access": "rows",
        "min_cell_count": 5,
    }
    error = refused(Forbidden, create, gov, spec)
    assert widened_codes(error) == [
        "access_widened",
        "columns_not_approved",
        "dataset_not_approved",
        "min_cell_count_lowered",
    ]
    assert all(r.message_zh for r in error.reasons)


def test_a_narrowed_spec_is_accepted(gov: Gov) -> None:
    app_id = gov.approved_with_dua(access="rows")
    narrowing = {
        "datasets": {"patients": ["pid", "age", "sex"]},
        "analysts": ["bob"],
        "period": {"start": PERIOD["start"], "end": (END - timedelta(days=100)).isoformat()},
        "min_cell_count": 20,
        "access": "aggregate",
    }
    provision(gov, app_id, narrowing=narrowing)
    with gov.session() as s:
        spec = projects.current_spec(s, PROJECT)
    assert spec.datasets == {"patients": ["pid", "age", "sex"]} and spec.analysts == ["bob"]
    assert (spec.min_cell_count, spec.access.value) == (20, "aggregate")
    assert spec.period.end == END - timedelta(days=100) and spec.application == app_id


def test_a_hand_written_spec_within_the_application_is_accepted(gov: Gov) -> None:
    app_id = gov.approved_with_dua()
    spec = project_spec(
        id="hand-written",
        pi="alice",
        analysts=["alice"],
        committee=list(COMMITTEE),
        datasets={"visits": ["pid", "cost"]},
        min_cell_count=10,
        period=PERIOD,
        application=app_id,
    )
    assert create(gov, spec)["project"] == "hand-written"
    with gov.session() as s:
        assert projects.get(s, "hand-written").application_id == app_id


def test_a_narrowing_names_only_what_may_be_narrowed(gov: Gov) -> None:
    app_id = gov.approved_with_dua()
    for narrowing in ({"committee": ["carol", "dave", "zed"]}, {"pi": "bob"}, {"application": "app-other"}):
        assert refused(BadInput, provision, gov, app_id, narrowing=narrowing).code == "narrowing_invalid"


def test_the_spec_stays_within_the_dua(gov: Gov) -> None:
    app_id = gov.approved_with_dua()
    with gov.session() as s:  # a newer DUA row (rows are write-once) ending before the approved period does
        recorded = s.scalar(select(DataUseAgreement).where(DataUseAgreement.application_id == app_id))
        assert recorded is not None
        columns = {
            c.key: getattr(recorded, c.key) for c in DataUseAgreement.__table__.columns if c.key != "id"
        }
        s.add(DataUseAgreement(**{**columns, "end": (END - timedelta(days=1)).isoformat()}))
    assert widened_codes(refused(Forbidden, provision, gov, app_id)) == ["period_outside_dua"]


# ---- T6: no later version goes past the approval ---------------------------------------------------


def test_a_later_version_cannot_extend_the_end_date(gov: Gov) -> None:
    app_id = gov.approved_with_dua()
    provision(gov, app_id)
    with gov.session() as s:  # the stored spec edited to run a year longer
        row = s.scalar(select(ProjectSpecVersion).where(ProjectSpecVersion.project_id == PROJECT))
        assert row is not None
        longer = {**json.loads(row.spec_json), "period": {"start": PERIOD["start"], "end": LATER_END}}
        row.spec_json = audit.canonical_json(longer)
    with gov.session() as s:
        error = refused(Forbidden, projects.prepare_project, s, gov.paths, PROJECT, actor=STEWARD)
    assert widened_codes(error) == ["period_not_approved", "period_outside_dua"]
    with gov.session() as s:
        project = projects.get(s, PROJECT)
        spec = ProjectSpec.model_validate(
            {**projects.current_spec(s, PROJECT).model_dump(), "application": None}
        )
        assert (
            refused(Forbidden, provisioning.check_version_within, s, project, spec).code
            == "application_changed"
        )


# ---- who provisions --------------------------------------------------------------------------------


@pytest.mark.parametrize(("actor", "code"), [("carol", "role_required"), (OFFICE, "role_required")])
def test_only_a_steward_provisions(gov: Gov, actor: str, code: str) -> None:
    app_id = gov.approved_with_dua()
    assert refused(Forbidden, provision, gov, app_id, actor=actor).code == code


def test_a_steward_on_the_team_does_not_provision_it(gov: Gov) -> None:
    with gov.session() as s:
        roles.grant(s, "bob", Role.STEWARD, actor="admin")
    app_id = gov.approved_with_dua()
    assert refused(Forbidden, provision, gov, app_id, actor="bob").code == "own_application"


def test_a_deid_operator_named_as_analyst_is_refused(gov: Gov) -> None:
    """R-ROLE-5: made a de-identification operator after the approval, bob may not analyse."""
    app_id = gov.approved_with_dua()
    with gov.session() as s:
        roles.grant(s, "bob", Role.DEID_OPERATOR, actor="admin")
    assert refused(Forbidden, provision, gov, app_id).code == "role_conflict"
    hand_written = project_spec(id="no-app", pi="alice", analysts=["alice", "bob"])
    error = refused(Forbidden, create, gov, hand_written, without_application="legacy")
    assert error.code == "role_conflict"
    with gov.session() as s:
        assert projects.list_projects(s) == []


# ---- no application: refused, or an audited override -----------------------------------------------


def test_a_spec_without_application_needs_the_override(gov: Gov) -> None:
    spec = project_spec(id="no-app")
    for reason in (None, "", "   "):
        error = refused(Forbidden, create, gov, spec, without_application=reason)
        assert error.code == "application_required" and error.exit_code == 4
    create(gov, spec, without_application="migrated from the paper register, ref 2025-17")
    with gov.session() as s:
        (event,) = audit.tail(s, action="project.create_without_application")
        assert event.project == "no-app" and event.actor == STEWARD
        assert json.loads(event.details_json) == {"reason": "migrated from the paper register, ref 2025-17"}
        assert projects.get(s, "no-app").application_id is None


def test_an_override_is_not_taken_with_an_application(gov: Gov) -> None:
    app_id = gov.approved_with_dua()
    error = refused(BadInput, create, gov, generated(gov, app_id), without_application="why not")
    assert error.code == "application_override_conflict"


def test_the_application_id_has_the_service_s_shape() -> None:
    for bad in ("../../etc", "APP-1", "app-", "x" * 50):
        with pytest.raises(BadInput):
            parse_project_spec(project_spec(application=bad))
    assert parse_project_spec(project_spec(application="app-0123456789abcdef")).application


def test_a_spec_without_application_serialises_as_before() -> None:
    assert "application" not in parse_project_spec(project_spec()).model_dump(mode="json")


# ---- the CLI ---------------------------------------------------------------------------------------

cli = enclave_cli


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gov:
    """An enclave home on SQLite, set up by the CLI's init, with the governance fixture's contents."""
    monkeypatch.delenv("ENCLAVE_DATABASE_URL", raising=False)
    home = tmp_path / "site"
    cli(home, "init", "--actor", "admin")
    return make_gov(db.connect(f"sqlite:///{home / 'state.db'}"), Paths(home), tmp_path / "src")


def test_cli_agreement_and_provision(site: Gov, tmp_path: Path) -> None:
    home = site.paths.home
    app_id = site.application()
    out = cli(home, "project", "provision", app_id, "--id", PROJECT, "--user", STEWARD, "--json", code=4)
    assert out["error"]["code"] == "dua_missing"

    pdf = tmp_path / "dua.pdf"
    pdf.write_bytes(b"<html>")
    args = ["agreement", "record", app_id, "--start", START.isoformat(), "--end", END.isoformat()]
    out = cli(home, *args, "--user", STEWARD, "--pdf", str(pdf), "--json", code=2)
    assert out["error"]["code"] == "dua_invalid"
    pdf.write_bytes(PDF)
    out = cli(home, *args, "--user", "bob", "--pdf", str(pdf), "--json", code=4)
    assert out["error"]["code"] == "role_required"
    assert cli(home, *args, "--user", STEWARD, "--json", code=2)["error"]["code"] == "dua_kind_invalid"
    recorded = cli(home, *args, "--user", STEWARD, "--pdf", str(pdf), "--json")
    assert recorded["kind"] == "pdf" and recorded["signer"] == "alice" and recorded["filename"] == "dua.pdf"
    signed = cli(home, *args, "--user", "alice", "--esign", "--json")
    assert signed["kind"] == "esign" and signed["signature"]
    shown = cli(home, "agreement", "show", app_id, "--json")
    assert shown["current"]["id"] == signed["id"]
    assert [a["verified"] for a in shown["agreements"]] == [True, True]
    refusals = [e for e in cli(home, "audit", "tail", "-n", "100", "--json") if e["action"] == "dua.record"]
    assert [e["outcome"] for e in refusals].count("refused") == 3

    narrow = write_yaml(
        tmp_path / "narrow.yaml", {"datasets": {"visits": ["pid", "cost"]}, "analysts": ["bob"]}
    )
    out = cli(home, "project", "provision", app_id, "--id", PROJECT, "--user", "carol", "--json", code=4)
    assert out["error"]["code"] == "role_required"
    provision_args = ["project", "provision", app_id, "--id", PROJECT, "--user", STEWARD]
    created = cli(home, *provision_args, "--narrow", str(narrow), "--no-prepare", "--json")
    assert created["application"] == app_id and created["spec"]["analysts"] == ["bob"]
    assert created["spec"]["datasets"] == {"visits": ["pid", "cost"]}
    assert cli(home, "project", "show", PROJECT, "--json")["application"] == app_id


def test_cli_project_create_needs_an_application_or_the_override(site: Gov, tmp_path: Path) -> None:
    home = site.paths.home
    spec = write_yaml(tmp_path / "p.yaml", project_spec(id="no-app"))
    out = cli(home, "project", "create", str(spec), "--no-prepare", "--json", code=4)
    assert out["error"]["code"] == "application_required" and out["error"]["message_zh"]
    refusals = cli(home, "audit", "tail", "--action", "project.create_refused", "--json")
    assert refusals[-1]["details"]["code"] == "application_required"
    cli(home, "project", "create", str(spec), "--no-prepare", "--without-application", "pilot", "--json")
    (event,) = cli(home, "audit", "tail", "--action", "project.create_without_application", "--json")
    assert event["details"] == {"reason": "pilot"} and event["project"] == "no-app"

    app_id = site.approved_with_dua()
    wide = write_yaml(tmp_path / "w.yaml", {**generated(site, app_id), "id": "wide", "access": "rows"})
    out = cli(home, "project", "create", str(wide), "--no-prepare", "--json", code=4)
    assert out["error"]["code"] == "application_widened"
    assert [r["code"] for r in out["error"]["reasons"]] == ["access_widened"]
    narrow = yaml.safe_load(wide.read_text()) | {"id": "narrow", "access": "aggregate"}
    ok = cli(
        home, "project", "create", str(write_yaml(tmp_path / "n.yaml", narrow)), "--no-prepare", "--json"
    )
    assert ok["project"] == "narrow"
    with session_scope(site.sessions) as s:
        assert s.get(Project, "narrow").application_id == app_id  # type: ignore[union-attr]
        assert s.get(Application, app_id).state == "approved"  # type: ignore[union-attr]
