"""The demo's whole story through a real hub, real Docker workspaces and the hub-managed gateway and
export-review services (issue 7, items 3 and 4), after the governance that leads to the project
(issue 11): the same steps as ``make demo-check`` (``scripts/demo_check.py``), on a small demo cohort
in a home of its own."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator

import pytest

from enclave.config import Paths
from tests.e2e.conftest import REPO, Hub, free_port, launch_hub

_spec = importlib.util.spec_from_file_location("demo_check", REPO / "scripts" / "demo_check.py")
assert _spec and _spec.loader
demo_check = importlib.util.module_from_spec(_spec)
sys.modules["demo_check"] = demo_check
_spec.loader.exec_module(demo_check)

STEWARD = "sam"


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """The demo's CLI steps (scripts/demo.sh up to the provisioned project) on 2,000 patients: the
    roles, the data-use application from filing to approval, the DUA, the project provisioned from
    the application (its period starts today)."""
    root = tmp_path_factory.mktemp("demo-story")
    try:
        home = demo_check.run_demo_setup(root, patients=2000)
    except demo_check.CheckFailed as error:
        pytest.fail(str(error))
    os.chmod(home, 0o755)
    (home / "export-review.yaml").write_text(f"stewards: [{STEWARD}]\n")
    return Paths(home)


@pytest.fixture(scope="module")
def story_hub(
    docker_ready: None, demo_home: Paths, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hub]:
    with launch_hub(
        demo_home,
        tmp_path_factory.mktemp("story-hub"),
        ENCLAVE_HUB_SERVICES="gateway,export-review,runs",
        ENCLAVE_GATEWAY_PORT=str(free_port()),
        ENCLAVE_EXPORT_REVIEW_PORT=str(free_port()),
        ENCLAVE_RUNS_PORT=str(free_port()),
    ) as hub:
        yield hub


def test_the_demo_story_through_the_hub(story_hub: Hub, demo_home: Paths) -> None:
    lines: list[str] = []
    story = demo_check.Story(
        hub_url=story_hub.url,
        admin_token=story_hub.token,
        home=demo_home.home,
        releaser=STEWARD,
        say=lines.append,
    )
    try:
        result = demo_check.run_story(story)
    except demo_check.CheckFailed as error:
        pytest.fail(f"{error}\nsteps so far: {lines}\nhub log:\n{story_hub.log.read_text()[-4000:]}")

    # The project came from the approved application, its DUA recorded (issue 11): checked first.
    assert result["governance"]["trail"][0] == "application.file"
    assert result["governance"]["trail"][-1] == "dua.record"

    # The table came from the real data through the gateway: every cell has at least k persons.
    header, *rows = result["rows"]
    assert header == ["department", "patients", "mean_cost"]
    assert rows and all(int(float(row[1])) >= 5 for row in rows)
    assert sorted(result["files"]) == ["files/table1.csv", "manifest.json"]
    # The steward's approved template ran as a batch job from the workspace (issue 12).
    assert [o["name"] for o in result["batch"]["outputs"]] == ["patients_by_sex.csv"]
    assert result["batch"]["template"] == "patients-by-group" and result["batch"]["queries"]
    # The workspace is the one the spawner locked down, found by its labels.
    assert story_hub.server("bob", "demo-cardio")["ready"]

    # Someone outside the project cannot download the released file, even with a valid token.
    refused = demo_check.download(story, result["request"], "carol")
    assert refused.status == 403, refused.body

    # The download and the refusal are both in the chain, which still verifies.
    assert "intact" in demo_check.verify_audit(story)
