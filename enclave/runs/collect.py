"""Collecting a finished run's ``out/`` folder into the run store, without trusting anything in it.

The folder was written by the analyst's code inside the container, so it may hold anything: links
to files of the host, FIFOs that would block a reader, devices, millions of files, huge files,
names that are not text. Only regular files become outputs:

* every directory is opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to its parent's descriptor,
  and every file with ``O_NOFOLLOW | O_NONBLOCK`` relative to its directory's, then checked with
  ``fstat``: a link is never followed, a FIFO never waited on, a device never read;
* caps (the contract's): at most ``MAX_FILES`` files, each at most ``MAX_FILE_BYTES``, together at
  most ``MAX_TOTAL_BYTES``; what does not fit is skipped and reported, never truncated;
* hidden names (``.ipynb_checkpoints``, ``.executed.ipynb``...) are not outputs; the executed
  notebook ``.executed.ipynb`` at the top is collected apart (``executed``).

Each skipped entry becomes a notice ``{"file", "reason", "message", "message_zh"}``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from enclave.filestore import CHUNK, FileStore, StagedFile

MAX_FILES = 200
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_TOTAL_BYTES = 100 * 1024 * 1024
MAX_DEPTH = 16
MAX_NAME = 255  # RunOutput.name
EXECUTED_NAME = ".executed.ipynb"
JUNK = frozenset({".ipynb_checkpoints", "__pycache__", ".ipython", ".cache", ".local", ".config"})
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK

_REASONS = {
    "not_regular": ("not a regular file (a link, FIFO, socket or device): skipped",
                    "不是普通文件（链接、管道、套接字或设备）：已跳过"),
    "too_large": ("larger than the cap of one output: skipped", "超过单个输出的大小上限：已跳过"),
    "total_too_large": ("the outputs together passed their cap: skipped", "输出总大小超过上限：已跳过"),
    "too_many": ("more files than the cap of outputs: skipped", "文件数量超过输出上限：已跳过"),
    "bad_name": ("the name is not usable text or too long: skipped", "文件名不是有效文本或过长：已跳过"),
    "too_deep": ("folders nested too deep: skipped", "文件夹嵌套过深：已跳过"),
    "hidden": ("a hidden name is not an output: skipped", "隐藏文件不作为输出：已跳过"),
    "unreadable": ("could not be read: skipped", "无法读取：已跳过"),
}  # fmt: skip


@dataclass(frozen=True)
class Output:
    name: str  # relative path with "/"
    sha256: str
    size: int


@dataclass
class Collected:
    outputs: list[Output] = field(default_factory=list)
    executed: Output | None = None
    notices: list[dict[str, str]] = field(default_factory=list)

    def skip(self, name: str, reason: str) -> None:
        en, zh = _REASONS[reason]
        self.notices.append({"file": name, "reason": reason, "message": f"{name}: {en}",
                             "message_zh": f"{name}：{zh}"})  # fmt: skip


@dataclass(frozen=True)
class Caps:
    files: int = MAX_FILES
    file_bytes: int = MAX_FILE_BYTES
    total_bytes: int = MAX_TOTAL_BYTES
    depth: int = MAX_DEPTH


class _TooLarge(Exception):
    pass


@contextmanager
def _opened(name: str, flags: int, dir_fd: int | None) -> Iterator[int]:
    fd = os.open(name, flags, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def _usable(name: str) -> bool:
    try:
        name.encode("utf-8")  # undecodable bytes come back as surrogates
    except UnicodeEncodeError:
        return False
    return bool(name) and len(name) <= MAX_NAME and all(c.isprintable() for c in name)


def _stage_fd(store: FileStore, fd: int, name: str, cap: int) -> StagedFile:
    """Copy an open file into the store's staging, hashing it; ``_TooLarge`` past ``cap``."""
    store.make_dir(store.staging)
    target = store.staging / uuid.uuid4().hex
    digest = hashlib.sha256()
    size = 0
    try:
        with target.open("xb") as sink:
            while chunk := os.read(fd, CHUNK):
                size += len(chunk)
                if size > cap:
                    raise _TooLarge
                digest.update(chunk)
                sink.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return StagedFile(name=name, path=target, sha256=digest.hexdigest(), size=size)


def _store_file(store: FileStore, dir_fd: int, entry: str, rel: str, cap: int) -> Output | str:
    """The stored output, or why it was skipped."""
    try:
        with _opened(entry, FILE_FLAGS, dir_fd) as fd:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return "not_regular"
            if info.st_size > cap:
                return "too_large"
            staged = _stage_fd(store, fd, rel, cap)
    except _TooLarge:
        return "too_large"
    except OSError as error:  # ELOOP: a link swapped in after the listing
        return "not_regular" if error.errno in (errno.ELOOP, errno.ENXIO) else "unreadable"
    store.commit(staged)
    return Output(rel, staged.sha256, staged.size)


def collect(out_dir: Path, store: FileStore, caps: Caps = Caps()) -> Collected:
    """Store the regular files under ``out_dir`` (never following a link) and say what was skipped."""
    found = Collected()
    total = 0
    skipped_many = 0

    def walk(dir_fd: int, prefix: str, depth: int) -> None:
        nonlocal total, skipped_many
        with os.scandir(dir_fd) as listing:
            names = sorted(entry.name for entry in listing)
        for entry in names:
            rel = prefix + entry
            if depth == 0 and entry == EXECUTED_NAME:
                continue  # collected apart
            if not _usable(entry) or len(rel) > MAX_NAME:
                found.skip(rel if _usable(rel) else repr(rel)[1:-1][:MAX_NAME], "bad_name")
                continue
            try:
                info = os.stat(entry, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                found.skip(rel, "unreadable")
                continue
            if entry in JUNK:
                continue
            if entry.startswith("."):
                found.skip(rel, "hidden")
                continue
            if stat.S_ISDIR(info.st_mode):
                if depth + 1 >= caps.depth:
                    found.skip(rel + "/", "too_deep")
                    continue
                try:
                    with _opened(entry, DIR_FLAGS, dir_fd) as sub:
                        walk(sub, rel + "/", depth + 1)
                except OSError:
                    found.skip(rel + "/", "not_regular")
                continue
            if not stat.S_ISREG(info.st_mode):
                found.skip(rel, "not_regular")
                continue
            if len(found.outputs) >= caps.files:
                skipped_many += 1
                continue
            if info.st_size > caps.file_bytes:
                found.skip(rel, "too_large")
                continue
            if total + info.st_size > caps.total_bytes:
                found.skip(rel, "total_too_large")
                continue
            stored = _store_file(store, dir_fd, entry, rel, min(caps.file_bytes, caps.total_bytes - total))
            if isinstance(stored, str):
                found.skip(rel, stored)
                continue
            total += stored.size
            found.outputs.append(stored)

    try:
        top = os.open(out_dir, DIR_FLAGS)
    except OSError:
        return found  # nothing was written (or out/ itself was replaced): no outputs
    try:
        walk(top, "", 0)
        executed = _store_file(store, top, EXECUTED_NAME, EXECUTED_NAME, caps.file_bytes)
        if isinstance(executed, Output):
            found.executed = executed
        elif executed != "unreadable":  # absent: papermill never started
            found.skip(EXECUTED_NAME, executed)
    finally:
        os.close(top)
    if skipped_many:
        found.skip(f"{skipped_many} more files", "too_many")
    return found


def usage_exceeds(out_dir: Path, max_files: int, max_bytes: int) -> bool:
    """Whether ``out_dir`` holds more than ``max_files`` entries or ``max_bytes`` (stops counting at
    the first cap passed); the worker stops a run that keeps writing past what it could ever keep.
    Read while the container runs, so directories are opened as in ``collect``, never through a link."""
    files = 0
    size = 0

    def count(dir_fd: int, depth: int) -> bool:
        nonlocal files, size
        with os.scandir(dir_fd) as listing:
            names = [entry.name for entry in listing]
        for name in names:
            files += 1
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except OSError:
                continue
            size += info.st_blocks * 512  # a sparse file costs what it occupies
            if files > max_files or size > max_bytes:
                return True
            if stat.S_ISDIR(info.st_mode) and depth < MAX_DEPTH * 4:
                try:
                    with _opened(name, DIR_FLAGS, dir_fd) as sub:
                        if count(sub, depth + 1):
                            return True
                except OSError:
                    continue
        return False

    try:
        with _opened(str(out_dir), DIR_FLAGS, None) as top:
            return count(top, 0)
    except OSError:
        return False
