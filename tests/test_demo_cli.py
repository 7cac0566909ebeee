"""``make demo-cli`` goes the whole way (issue 11, item 11): ``scripts/demo.sh`` grants the demo staff
their roles, files the demo application as the PI, takes it through the Office's pre-review and the
committee's countersigned votes (the security administrator's too, for the level-4 patient register),
records the PI's e-signed DUA and provisions ``demo-cardio`` from the approved application; the
check ``make demo-check`` runs first (``demo_check.check_governance``) passes on it, and fails on a
project written by hand."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("demo_check", REPO / "scripts" / "demo_check.py")
assert _spec and _spec.loader
demo_check = importlib.util.module_from_spec(_spec)
sys.modules["demo_check"] = demo_check
_spec.loader.exec_module(demo_check)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> demo_check.Story:
    root = tmp_path_factory.mktemp("demo-cli")
    try:
        home = demo_check.run_demo_setup(root, patients=600)
    except demo_check.CheckFailed as error:
        pytest.fail(str(error))
    return demo_check.Story(hub_url="http://127.0.0.1:9", admin_token="", home=home, say=lambda _: None)


def cli_json(story: demo_check.Story, *args: str) -> dict:
    return json.loads(demo_check.enclave_cli(story, *args, "--json"))


def test_the_demo_provisions_its_project_from_the_approved_application(story: demo_check.Story) -> None:
    governance = demo_check.check_governance(story)
    assert governance["trail"][0] == "application.file" and governance["trail"][-1] == "dua.record"
    assert governance["dua"].startswith("esign by alice")
    project = cli_json(story, "project", "show", "demo-cardio")
    assert project["application"] == governance["application"]
    assert project["pi"] == "alice" and project["state"] == "active"
    # The same people as the story through the hub: bob analyses, carol, dave and erin review exports.
    assert project["spec"]["analysts"] == ["alice", "bob"]
    assert project["spec"]["committee"] == ["carol", "dave", "erin"]
    application = cli_json(story, "application", "show", governance["application"], "--user", story.auditor)
    assert application["level"] == 4 and application["tally"]["chain"] == {"security_admin": True}
    assert {a["kind"] for a in application["attachments"]} == {"ethics_approval", "consent_waiver"}


def test_the_demo_staff_hold_their_roles_and_no_more(story: demo_check.Story) -> None:
    held = cli_json(story, "account", "role", "list")
    assert held == {
        "office": ["olivia"],
        "committee": ["carol", "dave", "erin"],
        "steward": ["sam"],
        "security_admin": ["sean"],
        "security_auditor": ["audrey"],  # the demo's try to make her a steward too was refused
        "system_admin": [],
        "deid_operator": [],
    }


def test_the_check_fails_on_a_project_written_by_hand(story: demo_check.Story, tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "examples" / "demo-project.yaml").read_text())
    spec["id"] = "demo-by-hand"
    spec["period"] = json.loads(demo_check.enclave_cli(story, "project", "show", "demo-cardio", "--json"))[
        "period"
    ]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    demo_check.enclave_cli(
        story,
        "project",
        "create",
        str(tmp_path / "spec.yaml"),
        "--no-prepare",
        "--without-application",
        "test",
    )
    by_hand = demo_check.Story(hub_url=story.hub_url, admin_token="", home=story.home, project="demo-by-hand")
    with pytest.raises(demo_check.CheckFailed, match="not provisioned from an application"):
        demo_check.check_governance(by_hand)
