"""Run an enclave service as a real process, stop it at a named point and ``kill -9`` it (crash tests).

The service is started with ``ENCLAVE_TEST_PAUSE_AT`` / ``ENCLAVE_TEST_PAUSE_DIR``
(``enclave.crashpoints``); the test waits, with a deadline, for the file that says the point was
reached, then sends SIGKILL: no clean shutdown, no ``finally`` blocks, no commit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from enclave import audit, db
from enclave.config import Paths
from enclave.crashpoints import PAUSE_AT_ENV, PAUSE_DIR_ENV

ENCLAVE = [sys.executable, "-c", "from enclave.cli import main; main()"]


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class ServiceProcess:
    """``enclave --home H <args>`` as a child process, its output in a log file."""

    def __init__(self, home: Path, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self.pause_dir = home.parent / "pause"
        self.pause_dir.mkdir(exist_ok=True)
        self.env = {**os.environ, PAUSE_DIR_ENV: str(self.pause_dir), **env}
        self.argv = [*ENCLAVE, "--home", str(home), *args]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_url: str, *, pause_at: str | None = None) -> None:
        env = dict(self.env)
        env.pop(PAUSE_AT_ENV, None)
        if pause_at is not None:
            env[PAUSE_AT_ENV] = pause_at
            (self.pause_dir / pause_at).unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self._answers(ready_url), f"the service at {ready_url}\n{self.log_tail()}")

    def _answers(self, url: str) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, f"the service exited:\n{self.log_tail()}"
        try:
            urllib.request.urlopen(url, timeout=2).close()
        except urllib.error.HTTPError:
            return True  # any HTTP answer (401 without a token) means it listens
        except OSError:
            return False
        return True

    def wait_paused(self, point: str) -> None:
        marker = self.pause_dir / point
        wait_until(marker.exists, f"the service to reach {point}\n{self.log_tail()}")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(30) == -signal.SIGKILL

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(20)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


def in_background(call: Callable[[], Any]) -> threading.Thread:
    """Send a request that the crash will cut off; whatever it raises is dropped."""

    def run() -> None:
        with contextlib.suppress(Exception):
            call()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def check_audit_chain(database_url: str, home: Path) -> int:
    """``enclave audit verify``: the whole chain against the vault's key and checkpoints; its length."""
    with db.session_scope(db.connect(database_url)) as session:
        result = audit.verify(session, paths=Paths(home))
    assert result.ok, result
    return result.checked
