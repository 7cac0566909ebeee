"""Fixtures: a catalog with shareable and unshareable datasets, Office and Committee members, and
applications driven through the real service (on SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit, catalog, roles
from enclave.applications import form as forms
from enclave.applications import office, service
from enclave.applications.workflow import ApplicationActor, ApplicationState, set_state
from enclave.config import Paths
from enclave.db import session_scope
from enclave.db.models import Application
from enclave.roles import Role
from tests.harness.factories import (
    PATIENT_COLUMNS,
    VISIT_COLUMNS,
    StateHome,
    application_form,
    patients_table,
    visits_table,
    write_dataset,
)

OFFICE = ("olga", "oscar")
COMMITTEE = ("carol", "dave", "erin")
FULL_CHECKLIST = dict.fromkeys(office.CHECKLIST, True)
FULL_SCORECARD = dict.fromkeys(office.SCORECARD, 4)

form_data = application_form  # the shared test form, a fresh copy each call


def make_form(**fields: Any) -> forms.ApplicationForm:
    return forms.parse_form(form_data(**fields))


class AppEnv(StateHome):
    def file(self, applicant: str = "alice", **fields: Any) -> str:
        with self.session() as s:
            return service.file_application(s, self.paths, make_form(**fields), applicant=applicant).id

    def attach(
        self, app_id: str, kind: str = "ethics_approval", data: bytes = b"approved", user: str = "alice"
    ) -> str:
        with self.session() as s:
            return service.attach(
                s, self.paths, app_id, kind=kind, filename=f"{kind}.pdf", data=data, user=user
            ).sha256

    def submit(self, app_id: str, user: str = "alice") -> str:
        with self.session() as s:
            return service.submit(s, self.paths, app_id, user=user).state

    def review(self, app_id: str, outcome: str = "forward", reviewer: str = "olga", **kw: Any) -> str:
        kw.setdefault("checklist", FULL_CHECKLIST)
        kw.setdefault("scorecard", FULL_SCORECARD)
        kw.setdefault("comment", "please narrow the columns" if outcome == "return" else "")
        with self.session() as s:
            return office.review(s, self.paths, app_id, reviewer=reviewer, outcome=outcome, **kw).state

    def app(self, app_id: str) -> Application:
        with self.session() as s:
            app = service.get(s, app_id)
            _ = app.attachments
            s.expunge(app)
            return app

    def actions(self, app_id: str) -> list[str]:
        with self.session() as s:
            return [e.action for e in audit.tail(s, limit=1000) if e.object == f"application:{app_id}"]

    def in_state(self, state: ApplicationState, **fields: Any) -> str:
        """A new application brought to ``state`` through the real workflow."""
        app_id = self.file(**fields)
        if state is ApplicationState.DRAFT:
            return app_id
        if state is ApplicationState.WITHDRAWN:
            with self.session() as s:
                service.withdraw(s, app_id, user="alice")
            return app_id
        self.attach(app_id)
        if state is ApplicationState.SUBMITTED:
            with self.session() as s:  # the moment between the applicant's move and the system's
                app = service.get(s, app_id)
                app.digest = service.compute_digest(app)
                set_state(s, app, state, user="alice", actor=ApplicationActor.APPLICANT)
            return app_id
        self.submit(app_id)
        if state is ApplicationState.OFFICE_REVIEW:
            return app_id
        if state is ApplicationState.RETURNED:
            self.review(app_id, "return")
            return app_id
        self.review(app_id, "forward")
        if state is ApplicationState.COMMITTEE_REVIEW:
            return app_id
        with self.session() as s:
            set_state(s, service.get(s, app_id), state, user="carol", actor=ApplicationActor.COMMITTEE)
        return app_id


def register(
    s: Session, paths: Paths, directory: Path, name: str, table: Any, columns: Any, **fields: Any
) -> None:
    catalog.register(s, paths, write_dataset(directory, name, table, columns, **fields), actor="steward")


@pytest.fixture
def env(sessions: sessionmaker[Session], paths: Paths, tmp_path: Path) -> AppEnv:
    """patients and visits (level 3, shared), secret (level 5), closed (not shared), identified (level 4)."""
    src = tmp_path / "src"
    with session_scope(sessions) as s:
        register(s, paths, src, "patients", patients_table(), PATIENT_COLUMNS)
        register(s, paths, src, "visits", visits_table(), VISIT_COLUMNS)
        register(s, paths, src, "secret", patients_table(), PATIENT_COLUMNS, level=5)
        register(s, paths, src, "closed", patients_table(), PATIENT_COLUMNS, share_type="none")
        register(s, paths, src, "identified", patients_table(), PATIENT_COLUMNS, level=4)
        for name in OFFICE:
            roles.grant(s, name, Role.OFFICE, actor="admin")
        for name in COMMITTEE:
            roles.grant(s, name, Role.COMMITTEE, actor="admin")
    return AppEnv(sessions, paths)
