"""A real JupyterHub with the console registered, the console served in a thread, and an enclave with
two registered datasets and its staff: PI ``pia`` with analyst ``bob``, Office officer ``oscar``,
committee members ``cm1``..``cm3``, steward ``stella``, security auditor ``audrey`` and a stranger
``carol``; each has a hub token for the console. Every port is a free port on 127.0.0.1.

The hub launcher is ``tests.hub``'s, the HTTP helpers the export review's and the gateway's; the
stack runs once on SQLite and once on PostgreSQL. ``advance`` moves an application through the
domain modules to a given state, so each test starts where it needs to.
"""

from __future__ import annotations

import html
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from enclave import catalog, db, roles
from enclave.config import Paths
from enclave.roles import Role
from tests.conftest import state_database
from tests.export_review.web.conftest import Response
from tests.gateway.conftest import RunningService
from tests.harness.factories import (
    PATIENT_COLUMNS,
    VISIT_COLUMNS,
    patients_table,
    visits_table,
    write_dataset,
)
from tests.harness.services import hub_with_service, multipart_body

HUB_CONFIG = Path(__file__).with_name("hub_config.py")
SERVICE = "console"
SERVICE_PREFIX = f"/services/{SERVICE}/"
STAFF: dict[str, tuple[Role, ...]] = {
    "pia": (),
    "bob": (),
    "carol": (),
    "oscar": (Role.OFFICE,),
    "cm1": (Role.COMMITTEE,),
    "cm2": (Role.COMMITTEE,),
    "cm3": (Role.COMMITTEE,),
    "stella": (Role.STEWARD,),
    "audrey": (Role.SECURITY_AUDITOR,),
}
COMMITTEE = ("cm1", "cm2", "cm3")
ETHICS_PDF = b"%PDF-1.4\n% ethics committee approval EC-2026-017\n%%EOF\n"
DUA_PDF = b"%PDF-1.4\n% signed data-use agreement\n%%EOF\n"
Fields = list[tuple[str, str]]
Files = list[tuple[str, str, bytes]]  # (field name, file name, content)


def period() -> tuple[str, str]:
    return (date.today() - timedelta(days=1)).isoformat(), (date.today() + timedelta(days=300)).isoformat()


def form_fields(applicant: str = "pia", **changes: Any) -> Fields:
    """The application form as a browser posts it: a research project on both datasets."""
    start, end = period()
    fields = {
        "title": "Hypertension outcomes",
        "purpose": "Describe outcomes after a hypertension diagnosis",
        "purpose_category": "research",
        "track": "in_house",
        "organisation": "West China Hospital",
        "team_user": [applicant, "bob"],
        "team_role": ["pi", "analyst"],
        "period_start": start,
        "period_end": end,
        "access": "aggregate",
        "min_cell_count": "5",
        "legal_basis": "consent_waiver",
        "consent": "Retrospective records; the ethics committee waived consent",
        "ethics_ref": "EC-2026-017",
        "ds.patients.columns": ["pid", "age", "sex", "dx"],
        "ds.visits.columns": ["pid", "visit_date", "cost"],
        "action": "draft",
    }
    fields.update(changes)
    out: Fields = []
    for name, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            out.append((name, one))
    return out


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _send(opener: urllib.request.OpenerDirector, request: urllib.request.Request) -> Response:
    try:
        with opener.open(request, timeout=120) as answer:
            return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def _body(fields: Fields | None, files: Files | None) -> tuple[bytes | None, str | None]:
    if files:
        return multipart_body(fields or [], files)
    if fields is not None:
        return urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"
    return None, None


def xsrf_of(page: bytes) -> str:
    found = re.search(rb'name="_xsrf" value="([^"]+)"', page)
    assert found, "the page has no xsrf token"
    return html.unescape(found.group(1).decode())


class Browser:
    """A cookie session that logs in through the hub's login form, as a browser without script does."""

    def __init__(self, stack: ConsoleStack, user: str) -> None:
        self.stack = stack
        self.jar = CookieJar()
        self.follow = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.stay = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)
        with self.follow.open(stack.service_url, timeout=60) as answer:
            login_url, login_page = answer.geturl(), answer.read()
        assert "/hub/login" in login_url, login_url
        fields = {"username": user, "password": "any password", "_xsrf": xsrf_of(login_page)}
        request = urllib.request.Request(login_url, data=urllib.parse.urlencode(fields).encode())
        with self.follow.open(request, timeout=60) as answer:
            assert answer.geturl().startswith(stack.service_url), answer.geturl()

    def get(self, path: str) -> Response:
        return _send(self.stay, urllib.request.Request(self.stack.service_url + path))

    def post(self, path: str, fields: Fields, files: Files | None = None) -> Response:
        data, content_type = _body(fields, files)
        request = urllib.request.Request(self.stack.service_url + path, data=data, method="POST")
        request.add_header("Content-Type", content_type or "")
        return _send(self.stay, request)


@dataclass
class ConsoleStack:
    """The hub, the console behind its proxy, the enclave, and a console token per user."""

    public_url: str
    api_url: str
    admin_token: str
    paths: Paths
    database_url: str
    tokens: dict[str, str] = field(default_factory=dict)
    service: Any = None

    @property
    def service_url(self) -> str:
        return f"{self.public_url}{SERVICE_PREFIX}"

    @contextmanager
    def session(self) -> Iterator[Session]:
        with db.session_scope(db.connect(self.database_url)) as session:
            yield session

    def request(
        self,
        method: str,
        path: str,
        user: str | None,
        fields: Fields | None = None,
        files: Files | None = None,
    ) -> Response:
        """A request with the user's hub token (no cookie, so no xsrf token is needed); redirects are
        returned, not followed."""
        data, content_type = _body(fields, files)
        request = urllib.request.Request(self.service_url + path, data=data, method=method)
        if user:
            request.add_header("Authorization", f"token {self.tokens[user]}")
        if content_type:
            request.add_header("Content-Type", content_type)
        return _send(urllib.request.build_opener(_NoRedirect), request)

    def get(self, path: str, user: str | None) -> Response:
        return self.request("GET", path, user)

    def post(
        self, path: str, user: str | None, fields: Fields | None = None, files: Files | None = None
    ) -> Response:
        return self.request("POST", path, user, fields if fields is not None else [], files)

    def browser(self, user: str) -> Browser:
        return Browser(self, user)


class RunningConsole(RunningService):
    """The console on its own event loop in a thread."""

    def __init__(self, **settings: Any) -> None:
        from enclave.console.app import ConsoleApp

        super().__init__(ConsoleApp(**settings), "console")


def seed(paths: Paths, database_url: str) -> None:
    """Two datasets in the catalog and the staff's platform roles."""
    data = paths.home.parent / "data"
    specs = [
        write_dataset(data, "patients", patients_table(60), PATIENT_COLUMNS),
        write_dataset(data, "visits", visits_table(60), VISIT_COLUMNS),
    ]
    with db.session_scope(db.connect(database_url)) as session:
        for spec in specs:
            catalog.register(session, paths, spec, actor="steward")
        for user, held in STAFF.items():
            for role in held:
                roles.grant(session, user, role, actor="test")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    root = tmp_path_factory.mktemp("console")
    for url in state_database(request, root / "state.db"):
        yield from _stack(root, url)


def _stack(root: Path, url: str) -> Iterator[ConsoleStack]:
    db.migrate(url)
    paths = Paths(root / "home")
    paths.home.mkdir()
    from enclave import audit

    audit.use_vault(url, paths)
    seed(paths, url)

    with (
        hub_with_service(root, HUB_CONFIG, SERVICE) as hub,
        hub.serving(RunningConsole, paths.home, url, "api/me") as service,
    ):
        stack = ConsoleStack(hub.public_url, hub.api_url, hub.admin_token, paths, url, service=service)
        stack.tokens.update(hub.user_tokens(STAFF, "console tests"))
        yield stack


# ---- moving an application through the domain, to the state a test starts from ---------------------

STEPS = ("draft", "office_review", "committee_review", "approved", "dua")


def advance(stack: ConsoleStack, to: str, *, applicant: str = "pia") -> str:
    """A new application taken by the domain modules to ``to`` (one of ``STEPS``); returns its id."""
    from enclave import agreements
    from enclave.applications import form, office, service, voting
    from enclave.console import forms

    args: dict[str, list[str]] = {}
    for name, value in form_fields(applicant):
        args.setdefault(name, []).append(value)
    values = forms.values_from_arguments(lambda name: args.get(name, []), ["patients", "visits"])
    paths = stack.paths
    with stack.session() as session:
        app = service.file_application(
            session, paths, form.parse_form(forms.form_data(values)), applicant=applicant
        )
        app_id = app.id
        service.attach(
            session,
            paths,
            app_id,
            kind="ethics_approval",
            filename="ethics.pdf",
            data=ETHICS_PDF,
            user=applicant,
        )
        service.attach(
            session,
            paths,
            app_id,
            kind="consent_waiver",
            filename="waiver.pdf",
            data=ETHICS_PDF,
            user=applicant,
        )
    steps = STEPS[1 : STEPS.index(to) + 1]
    for step in steps:
        with stack.session() as session:
            if step == "office_review":
                service.submit(session, paths, app_id, user=applicant)
            elif step == "committee_review":
                office.review(
                    session,
                    paths,
                    app_id,
                    reviewer="oscar",
                    outcome="forward",
                    checklist=dict.fromkeys(office.CHECKLIST, True),
                    scorecard=dict.fromkeys(office.SCORECARD, 4),
                    comment="complete",
                )
            elif step == "approved":
                for member in COMMITTEE:
                    voting.vote(session, paths, app_id, member=member, choice="approve")
                    voting.countersign(session, paths, app_id, member=member)
            elif step == "dua":
                start, end = period()
                agreements.record_dua(
                    session,
                    paths,
                    app_id,
                    kind="esign",
                    start=date.fromisoformat(start),
                    end=date.fromisoformat(end),
                    actor=applicant,
                    signer=applicant,
                )
    return app_id
