"""Workspace paths as JupyterLab's UI sends them, checked the same way wherever a request names a file
of the workspace (an export, a batch run): a relative path of plain parts, and a real path (symlinks
resolved) below the root. A path that fails is refused with the caller's ``Refusal`` class and its
own code, with these messages."""

from __future__ import annotations

import os


class Refusal(Exception):
    """A refusal in the services' error shape: HTTP status, stable code, English and Chinese."""

    def __init__(self, status: int, code: str, en: str, zh: str) -> None:
        super().__init__(code)
        self.status, self.code, self.en, self.zh = status, code, en, zh


def relative_parts(path: str, refusal: type[Refusal], code: str) -> list[str]:
    """The ``/``-separated parts of ``path`` (leading and trailing ``/`` ignored); refused (400,
    ``code``) when one is empty, ``.`` or ``..``, or holds a backslash or a NUL."""
    parts = path.strip("/").split("/")
    if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
        raise refusal(400, code, f"{path} is not a path inside the workspace", f"{path} 不是工作区中的路径")
    return parts


def check_below(real: str, real_root: str, path: str, refusal: type[Refusal], code: str) -> None:
    """Refuse (403, ``code``) ``path`` unless its real path ``real`` lies below ``real_root`` (the root
    itself is not below it)."""
    if not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise refusal(403, code, f"{path} points outside the workspace", f"{path} 指向工作区之外")
