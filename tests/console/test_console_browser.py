"""One application from filing to a provisioned project, in real headless Chromium (Debian's) against
the real enclave hub config: the enclave's own login (local accounts), configurable-http-proxy, and
the console started by the hub as its managed service ``console`` (``enclave console serve``).

The PI files the application through the form with the ethics approval attached and submits it; the
Office officer forwards it with the full checklist and scorecard; three committee members approve and
countersign; the steward records the signed DUA and provisions the project. Then the project exists,
made from the application, and the PI may start its workspace: with Docker and the analyst image the
server is started through the hub's API, otherwise the hub's spawn policy is asked and the Docker
step is skipped, saying why. A screenshot of every page is saved to $ENCLAVE_TEST_ARTEFACTS (default
/tmp/enclave-test-artefacts)/console-screenshots, and axe-core checks every such page for serious
accessibility faults.

Like every e2e test it needs root (``tests/e2e/conftest.py`` skips the module otherwise).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest

from enclave import catalog, db, roles, users
from enclave.config import Paths
from enclave.roles import Role
from tests.e2e.conftest import Hub, docker_ready, free_port, launch_hub, remove_test_objects  # noqa: F401
from tests.harness.browser import (
    ARTEFACTS,
    accessibility_violations,
    browser,  # noqa: F401 (the Chromium fixture)
    describe,
    hub_login,
    save_screenshot,
)
from tests.harness.services import wait_for_route

PASSWORD = "Console-Test-Passw0rd!"
ACCOUNTS: dict[str, tuple[Role, ...]] = {
    "pia": (),  # the PI, and the analyst who starts the workspace
    "bob": (),  # a second analyst on the team
    "oscar": (Role.OFFICE,),
    "cm1": (Role.COMMITTEE,),
    "cm2": (Role.COMMITTEE,),
    "cm3": (Role.COMMITTEE,),
    "stella": (Role.STEWARD,),
    "carol": (),  # on no team
}
PROJECT = "console-demo"
ETHICS_PDF = b"%PDF-1.4\n% ethics committee approval EC-2026-031\n%%EOF\n"
DUA_PDF = b"%PDF-1.4\n% data-use agreement signed by pia and the data office\n%%EOF\n"
SHOTS = ARTEFACTS / "console-screenshots"


@dataclass
class Story:
    hub: Hub
    paths: Paths
    files: Path
    app_id: str = ""
    shots: list[Path] = field(default_factory=list)

    @property
    def console(self) -> str:
        return f"{self.hub.url}/services/console/"

    def shot(self, page, name: str) -> None:  # type: ignore[no-untyped-def]
        """A screenshot of the page, and axe-core's check that it has no serious accessibility fault."""
        self.shots.append(save_screenshot(page, SHOTS.name, f"{len(self.shots) + 1:02d}-{name}"))
        violations = accessibility_violations(page)
        assert not violations, f"{name} ({page.url}):\n{describe(violations)}"


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """An initialised enclave with the demo datasets registered and the accounts with their roles,
    and the real hub with the console as its one managed service."""
    from enclave.demo_data import generate

    root = tmp_path_factory.mktemp("console-story")
    home = root / "home"
    home.mkdir()
    os.chmod(home, 0o755)
    paths = Paths(home)
    url = f"sqlite:///{paths.state_db}"
    db.migrate(url)
    generate(root / "demo", 300, 7)
    with db.session_scope(db.connect(url)) as session:
        for name in ("patients", "visits", "labs", "prescriptions"):
            catalog.register(session, paths, root / "demo" / f"{name}.yaml", actor="steward")
        for user, held in ACCOUNTS.items():
            users.add_user(session, user, PASSWORD, actor="steward")
            for role in held:
                roles.grant(session, user, role, actor="steward")
    files = root / "files"
    files.mkdir()
    (files / "ethics-approval.pdf").write_bytes(ETHICS_PDF)
    (files / "dua-signed.pdf").write_bytes(DUA_PDF)
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    settings = {"ENCLAVE_HUB_SERVICES": "console", "ENCLAVE_CONSOLE_PORT": str(free_port())}
    (root / "hub").mkdir()
    with launch_hub(paths, root / "hub", **settings) as hub:
        wait_for_route(f"{hub.url}/services/console/api/me")
        yield Story(hub, paths, files)


def _login(story: Story, chromium, user: str):  # type: ignore[no-untyped-def]
    """A fresh browser context logged in as ``user`` through the hub's login form."""
    context = chromium.new_context(locale="en-GB")
    page = context.new_page()
    hub_login(page, story.console, user, PASSWORD)
    assert page.inner_text("#who") == user
    return page


def _open_from_queue(page, nav: str, app_id: str) -> None:  # type: ignore[no-untyped-def]
    page.click(nav)
    page.click(f"tr[data-application='{app_id}'] a.application-link")


def test_an_application_from_filing_to_a_provisioned_project(story: Story, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from enclave.applications import office

    start = (date.today() - timedelta(days=1)).isoformat()
    end = (date.today() + timedelta(days=365)).isoformat()

    # The PI files the application through the form, with the ethics approval, and submits it.
    page = _login(story, browser, "pia")
    assert page.locator("#nav-office, #nav-committee, #nav-steward, #nav-audit").count() == 0
    story.shot(page, "pi-my-applications")
    page.click("#nav-new")
    page.fill("input[name=title]", "Readmissions after cardiology visits")
    page.fill("textarea[name=purpose]", "Describe 30-day readmissions after a cardiology visit, 2018-2025")
    page.select_option("select[name=purpose_category]", "research")
    page.select_option("select[name=track]", "in_house")
    page.fill("input[name=organisation]", "West China Hospital")
    for column in ("pid", "visit_date", "department", "dx", "cost"):
        page.check(f"input[name='ds.visits.columns'][value='{column}']")
    for column in ("pid", "rx_date", "atc_code"):
        page.check(f"input[name='ds.prescriptions.columns'][value='{column}']")
    assert page.input_value("input[name=team_user] >> nth=0") == "pia"
    page.fill("input[name=team_user] >> nth=1", "bob")
    page.select_option("select[name=team_role] >> nth=1", "analyst")
    page.fill("input[name=period_start]", start)
    page.fill("input[name=period_end]", end)
    page.select_option("select[name=legal_basis]", "limited_data_set")
    page.fill("input[name=ethics_ref]", "EC-2026-031")
    page.set_input_files("input[name='attachment.ethics_approval']", str(story.files / "ethics-approval.pdf"))
    story.shot(page, "pi-new-application")
    page.click("#submit-application")
    page.wait_for_selector("#state[data-state=office_review]")
    story.app_id = app_id = page.url.rstrip("/").split("/")[-1].split("?")[0]
    assert "ethics-approval.pdf" in page.inner_text("#attachment-list")
    story.shot(page, "pi-submitted")
    page.context.close()

    # The Office officer forwards it with the full checklist and scorecard.
    page = _login(story, browser, "oscar")
    _open_from_queue(page, "#nav-office", app_id)
    assert "ethics-approval.pdf" in page.inner_text("#attachment-list")
    assert page.locator("#no-overlap").count() == 1  # the applicant's history: nothing asked for again
    for item in office.CHECKLIST:
        page.check(f"input[name='check.{item}']")
    for dimension in office.SCORECARD:
        page.select_option(f"select[name='score.{dimension}']", "4")
    page.fill("textarea[name=comment]", "Minimal columns; ethics approval on file.")
    story.shot(page, "office-pre-review")
    page.click("#forward")
    page.wait_for_url(f"{story.console}office**")
    assert page.locator(f"tr[data-application='{app_id}']").count() == 0
    page.context.close()

    # Three committee members approve and countersign.
    for number, member in enumerate(("cm1", "cm2", "cm3")):
        page = _login(story, browser, member)
        _open_from_queue(page, "#nav-committee", app_id)
        assert page.inner_text("#needed") == "3"
        assert page.inner_text("#still-needed") == str(3 - number)
        if number == 0:
            story.shot(page, "committee-vote")
        page.click("#approve-countersign")
        page.wait_for_selector("#my-choice")
        if number == 2:
            assert page.get_attribute("#state", "data-state") == "approved"
            story.shot(page, "committee-approved")
        page.context.close()

    # The PI is asked to sign the DUA; the steward records the signed PDF instead, then provisions.
    page = _login(story, browser, "pia")
    page.goto(f"{story.console}applications/{app_id}")
    assert page.locator("#sign-dua").count() == 1
    story.shot(page, "pi-sign-the-dua")
    page.context.close()

    page = _login(story, browser, "stella")
    _open_from_queue(page, "#nav-steward", app_id)
    page.set_input_files("input[name=pdf]", str(story.files / "dua-signed.pdf"))
    story.shot(page, "steward-record-dua")
    page.click("#record-dua")
    page.wait_for_selector("#dua-current")
    page.fill("input[name=project_id]", PROJECT)
    story.shot(page, "steward-provision")
    page.click("#provision")
    page.wait_for_selector(f"tr[data-project='{PROJECT}']")
    assert page.get_attribute(f"tr[data-project='{PROJECT}'] td.state", "data-state") == "active"
    story.shot(page, "steward-projects")
    page.goto(f"{story.console}projects?lang=zh")
    assert "项目" in page.inner_text("h1") and "暂停" in page.inner_text("#projects")
    page.context.close()

    from enclave import projects

    with db.session_scope(db.connect(f"sqlite:///{story.paths.state_db}")) as session:
        project = projects.get(session, PROJECT)
        assert project.application_id == app_id and project.state == "active"
        granted = {
            name: set(columns) for name, columns in projects.current_spec(session, PROJECT).datasets.items()
        }
        assert granted == {
            "visits": {"pid", "visit_date", "department", "dx", "cost"},
            "prescriptions": {"pid", "rx_date", "atc_code"},
        }

    # The PI sees the project and the link to its workspace, in both languages.
    page = _login(story, browser, "pia")
    page.goto(f"{story.console}applications/{app_id}")
    assert page.inner_text("#project-id") == PROJECT
    assert page.get_attribute("#start-workspace", "href") == f"/hub/spawn/pia/{PROJECT}"
    story.shot(page, "pi-provisioned")
    page.goto(f"{story.console}applications/{app_id}?lang=zh")
    assert "启动项目工作空间" in page.inner_text("#project") and "已批准" in page.inner_text("#state")
    story.shot(page, "pi-provisioned-zh")
    page.context.close()
    assert all(shot.stat().st_size > 0 for shot in story.shots)


def test_the_hub_lets_the_analyst_start_the_workspace(story: Story, request: pytest.FixtureRequest) -> None:
    """The hub's spawn policy for the provisioned project; the workspace itself with Docker."""
    from hub_config.errors import WorkspaceRefused
    from hub_config.workspace_policy import check_access

    if not story.app_id:
        pytest.skip("the application was not provisioned (see the test before)")
    sessions = db.connect(f"sqlite:///{story.paths.state_db}")
    assert check_access(lambda: db.session_scope(sessions), PROJECT, "pia") == "aggregate"
    assert check_access(lambda: db.session_scope(sessions), PROJECT, "bob") == "aggregate"
    with pytest.raises(WorkspaceRefused):
        check_access(lambda: db.session_scope(sessions), PROJECT, "carol")

    if shutil.which("docker") is None:
        pytest.skip("Docker is not installed: the hub's policy allows pia's workspace; not started")
    request.getfixturevalue("docker_ready")  # builds the images as the e2e tests do (cached layers)
    try:
        container = story.hub.start("pia", PROJECT)
        server = story.hub.server("pia", PROJECT)
        assert server and server["ready"], server
        assert container
    finally:
        story.hub.stop("pia", PROJECT)
        remove_test_objects()
