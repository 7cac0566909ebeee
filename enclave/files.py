"""Small filesystem primitives for atomic, durable writes in the vault."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path

from enclave.errors import BadInput
from enclave.specs import PROJECT_ID_PATTERN

HASH_CHUNK = 1 << 20
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
READ_ONLY_FILE = 0o440


def check_project_id(project_id: str) -> str:
    """The id, if it is a valid project id (so it can never climb out of a vault folder)."""
    if not isinstance(project_id, str) or not re.fullmatch(PROJECT_ID_PATTERN, project_id):
        raise BadInput(
            "project_id_invalid", f"Invalid project id: {project_id!r}", f"项目编号无效：{project_id!r}"
        )
    return project_id


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the service account alone."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    return path


def fsync_path(path: Path) -> None:
    """Flush a file or a directory entry to disk."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file and directory under ``root``, deepest first."""
    for current, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            fsync_path(Path(current) / name)
        fsync_path(Path(current))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def temp_name(path: Path, tag: str = "tmp") -> Path:
    return path.with_name(f".{path.name}.{tag}-{secrets.token_hex(4)}")


def write_private(path: Path, data: bytes, *, replace: bool = True) -> bool:
    """Write ``data`` to ``path`` with mode 0600, atomically and durably.

    With ``replace=False`` an existing file is kept and False is returned (create-if-absent, safe
    against a concurrent writer).
    """
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_path(path.parent)
    return True


def replace_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` atomically (readers see the old or the new target, never none)."""
    tmp = temp_name(link, "link")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(link.parent)
