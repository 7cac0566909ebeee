"""The batch-run worker (issue 12): claims queued runs (``queue``), runs each in its own container
through an executor (``hub_config.batch.DockerRunExecutor``), and finishes it.

One run, in order:

1. claim: queued -> running under the caps, committed before anything else happens (the slot is
   the run's from then on, and its token is valid only while it is running);
2. check again that the analyst may work in the project now (as a workspace start does) and that
   the project's data is still the version the run recorded at submit (it never runs on other data
   than its record says);
3. write ``in/notebook.ipynb`` and ``in/parameters.json`` into the run folder, issue the run's gateway
   token, start the container, record its id and image digest;
4. follow it: its output into ``log.txt`` (capped), progress from papermill's cell lines, the
   analyst's cancel request, the time limit, the analyst's access (a project that expires or is
   suspended stops its runs, as it stops its workspaces), and a runaway ``out/`` folder;
5. finish: stop it if it still runs, collect ``out/`` (``collect``: regular files only, capped),
   store the executed notebook and the final log, write the ``RunOutput`` rows, revoke the token,
   move the run to its end state with the error that ended it, remove the container and the run
   folder, then call the ``on_finished`` hooks (each in its own transaction; one failing never
   stops the others).

A worker that stops (or crashes) leaves its runs ``running``: ``recover()``, called when a worker
starts, follows again the runs whose container still exists and fails the others (``worker_lost``).
One worker per host: two workers recovering side by side would both follow the same containers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import projects
from enclave.config import Paths
from enclave.db.models import Run, RunOutput
from enclave.errors import EnclaveError
from enclave.prepare import layout
from enclave.query_service import check_analyst_access
from enclave.runs import collect, outcome, queue, service, tokens
from enclave.runs.states import RunActor, RunState, move

log = logging.getLogger(__name__)

OpenSession = Callable[[], AbstractContextManager[Session]]
OnFinished = Callable[[Session, Paths, Run], None]

LIVE_LOG_CAP = 10 * 1024 * 1024
# A run whose out/ passes these is stopped: it could never keep what it writes (collect's caps),
# and out/ is on the vault host's disk.
OUT_WATCH_FILES = 20 * collect.MAX_FILES
OUT_WATCH_BYTES = 4 * collect.MAX_TOTAL_BYTES
WATCH_EVERY = 5  # polls between checks of the analyst's access and of out/
LOST_GRACE_S = 120  # a claimed run gets this long to have a container before recover() fails it
WORKSPACE_UID = 1000


class ExitStatusLike(Protocol):
    code: int
    oom_killed: bool


class Executor(Protocol):
    """What the worker needs of a container runtime (``hub_config.batch.DockerRunExecutor``)."""

    def start(self, run: Run, run_dir: Path, token: str, *, access: str) -> str: ...
    def image_digest(self, container_id: str) -> str | None: ...
    def wait(self, container_id: str, timeout: float) -> ExitStatusLike | None: ...
    def stream_logs(self, container_id: str, log_path: Path, *, cap: int) -> threading.Thread: ...
    def stop(self, container_id: str) -> None: ...
    def remove(self, container_id: str) -> None: ...
    def exists(self, container_id: str) -> bool: ...
    def find(self, run_id: str) -> str | None: ...


@dataclass
class Ending:
    """How a run ends: its end state and the error that says why (``None`` for success)."""

    state: RunState
    error: dict[str, Any] | None = None
    exit_code: int | None = None


class Worker:
    def __init__(
        self,
        open_session: OpenSession,
        paths: Paths,
        executor: Executor,
        *,
        host_cap: int = 2,
        poll_s: float = 1.0,
        on_finished: Iterable[OnFinished] = (),
        name: str = queue.WORKER_ACTOR,
        uid: int = WORKSPACE_UID,
        memory_limit: int | None = None,
    ) -> None:
        self.open_session = open_session
        self.paths = paths
        self.executor = executor
        self.host_cap = host_cap
        self.poll_s = poll_s
        self.on_finished = list(on_finished)
        self.name = name
        self.uid = uid
        self.memory_limit = memory_limit
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._detach = threading.Event()  # set when serve() stops: followers let their runs be

    # ---- the loop -------------------------------------------------------------------------------

    def claim(self) -> str | None:
        """Claim the next run that may start (committed); its id, or ``None``."""
        with self.open_session() as session:
            run = queue.claim(session, host_cap=self.host_cap, by=self.name)
            return run.id if run is not None else None

    def run_once(self, *, wait: bool = True) -> str | None:
        """Claim one run and execute it (to its end when ``wait``, else in a thread); its id."""
        run_id = self.claim()
        if run_id is None:
            return None
        if wait:
            self.execute(run_id)
        else:
            self._spawn(run_id, self.execute)
        return run_id

    def serve(self, stop_event: threading.Event) -> None:
        """Recover, then claim and execute runs until ``stop_event`` is set. Runs still going then
        are left running; the next worker's ``recover()`` follows them again."""
        self._detach.clear()
        self.recover()
        while not stop_event.is_set():
            try:
                while self.run_once(wait=False) is not None:
                    pass
            except Exception:
                log.exception("claiming a run failed; trying again")
            stop_event.wait(self.poll_s)
        self._detach.set()
        for thread in self.threads():
            thread.join(timeout=30)

    def threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads.values())

    def _spawn(self, run_id: str, target: Callable[[str], None]) -> None:
        def body() -> None:
            try:
                target(run_id)
            finally:
                with self._lock:
                    self._threads.pop(run_id, None)

        thread = threading.Thread(target=body, name=f"run-{run_id}", daemon=True)
        with self._lock:
            self._threads[run_id] = thread
        thread.start()

    # ---- recovery -------------------------------------------------------------------------------

    def recover(self, *, wait: bool = False) -> dict[str, str]:
        """Runs left ``running`` by a worker that stopped: followed again if their container still
        exists ("adopted"), failed as ``worker_lost`` if not ("lost"). Runs this worker follows,
        and runs claimed less than ``LOST_GRACE_S`` ago that have no container yet, are left alone."""
        with self.open_session() as session:
            running = list(session.scalars(select(Run).where(Run.state == RunState.RUNNING.value)))
        found: dict[str, str] = {}
        for run in running:
            with self._lock:
                if run.id in self._threads:
                    continue
            container = run.container_id or self.executor.find(run.id)
            if container and self.executor.exists(container):
                found[run.id] = "adopted"
                if container != run.container_id:
                    self._record_container(run.id, container)
                if wait:
                    self._follow(run.id)
                else:
                    self._spawn(run.id, self._follow)
                continue
            if run.container_id is None and _age_s(run.started_at) < LOST_GRACE_S:
                continue
            found[run.id] = "lost"
            self._finish(run.id, Ending(RunState.FAILED, outcome.worker_lost()))
        if found:
            log.warning("recovered runs: %s", found)
        return found

    # ---- one run --------------------------------------------------------------------------------

    def execute(self, run_id: str) -> None:
        """Start a claimed run and follow it to its end."""
        try:
            started = self._start(run_id)
        except EnclaveError as refused:  # e.g. the project's data could not be published
            log.warning("run %s could not be started: %s", run_id, refused)
            self._finish(run_id, Ending(RunState.FAILED, _error_of(refused)))
            return
        except Exception as error:  # the analyst sees the kind of failure, the operator the details
            log.exception("run %s could not be started", run_id)
            self._finish(run_id, Ending(RunState.FAILED, outcome.start_failed(type(error).__name__)))
            return
        if started:
            self._follow(run_id)

    def _start(self, run_id: str) -> bool:
        """Steps 2 and 3; ``False`` when the run ended instead (refused, data changed)."""
        with self.open_session() as session:
            run = service.get_run(session, run_id)
            try:
                check_analyst_access(session, run.project_id, run.user)
                access = projects.current_spec(session, run.project_id).access.value
                current = layout.current_version(self.paths, run.project_id)
            except EnclaveError as refused:
                ending = Ending(RunState.FAILED, _error_of(refused))
            else:
                ending = None
                if current != run.data_version:
                    ending = Ending(RunState.FAILED, outcome.data_version_changed(run.data_version, current))
            if ending is None:
                notebook = service.read_stored(self.paths, run.notebook_sha256)
                token = tokens.issue(run)
        if ending is not None:
            self._finish(run_id, ending)
            return False
        run_dir = self._make_run_dir(run, notebook)
        container_id = self.executor.start(run, run_dir, token, access=access)
        try:
            self._record_container(run_id, container_id)
        except BaseException:
            self.executor.remove(container_id)  # never a container the database does not know
            raise
        return True

    def _make_run_dir(self, run: Run, notebook: bytes) -> Path:
        folder = service.run_dir(self.paths, run.id)
        folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        unmount_out(folder / "out")
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "in").mkdir(parents=True, mode=0o755)
        (folder / "in" / "notebook.ipynb").write_bytes(notebook)
        (folder / "in" / "parameters.json").write_text(run.parameters_json, encoding="utf-8")
        for name in ("notebook.ipynb", "parameters.json"):
            os.chmod(folder / "in" / name, 0o444)
        os.chmod(folder / "in", 0o555)
        out = folder / "out"
        out.mkdir(mode=0o700)
        try:
            os.chown(out, self.uid, self.uid)  # the container's user, and nobody else
        except PermissionError:  # a worker that is not root: the folder above is still 0700
            os.chmod(out, 0o777)
        else:
            mount_out(out, self.uid)
        (folder / service.LOG_FILE).touch(mode=0o600)
        return folder

    def _record_container(self, run_id: str, container_id: str) -> None:
        digest = self.executor.image_digest(container_id)
        with self.open_session() as session:
            run = service.get_run(session, run_id)
            run.container_id = container_id
            if digest:
                run.image_digest = digest

    def _follow(self, run_id: str) -> None:
        """Step 4, then step 5; returns early (the run left running) when the worker detaches."""
        with self.open_session() as session:
            run = service.get_run(session, run_id)
            container_id = run.container_id
            deadline_s = run.timeout_s - _age_s(run.started_at)
            timeout_s = run.timeout_s
            notebook = service.read_stored(self.paths, run.notebook_sha256)
            cells = outcome.cell_layout(json.loads(notebook), json.loads(run.parameters_json))
        assert container_id is not None
        folder = service.run_dir(self.paths, run_id)
        log_path = folder / service.LOG_FILE
        follower = self.executor.stream_logs(container_id, log_path, cap=LIVE_LOG_CAP)
        progress = _Progress(log_path, cells)
        began = time.monotonic()
        polls = 0
        while True:
            status = self.executor.wait(container_id, timeout=self.poll_s)
            self._save_progress(run_id, progress)
            if status is not None:
                ending = self._ending_of(status, timeout_s)
                break
            if self._detach.is_set():
                return
            polls += 1
            stopped = self._stop_reason(run_id, check_access=polls % WATCH_EVERY == 0)
            if stopped is not None:
                ending = stopped
                break
            if time.monotonic() - began > deadline_s:
                ending = Ending(RunState.TIMED_OUT, outcome.timed_out(timeout_s))
                break
            if polls % WATCH_EVERY == 0 and collect.usage_exceeds(
                folder / "out", OUT_WATCH_FILES, OUT_WATCH_BYTES
            ):
                ending = Ending(RunState.FAILED, outcome.outputs_overflow(OUT_WATCH_FILES, OUT_WATCH_BYTES))
                break
        if status is None:
            self.executor.stop(container_id)
        follower.join(timeout=30)
        self._save_progress(run_id, progress)
        self._finish(run_id, ending, container_id)

    def _ending_of(self, status: ExitStatusLike, timeout_s: int) -> Ending:
        if status.code == 0:
            return Ending(RunState.SUCCEEDED, exit_code=0)
        if status.oom_killed:
            return Ending(RunState.FAILED, outcome.out_of_memory(self.memory_limit), exit_code=status.code)
        return Ending(RunState.FAILED, None, exit_code=status.code)  # the error is read at the end

    def _stop_reason(self, run_id: str, *, check_access: bool) -> Ending | None:
        """Why the run must stop now, if it must: cancelled (asked to, or no longer running at all);
        failed when ``check_access`` finds its analyst may no longer work in the project (expired,
        suspended, locked, removed), as a workspace is stopped at its next poll."""
        with self.open_session() as session:
            run = service.get_run(session, run_id)
            if run.cancel_requested or run.state != RunState.RUNNING.value:
                return Ending(RunState.CANCELLED, outcome.cancelled())
            if check_access:
                try:
                    check_analyst_access(session, run.project_id, run.user)
                except EnclaveError as refused:
                    return Ending(RunState.FAILED, _error_of(refused))
        return None

    def _save_progress(self, run_id: str, progress: _Progress) -> None:
        if not progress.advance():
            return
        with self.open_session() as session:
            run = service.get_run(session, run_id)
            run.progress_json = json.dumps(progress.merged(service.progress(run)))

    # ---- the end ---------------------------------------------------------------------------------

    def _finish(self, run_id: str, ending: Ending, container_id: str | None = None) -> None:
        """Step 5. The database is written before the container and the folder go, so a crash
        in between leaves a run that ``recover()`` finishes again."""
        folder = service.run_dir(self.paths, run_id)
        store = service.run_store(self.paths)
        collected = collect.collect(folder / "out", store)
        live_log = _read_capped(folder / service.LOG_FILE, LIVE_LOG_CAP + 4096)
        if ending.state is RunState.FAILED and ending.error is None:
            ending.error = self._failure(collected, live_log, ending.exit_code)
        if collected.notices and ending.error is not None:
            ending.error.setdefault("details", {})["notices"] = collected.notices
        final_log = live_log + _notes(ending, collected)
        log_sha = service.store_bytes(self.paths, final_log, "log.txt") if final_log else None
        with self.open_session() as session:
            run = service.get_run(session, run_id)
            tokens.revoke(run)
            if run.state != RunState.RUNNING.value:  # ended by someone else: nothing more to record
                log.warning("run %s was %s when its worker finished it", run_id, run.state)
                run.log_sha256 = run.log_sha256 or log_sha
                ending = Ending(RunState(run.state))
            else:
                self._record_end(session, run, ending, collected, log_sha)
        if container_id:
            try:
                self.executor.remove(container_id)
            except Exception:
                log.exception("could not remove the container of run %s", run_id)
        unmount_out(folder / "out")
        shutil.rmtree(folder, ignore_errors=True)
        self._call_hooks(run_id)

    def _record_end(
        self, session: Session, run: Run, ending: Ending, collected: collect.Collected, log_sha: str | None
    ) -> None:
        for output in collected.outputs:
            session.add(RunOutput(run_id=run.id, name=output.name, sha256=output.sha256, size=output.size))
        run.executed_sha256 = collected.executed.sha256 if collected.executed else None
        run.log_sha256 = log_sha
        run.error_json = json.dumps(ending.error, ensure_ascii=False) if ending.error else None
        if ending.state is RunState.SUCCEEDED:
            done = service.progress(run)
            run.progress_json = json.dumps({**done, "cells_done": done.get("cells_total", 0)})
        details: dict[str, Any] = {"outputs": len(collected.outputs)}
        if ending.error:
            details["code"] = ending.error["code"]
        if ending.exit_code is not None:
            details["exit_code"] = ending.exit_code
        move(session, run, ending.state, RunActor.WORKER, by=self.name, details=details)

    def _failure(
        self, collected: collect.Collected, live_log: bytes, exit_code: int | None
    ) -> dict[str, Any]:
        """papermill's error: the failing cell's exception, from the executed notebook or the log."""
        if collected.executed is not None:
            path = service.run_store(self.paths).path_for(collected.executed.sha256)
            cell = outcome.cell_error_from_notebook(path.read_bytes())
            if cell is not None:
                return outcome.cell_failed(cell)
        text = live_log.decode("utf-8", errors="replace")
        cell = outcome.cell_error_from_log(text)
        if cell is not None:
            return outcome.cell_failed(cell)
        lines = [line for line in text.splitlines() if line.strip()]
        return outcome.exited(exit_code if exit_code is not None else -1, lines[-1] if lines else "")

    def _call_hooks(self, run_id: str) -> None:
        for hook in self.on_finished:
            try:
                with self.open_session() as session:
                    hook(session, self.paths, service.get_run(session, run_id))
            except Exception:
                log.exception("the on_finished hook %r failed for run %s", hook, run_id)


class _Progress:
    """papermill's ``Ending Cell N`` lines read from the live log as it grows."""

    def __init__(self, log_path: Path, cells: list[bool]) -> None:
        self.log_path = log_path
        self.cells = cells
        self.offset = 0
        self.tail = b""
        self.ended = 0
        self.saved = -1

    def advance(self) -> bool:
        """Read what was added; whether the count of finished cells changed since last saved."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read(LIVE_LOG_CAP)
        except OSError:
            return False
        self.offset += len(chunk)
        lines, _, self.tail = (self.tail + chunk).rpartition(b"\n")
        self.tail = self.tail[-4096:]
        self.ended = max(self.ended, outcome.highest_ended(lines))
        done = outcome.cells_done(self.ended, self.cells)
        changed = done != self.saved
        self.saved = done
        return changed

    def merged(self, recorded: dict[str, int]) -> dict[str, int]:
        total = recorded.get("cells_total", sum(self.cells))
        return {**recorded, "cells_done": min(self.saved, total), "cells_total": total}


def mount_out(out: Path, uid: int, size: int | None = None) -> bool:
    """Put a size-capped tmpfs on ``out/`` (as root): the container's only writable host folder then
    cannot fill the vault host's disk, whatever it writes between two polls; a full one gives the
    notebook "No space left on device". Its pages count against the container's memory limit."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    options = f"size={size or OUT_WATCH_BYTES},mode=0700,uid={uid},gid={uid},nosuid,nodev,noexec"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "enclave-run-out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        log.warning("could not cap %s with a tmpfs (%s); the out/ watch applies", out, done.stderr.strip())
        return False
    return True


def unmount_out(out: Path) -> None:
    """Take the tmpfs off ``out/`` (after its files were collected), if one is there."""
    if os.path.ismount(out):
        subprocess.run(["umount", "-l", str(out)], capture_output=True, check=False)


def _notes(ending: Ending, collected: collect.Collected) -> bytes:
    """What the worker adds at the end of the stored log: skipped outputs and how the run ended."""
    lines = [f"[enclave] {n['message']} / {n['message_zh']}" for n in collected.notices]
    if ending.error:
        lines.append(f"[enclave] {ending.error['message']} / {ending.error['message_zh']}")
    lines.append(f"[enclave] run ended: {ending.state.value}")
    return ("\n" + "\n".join(lines) + "\n").encode("utf-8")


def _error_of(refused: EnclaveError) -> dict[str, Any]:
    return outcome.error(refused.code, refused.message, refused.message_zh)


def _read_capped(path: Path, cap: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as handle:
        return handle.read(cap)


def _age_s(iso: str | None) -> float:
    if not iso:
        return 0.0
    return (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
