"""What an export request from JupyterLab may carry: its fields, which workspace file, and the file's
bytes (``enclave_lockdown.exports``).

Pure functions, with no Jupyter import, so they are tested on their own: the POST's fields (a
justification is required), and a path as the UI sends it (relative, no ``..``, no hidden part),
whose real file (symlinks resolved) is a regular file inside the root and no larger than the export
review's cap. The bytes are read from the real path after these checks, with the last step's
symlink refused again at ``open``: the contents manager never hands out raw bodies
(``NoRawBodiesContentsManager``).
"""

from __future__ import annotations

import os
import stat
from typing import Any

from enclave_lockdown.workspace_paths import Refusal, check_below, relative_parts

MAX_JUSTIFICATION = 4000


class ExportFileError(Refusal):
    """An export request refused before it reaches the export review."""


def check_body(body: Any) -> tuple[Any, str, str | None, bool]:
    """The POST's fields: path, justification (required), revises (optional), abroad (a boolean)."""
    if not isinstance(body, dict):
        raise ExportFileError(
            400, "export_request_invalid", "The request is not a JSON object", "请求不是 JSON 对象"
        )
    justification = body.get("justification")
    if not isinstance(justification, str) or not justification.strip():
        raise ExportFileError(
            400,
            "export_justification_missing",
            "Say why the file must leave the enclave",
            "请说明导出该文件的理由",
        )
    if len(justification) > MAX_JUSTIFICATION:
        raise ExportFileError(
            400,
            "export_justification_too_long",
            f"The justification is longer than {MAX_JUSTIFICATION} characters",
            f"理由超过 {MAX_JUSTIFICATION} 个字符",
        )
    revises = body.get("revises") or None
    if revises is not None and not isinstance(revises, str):
        raise ExportFileError(
            400, "export_revises_invalid", "revises must be a request id", "revises 必须是申请编号"
        )
    abroad = body.get("abroad", False)
    if not isinstance(abroad, bool):
        raise ExportFileError(
            400, "export_abroad_invalid", "abroad must be true or false", "abroad 必须是 true 或 false"
        )
    return body.get("path"), justification.strip(), revises, abroad


def check_path(path: Any) -> str:
    """A contents path as the UI sends it: relative, ``/``-separated, no ``..``, nothing hidden."""
    if not isinstance(path, str) or not path.strip("/"):
        raise ExportFileError(400, "export_path_invalid", "Which file? Give its path", "请指定文件的路径")
    parts = relative_parts(path, ExportFileError, "export_path_outside_home")
    if any(part.startswith(".") for part in parts):
        raise ExportFileError(
            403,
            "export_file_hidden",
            f"{path} is a hidden file: it cannot be exported",
            f"{path} 是隐藏文件：不能导出",
        )
    return "/".join(parts)


def real_file(root: str, path: str) -> str:
    """The real path of ``path`` under ``root``; refused when it leaves the root or is not a file."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, *path.split("/")))
    check_below(real, real_root, path, ExportFileError, "export_path_outside_home")
    relative = os.path.relpath(real, real_root).split(os.sep)
    if any(part.startswith(".") for part in relative):  # a link to a hidden file is a hidden file
        raise ExportFileError(
            403,
            "export_file_hidden",
            f"{path} is a hidden file: it cannot be exported",
            f"{path} 是隐藏文件：不能导出",
        )
    if not os.path.lexists(real):
        raise ExportFileError(404, "export_file_not_found", f"No file at {path}", f"找不到文件 {path}")
    if not os.path.isfile(real):
        raise ExportFileError(
            400,
            "export_not_a_file",
            f"{path} is not a file (folders are not exported)",
            f"{path} 不是文件（不能导出文件夹）",
        )
    return real


def too_large(path: str, cap: int) -> ExportFileError:
    mb = cap // (1024 * 1024)
    return ExportFileError(
        413, "export_file_too_large", f"{path} is larger than {mb} MB", f"{path} 超过 {mb} MB"
    )


def read_file(root: str, path: str, cap: int) -> tuple[str, bytes]:
    """The file's name and bytes, after ``check_path`` and ``real_file``; at most ``cap`` bytes."""
    path = check_path(path)
    real = real_file(root, path)
    try:
        handle = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        raise ExportFileError(
            403, "export_file_unreadable", f"{path} cannot be read", f"无法读取 {path}"
        ) from None
    with os.fdopen(handle, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):  # swapped for a fifo or a device after the checks
            raise ExportFileError(
                400,
                "export_not_a_file",
                f"{path} is not a file (folders are not exported)",
                f"{path} 不是文件（不能导出文件夹）",
            )
        if info.st_size > cap:
            raise too_large(path, cap)
        data = stream.read(cap + 1)
    if len(data) > cap:  # grew while being read
        raise too_large(path, cap)
    return path.rsplit("/", 1)[-1], data  # the name the analyst chose, not a link target's
