"""Claiming queued runs: oldest first, one running run per analyst and project, ``host_cap`` on the
host, and safe when workers race (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from enclave.config import Paths
from enclave.db.models import AuditEvent, Run
from enclave.runs import queue, service
from enclave.runs.states import RunActor, RunState, move
from tests.export_review.factories import ExportEnv, make_project
from tests.runs.factories import TABLE_NOTEBOOK, fake_prepared

P1 = "cardio-2026"
P2 = "onco-2026"


@pytest.fixture
def env(sessions: sessionmaker[Session], paths: Paths, tmp_path) -> ExportEnv:
    (tmp_path / "work").mkdir()
    environment = ExportEnv(sessions, paths, tmp_path / "work")
    for project in (P1, P2):
        make_project(environment, project_id=project, extra_members=[("carl", "analyst")])
        fake_prepared(paths, project)
    return environment


def submit(env: ExportEnv, user: str, project: str = P1) -> str:
    with env.session() as s:
        run = service.submit(
            s,
            env.paths,
            project=project,
            user=user,
            notebook=TABLE_NOTEBOOK,
            notebook_name="table.ipynb",
            parameters={"scale": 1},
            actor=user,
        )
        return run.id


def claim(env: ExportEnv, host_cap: int = 10) -> str | None:
    with env.session() as s:
        run = queue.claim(s, host_cap=host_cap)
        return run.id if run is not None else None


def finish(env: ExportEnv, run_id: str) -> None:
    with env.session() as s:
        move(s, service.get_run(s, run_id), RunState.SUCCEEDED, RunActor.WORKER, by="worker")


def states(env: ExportEnv) -> dict[str, str]:
    with env.session() as s:
        return {run.id: run.state for run in s.scalars(select(Run))}


def test_oldest_first_and_one_running_run_per_analyst_and_project(env: ExportEnv) -> None:
    bob_1, bob_2, alice_1, bob_other = (
        submit(env, "bob"),
        submit(env, "bob"),
        submit(env, "alice"),
        submit(env, "bob", P2),
    )
    assert claim(env) == bob_1
    assert claim(env) == alice_1  # bob's second run waits for his first
    assert claim(env) == bob_other  # bob in another project is another pair
    assert claim(env) is None
    finish(env, bob_1)
    assert claim(env) == bob_2
    with env.session() as s:
        run = service.get_run(s, bob_2)
        assert run.started_at is not None
        started = s.scalars(select(AuditEvent).where(AuditEvent.action == "run.start")).all()
        assert len(started) == 4 and {e.object for e in started} == {
            f"run:{i}" for i in (bob_1, bob_2, alice_1, bob_other)
        }


def test_the_host_cap_holds(env: ExportEnv) -> None:
    first, second, third = submit(env, "bob"), submit(env, "alice"), submit(env, "carl")
    assert [claim(env, host_cap=2), claim(env, host_cap=2), claim(env, host_cap=2)] == [first, second, None]
    finish(env, first)
    assert claim(env, host_cap=2) == third
    assert claim(env, host_cap=0) is None


def test_cancelled_and_cancel_requested_runs_are_never_claimed(env: ExportEnv) -> None:
    cancelled, asked, waiting = submit(env, "bob"), submit(env, "alice"), submit(env, "carl")
    with env.session() as s:
        service.cancel(s, cancelled, actor="bob")
        service.get_run(s, asked).cancel_requested = True
    assert claim(env) == waiting
    assert claim(env) is None
    assert states(env)[cancelled] == "cancelled" and states(env)[asked] == "queued"


def test_a_run_cancelled_after_it_was_read_is_not_started(env: ExportEnv, monkeypatch) -> None:
    """The compare-and-set: the worker's list is stale, the row is not."""
    stale, other = submit(env, "bob"), submit(env, "alice")
    real = queue.next_candidates

    def read_then_cancel(session: Session, limit: int = 50, run_id: str | None = None) -> list[Run]:
        found = real(session, limit, run_id)
        # a row changed behind the objects already read (as another connection's cancel would)
        session.execute(Run.__table__.update().where(Run.id == stale).values(state="cancelled"))
        return found

    monkeypatch.setattr(queue, "next_candidates", read_then_cancel)
    assert claim(env) == other
    assert states(env) == {stale: "cancelled", other: "running"}


@pytest.mark.parametrize("workers", [6])
def test_racing_workers_never_pass_the_caps(env: ExportEnv, monkeypatch, workers: int) -> None:
    """Workers claim at the same moment, each counting the running runs slowly: without the queue's
    lock each would see room and both bob's runs, or more than ``host_cap``, would start."""
    runs = [submit(env, user) for user in ("bob", "bob", "alice", "alice", "carl")]
    runs.append(submit(env, "bob", P2))
    slow_count = queue.running_count

    def counted_slowly(session: Session) -> int:
        found = slow_count(session)
        time.sleep(0.3)
        return found

    monkeypatch.setattr(queue, "running_count", counted_slowly)
    start = threading.Barrier(workers)
    claimed: list[str | None] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            claimed.append(claim(env, host_cap=3))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    got = [c for c in claimed if c is not None]
    assert len(got) == 3 and len(set(got)) == 3, claimed
    with env.session() as s:
        running = list(s.scalars(select(Run).where(Run.state == "running")))
        assert sorted(r.id for r in running) == sorted(got)
        assert len({(r.project_id, r.user) for r in running}) == 3
        assert s.query(AuditEvent).filter(AuditEvent.action == "run.start").count() == 3


def test_claiming_one_named_run_keeps_the_caps(env: ExportEnv) -> None:
    """``submit --wait`` claims its own run, under the same caps and lock."""
    first, second, alice = submit(env, "bob"), submit(env, "bob"), submit(env, "alice")
    with env.session() as s:
        assert queue.claim(s, host_cap=10, run_id=second).id == second  # type: ignore[union-attr]
    with env.session() as s:
        assert queue.claim(s, host_cap=10, run_id=first) is None  # bob already runs one here
        assert queue.claim(s, host_cap=1, run_id=alice) is None  # the host is full
    assert states(env) == {first: "queued", second: "running", alice: "queued"}
