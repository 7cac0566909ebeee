"""``release(progress=...)`` (issue 16, item 3): each file verified, then each file published after the
commit; the CLI draws it."""

from __future__ import annotations

from export_review import release as releasing
from export_review.workflow import ExportState
from tests.export_review.factories import GOOD_CSV, ExportEnv, make_request


def test_release_reports_each_file_verified_then_published(env: ExportEnv, project: str) -> None:
    request_id = make_request(env, ExportState.APPROVED, files={"a.csv": GOOD_CSV, "b.csv": GOOD_CSV})
    steps: list[tuple[str, int, int]] = []
    with env.session() as s:
        releasing.release(
            s,
            env.paths,
            request_id,
            user="rev1",
            outbox=env.box(),
            stewards=env.settings.stewards,
            committee=env.settings.committee,
            progress=lambda step, done, total: steps.append((step, done, total)),
        )
        assert steps == [("verifying", 0, 2), ("verifying", 1, 2)], "nothing is published before the commit"
    assert steps[2:] == [("publishing", 0, 2), ("publishing", 1, 2), ("publishing", 2, 2)]
    assert env.state(request_id) == ExportState.RELEASED.value
