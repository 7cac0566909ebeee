"""Exports follow the project's lifecycle (R-LIFE-3, R-LIFE-9, R-LIFE-10, T6): outside the period,
or while suspended, nothing can be submitted, voted on, released or downloaded. SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from enclave import lifecycle
from enclave.errors import Forbidden
from export_review import release as releasing
from export_review import submission, voting
from export_review.workflow import ExportState
from tests.export_review.factories import (
    GOOD_CSV,
    PROJECT,
    ExportEnv,
    make_project,
    make_request,
)

END = date(2027, 12, 31)  # make_project's period: 2026-01-01 .. 2027-12-31
AFTER = date(2028, 1, 1)


def submit_on(env: ExportEnv, today: date | None) -> None:
    with env.session() as s:
        submission.submit(
            s,
            env.paths,
            project_id=PROJECT,
            requester="bob",
            justification="Table 1 of the paper",
            files=[env.write("table.csv", GOOD_CSV)],
            settings=env.settings,
            key_space=lambda _project: env.key_space,
            today=today,
        )


def vote_on(env: ExportEnv, request_id: str, today: date | None) -> None:
    with env.session() as s:
        voting.vote(
            s,
            env.paths,
            request_id,
            user="rev1",
            choice="approve",
            settings=env.settings,
            override="checked by hand",
            today=today,
        )


def release_on(env: ExportEnv, request_id: str, today: date | None) -> None:
    with env.session() as s:
        releasing.release(
            s,
            env.paths,
            request_id,
            user="rev1",
            outbox=env.box(),
            stewards=env.settings.stewards,
            committee=env.settings.committee,
            today=today,
        )


def download_on(env: ExportEnv, request_id: str, today: date | None, out: Path) -> dict:
    with env.session() as s:
        return releasing.download(
            s,
            env.paths,
            request_id,
            user="bob",
            out_dir=out,
            outbox=env.box(),
            committee=env.settings.committee,
            today=today,
        )


def refused(action: Callable[[], object]) -> str:
    with pytest.raises(Forbidden) as info:
        action()
    assert info.value.message and info.value.message_zh
    return info.value.code


@pytest.fixture
def requests(any_env: ExportEnv) -> dict[ExportState, str]:
    """One request waiting for votes, one approved, one released, on an active project."""
    make_project(any_env)
    return {
        state: make_request(any_env, state)
        for state in (ExportState.IN_REVIEW, ExportState.APPROVED, ExportState.RELEASED)
    }


def test_an_ended_project_freezes_every_export_step_before_any_sweep(
    any_env: ExportEnv, requests: dict[ExportState, str], tmp_path: Path
) -> None:
    env = any_env
    assert refused(lambda: submit_on(env, AFTER)) == "project_ended"
    assert refused(lambda: vote_on(env, requests[ExportState.IN_REVIEW], AFTER)) == "project_ended"
    assert refused(lambda: release_on(env, requests[ExportState.APPROVED], AFTER)) == "project_ended"
    released = requests[ExportState.RELEASED]
    assert refused(lambda: download_on(env, released, AFTER, tmp_path / "late")) == "project_ended"
    assert not (tmp_path / "late").exists()
    # Nothing changed, and on the last day every step still works.
    assert env.state(requests[ExportState.APPROVED]) == ExportState.APPROVED
    submit_on(env, END)
    release_on(env, requests[ExportState.APPROVED], END)
    assert download_on(env, released, END, tmp_path / "in-time")["files"]


def test_a_suspended_project_freezes_submit_vote_release_and_download(
    any_env: ExportEnv, requests: dict[ExportState, str], tmp_path: Path
) -> None:
    env = any_env
    revoked: list[str] = []
    with env.session() as s:
        lifecycle.suspend(s, PROJECT, actor="steward", reason="breach suspected", hooks=[revoked.append])
    assert revoked == [PROJECT]
    assert refused(lambda: submit_on(env, None)) == "export_frozen"
    assert refused(lambda: vote_on(env, requests[ExportState.IN_REVIEW], None)) == "export_frozen"
    assert refused(lambda: release_on(env, requests[ExportState.APPROVED], None)) == "export_frozen"
    released = requests[ExportState.RELEASED]
    assert refused(lambda: download_on(env, released, None, tmp_path / "out")) == "export_frozen"
    assert env.state(requests[ExportState.IN_REVIEW]) == ExportState.IN_REVIEW
    assert env.state(requests[ExportState.APPROVED]) == ExportState.APPROVED


def test_an_expired_project_freezes_downloads_too(
    any_env: ExportEnv, requests: dict[ExportState, str], tmp_path: Path
) -> None:
    with any_env.session() as s:
        lifecycle.expire(s, PROJECT, actor="steward", reason="ended early")
    released = requests[ExportState.RELEASED]
    assert refused(lambda: download_on(any_env, released, None, tmp_path / "out")) == "export_frozen"
