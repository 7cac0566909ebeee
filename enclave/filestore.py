"""The content-addressed file store in the vault (R-EXP-3, STYLE §5.10): export files and batch-run
notebooks and outputs.

A file is copied from the workspace to a temporary name, hashed while it is copied, checked, and
then renamed to its sha256. A stored file is made read-only and never written again; the same
bytes submitted twice are stored once. ``verify`` re-hashes a stored file before it leaves.
"""

from __future__ import annotations

import hashlib
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from enclave.errors import BadInput, Refused

CHUNK = 1 << 20
SHA256_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class StagedFile:
    """A copy in the vault under a temporary name, with its hash and size, not yet committed."""

    name: str
    path: Path
    sha256: str
    size: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FileStore:
    """``owner`` (uid, gid): who every folder and file this store makes belongs to, when a root
    process writes a store that a service account reads (the batch-run worker on a single host)."""

    def __init__(self, root: Path, owner: tuple[int, int] | None = None) -> None:
        self.root = root
        self.owner = owner

    @property
    def staging(self) -> Path:
        return self.root / ".staging"

    def make_dir(self, path: Path) -> None:
        """``path`` and its missing parents, 0700, handed to ``owner``."""
        missing = [p for p in (path, *path.parents) if not p.exists()]
        for folder in reversed(missing):
            folder.mkdir(mode=0o700, exist_ok=True)
            self._hand_over(folder)

    def _hand_over(self, path: Path) -> None:
        if self.owner is not None:
            os.chown(path, *self.owner, follow_symlinks=False)

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or not set(sha256) <= SHA256_HEX:
            raise BadInput("sha256_invalid", f"Not a sha256: {sha256!r}", f"不是 sha256：{sha256!r}")
        return self.root / sha256[:2] / sha256

    def stage(self, source: Path, name: str, max_bytes: int) -> StagedFile:
        """Copy a regular file (never a link or a device) into staging, refusing it past ``max_bytes``."""
        try:
            # No links (O_NOFOLLOW) and no waiting on a FIFO (O_NONBLOCK): a regular file or nothing.
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
            fd = os.open(source, flags)
        except OSError as error:
            raise BadInput(
                "export_file_unreadable",
                f"Cannot read {source}: {error.strerror or error}",
                f"无法读取 {source}：{error.strerror or error}",
                details={"file": name},
            ) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise BadInput(
                "export_file_not_regular",
                f"{source} is not a regular file",
                f"{source} 不是普通文件",
                details={"file": name},
            )
        self.make_dir(self.staging)
        target = self.staging / uuid.uuid4().hex
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "rb") as src, target.open("xb") as dst:
                while chunk := src.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise Refused(
                            "export_file_too_large",
                            f"{name} is larger than the cap of {max_bytes} bytes",
                            f"{name} 超过了 {max_bytes} 字节的大小上限",
                            details={"file": name, "cap": max_bytes},
                        )
                    digest.update(chunk)
                    dst.write(chunk)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return StagedFile(name=name, path=target, sha256=digest.hexdigest(), size=size)

    def commit(self, staged: StagedFile) -> Path:
        """Rename a staged file to its digest, read-only; keep the stored copy if it already exists."""
        final = self.path_for(staged.sha256)
        if final.exists():
            staged.path.unlink(missing_ok=True)
            return final
        self.make_dir(final.parent)
        os.chmod(staged.path, 0o440)
        self._hand_over(staged.path)
        os.replace(staged.path, final)
        return final

    def discard(self, staged: StagedFile) -> None:
        staged.path.unlink(missing_ok=True)

    def verify(self, sha256: str) -> bool:
        """True when the stored bytes still hash to ``sha256``."""
        path = self.path_for(sha256)
        return path.is_file() and sha256_of(path) == sha256
