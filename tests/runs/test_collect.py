"""Collecting a run's ``out/`` folder: only regular files, never through a link, within the caps,
whatever the notebook left there (links to host files, FIFOs, devices, floods, huge files)."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

from enclave.filestore import FileStore
from enclave.runs.collect import EXECUTED_NAME, MAX_FILE_BYTES, MAX_FILES, Caps, collect, usage_exceeds


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_hashes(store: FileStore) -> set[str]:
    return {p.name for p in store.root.rglob("*") if p.is_file() and ".staging" not in p.parts}


def reasons(collected) -> dict[str, str]:
    return {n["file"]: n["reason"] for n in collected.notices}


def test_regular_files_are_stored_with_their_hashes(out: Path, store: FileStore) -> None:
    (out / "table.csv").write_bytes(b"a,b\n1,2\n")
    (out / "figures").mkdir()
    (out / "figures" / "km.png").write_bytes(b"\x89PNG")
    (out / "empty.txt").write_bytes(b"")
    (out / EXECUTED_NAME).write_bytes(b'{"cells": []}')
    found = collect(out, store)
    assert [(o.name, o.sha256, o.size) for o in found.outputs] == [
        ("empty.txt", sha(b""), 0),
        ("figures/km.png", sha(b"\x89PNG"), 4),
        ("table.csv", sha(b"a,b\n1,2\n"), 8),
    ]
    assert found.executed is not None and found.executed.sha256 == sha(b'{"cells": []}')
    assert found.notices == []
    assert store.verify(sha(b"a,b\n1,2\n"))


def test_links_are_never_followed(out: Path, store: FileStore, tmp_path: Path) -> None:
    secret = tmp_path / "vault-secret.key"
    secret.write_bytes(b"the project's pseudonym key")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "rows.parquet").write_bytes(b"row-level data")
    os.symlink(secret, out / "key.txt")
    os.symlink(elsewhere, out / "data")
    os.symlink("/etc/passwd", out / "passwd")
    os.symlink("missing", out / "dangling")
    (out / "ok.csv").write_bytes(b"x\n")
    found = collect(out, store)
    assert [o.name for o in found.outputs] == ["ok.csv"]
    assert reasons(found) == {
        "key.txt": "not_regular",
        "data": "not_regular",
        "passwd": "not_regular",
        "dangling": "not_regular",
    }
    assert stored_hashes(store) == {sha(b"x\n")}


def test_an_executed_notebook_that_is_a_link_or_a_fifo_is_skipped_without_waiting(
    out: Path, store: FileStore, tmp_path: Path
) -> None:
    os.mkfifo(out / EXECUTED_NAME)  # opened directly: O_NONBLOCK, or this would hang forever
    os.mkfifo(out / "pipe.csv")
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(collect(out, store)), daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert done, "collect blocked on a FIFO"
    found = done[0]
    assert found.executed is None and found.outputs == []  # type: ignore[attr-defined]
    assert reasons(found) == {EXECUTED_NAME: "not_regular", "pipe.csv": "not_regular"}

    (out / EXECUTED_NAME).unlink()
    (tmp_path / "secret.ipynb").write_bytes(b"{}")
    os.symlink(tmp_path / "secret.ipynb", out / EXECUTED_NAME)
    assert collect(out, store).executed is None


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_devices_and_sockets_are_skipped(out: Path, store: FileStore) -> None:
    os.mknod(out / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    import socket

    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(out / "sock"))
        found = collect(out, store)
    assert found.outputs == [] and reasons(found) == {"null": "not_regular", "sock": "not_regular"}


def test_at_most_the_cap_of_files(out: Path, store: FileStore) -> None:
    for i in range(MAX_FILES + 7):
        (out / f"f{i:04d}.txt").write_text(str(i))
    found = collect(out, store)
    assert len(found.outputs) == MAX_FILES
    assert [o.name for o in found.outputs][:2] == ["f0000.txt", "f0001.txt"]
    assert reasons(found) == {"7 more files": "too_many"}


def test_a_file_over_the_cap_is_skipped_never_truncated(out: Path, store: FileStore) -> None:
    with (out / "huge.bin").open("wb") as handle:  # sparse: the size is real, the disk is not used
        handle.truncate(MAX_FILE_BYTES + 1)
    (out / "small.csv").write_bytes(b"1\n")
    found = collect(out, store)
    assert [o.name for o in found.outputs] == ["small.csv"]
    assert reasons(found) == {"huge.bin": "too_large"}
    assert stored_hashes(store) == {sha(b"1\n")}


def test_the_total_cap(out: Path, store: FileStore) -> None:
    for name in ("a", "b", "c"):
        (out / name).write_bytes(name.encode() * 1000)
    found = collect(out, store, Caps(file_bytes=1000, total_bytes=2500))
    assert [o.name for o in found.outputs] == ["a", "b"]
    assert reasons(found) == {"c": "total_too_large"}


def test_hidden_names_junk_and_bad_names(out: Path, store: FileStore) -> None:
    (out / ".ipynb_checkpoints").mkdir()
    (out / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}")
    (out / "__pycache__").mkdir()
    (out / ".secret.csv").write_text("1")
    (out / "line\nbreak.csv").write_text("1")
    os.close(os.open(bytes(out) + b"/bad-\xff.csv", os.O_CREAT | os.O_WRONLY, 0o600))
    (out / ("n" * 300)[:250]).write_text("long but allowed")
    found = collect(out, store)
    assert [o.name for o in found.outputs] == ["n" * 250]
    got = reasons(found)
    assert got.pop(".secret.csv") == "hidden"
    assert sorted(got.values()) == ["bad_name", "bad_name"], got


def test_nesting_is_capped(out: Path, store: FileStore) -> None:
    deep = out
    for i in range(5):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "x.txt").write_text("x")
    (out / "d0" / "y.txt").write_text("y")
    found = collect(out, store, Caps(depth=3))
    assert [o.name for o in found.outputs] == ["d0/y.txt"]
    assert reasons(found) == {"d0/d1/d2/": "too_deep"}


def test_nothing_written_means_no_outputs(tmp_path: Path, store: FileStore) -> None:
    found = collect(tmp_path / "never-made", store)
    assert found.outputs == [] and found.executed is None and found.notices == []


def test_out_itself_replaced_by_a_link_is_not_followed(tmp_path: Path, store: FileStore) -> None:
    target = tmp_path / "host-folder"
    target.mkdir()
    (target / "private.txt").write_text("host file")
    os.symlink(target, tmp_path / "out")
    assert collect(tmp_path / "out", store).outputs == []


def test_usage_watch(out: Path) -> None:
    assert not usage_exceeds(out, 10, 10_000)
    for i in range(12):
        (out / str(i)).write_bytes(b"")
    assert usage_exceeds(out, 10, 10_000)
    assert not usage_exceeds(out, 100, 10_000)
    (out / "big").write_bytes(b"x" * 20_000)
    assert usage_exceeds(out, 100, 10_000)


def test_a_link_swapped_in_after_the_listing_is_not_followed(
    out: Path, store: FileStore, tmp_path: Path
) -> None:
    """The open itself refuses links (O_NOFOLLOW), not only the listing's lstat."""
    from enclave.runs.collect import _store_file

    (tmp_path / "secret").write_bytes(b"secret")
    os.symlink(tmp_path / "secret", out / "swapped.csv")
    top = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert _store_file(store, top, "swapped.csv", "swapped.csv", 1000) == "not_regular"
    finally:
        os.close(top)
    assert stored_hashes(store) == set()
