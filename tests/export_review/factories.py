"""Projects and export requests for tests, reaching every state through the real workflow."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from enclave import audit
from enclave.config import Paths
from enclave.db import session_scope
from enclave.db.models import ExportRequest, Project, ProjectMember, ProjectSpecVersion
from export_review import release as releasing
from export_review import submission, voting
from export_review.outbox import LocalOutbox, Outbox
from export_review.policy import ReviewSettings
from export_review.workflow import ExportState
from tests.harness.factories import project_spec

PROJECT = "cardio-2026"
PSEUDONYMS = frozenset(f"p_{i:012x}" for i in range(100))
GOOD_CSV = "dx,n\nI10,25\nE11,40\nJ18,15\n"


def committee_names(size: int) -> list[str]:
    return [f"rev{i}" for i in range(1, size + 1)]


@dataclass
class ExportEnv:
    """A state database, an enclave home, and the deployment settings, for one test."""

    sessions: sessionmaker[Session]
    paths: Paths
    work: Path
    settings: ReviewSettings = field(default_factory=ReviewSettings)
    key_space: frozenset[str] | None = PSEUDONYMS
    outbox: Outbox | None = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.sessions) as s:
            yield s

    def box(self) -> Outbox:
        return self.outbox or LocalOutbox(self.paths.outbox)

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    def request(self, request_id: str) -> ExportRequest:
        with self.session() as s:
            request = s.get(ExportRequest, request_id)
            assert request is not None
            s.expunge(request)
            return request

    def state(self, request_id: str) -> str:
        return self.request(request_id).state

    def audit_actions(self, request_id: str) -> list[str]:
        with self.session() as s:
            return [e.action for e in audit.tail(s, limit=1000) if e.object == f"export:{request_id}"]


def make_project(
    env: ExportEnv,
    *,
    project_id: str = PROJECT,
    committee: int = 3,
    cross_border: bool = False,
    state: str = "active",
    min_cell_count: int = 5,
    extra_members: Sequence[tuple[str, str]] = (),
) -> str:
    """Rows for an active project: PI alice, analysts alice and bob, reviewers rev1..revN."""
    spec = project_spec(
        id=project_id,
        committee=committee_names(committee),
        cross_border=cross_border,
        min_cell_count=min_cell_count,
    )
    now = audit.now_iso()
    with env.session() as s:
        s.add(
            Project(
                id=project_id,
                title=spec["title"],
                state=state,
                access="aggregate",
                pi=spec["pi"],
                period_start="2026-01-01",
                period_end="2027-12-31",
                current_spec_version=1,
                locked=False,
                created_at=now,
                updated_at=now,
            )
        )
        s.flush()
        s.add(
            ProjectSpecVersion(
                project_id=project_id,
                version=1,
                spec_json=json.dumps(spec),
                spec_sha256="0" * 64,
                dataset_versions_json="{}",
                created_at=now,
                created_by="steward",
            )
        )
        members = [(spec["pi"], "pi"), *((a, "analyst") for a in spec["analysts"])]
        members += [(c, "committee") for c in spec["committee"]] + list(extra_members)
        for username, role in members:
            s.add(ProjectMember(project_id=project_id, username=username, role=role))
    return project_id


def submit(
    env: ExportEnv,
    files: dict[str, str | bytes] | None = None,
    *,
    project_id: str = PROJECT,
    requester: str = "bob",
    **kwargs: Any,
) -> str:
    paths = [env.write(name, content) for name, content in (files or {"table.csv": GOOD_CSV}).items()]
    with env.session() as s:
        request = submission.submit(
            s,
            env.paths,
            project_id=project_id,
            requester=requester,
            justification=kwargs.pop("justification", "Table 1 of the paper"),
            files=paths,
            settings=env.settings,
            key_space=lambda _project: env.key_space,
            **kwargs,
        )
        return request.id


def cast(
    env: ExportEnv, request_id: str, user: str, choice: str = "approve", **kwargs: Any
) -> dict[str, Any]:
    if choice != "approve":
        kwargs.setdefault("comment", f"{choice} by {user}")
    with env.session() as s:
        return voting.vote(
            s, env.paths, request_id, user=user, choice=choice, settings=env.settings, **kwargs
        )


def release(
    env: ExportEnv, request_id: str, user: str = "rev1", outbox: Outbox | None = None
) -> dict[str, Any]:
    with env.session() as s:
        return releasing.release(
            s,
            env.paths,
            request_id,
            user=user,
            outbox=outbox or env.box(),
            stewards=env.settings.stewards,
            committee=env.settings.committee,
        )


def make_request(
    env: ExportEnv,
    state: ExportState = ExportState.IN_REVIEW,
    files: dict[str, str | bytes] | None = None,
    **kwargs: Any,
) -> str:
    """A request in ``state``, reached through submit, votes, release or withdraw."""
    request_id = submit(env, files, **kwargs)
    with env.session() as s:
        from export_review.repository import seated_committee

        reviewers = seated_committee(s, kwargs.get("project_id", PROJECT))
    choice = {
        ExportState.APPROVED: "approve",
        ExportState.RELEASED: "approve",
        ExportState.REJECTED: "reject",
        ExportState.CHANGES_REQUESTED: "changes",
    }.get(state)
    if choice:
        for reviewer in reviewers:
            if env.state(request_id) != ExportState.IN_REVIEW:
                break
            cast(env, request_id, reviewer, choice, override="checked by hand")
    if state is ExportState.RELEASED:
        release(env, request_id)
    if state is ExportState.WITHDRAWN:
        with env.session() as s:
            submission.withdraw(s, request_id, user=kwargs.get("requester", "bob"))
    assert env.state(request_id) == state.value, (env.state(request_id), state)
    return request_id
