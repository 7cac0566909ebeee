"""The file's type is on the allowlist, and its bytes are what its name says (default deny)."""

from __future__ import annotations

import json

from export_review.checks.content import TEXT_KINDS, StoredFile, is_xlsx
from export_review.checks.finding import Finding, Severity
from export_review.checks.policy import CheckPolicy

MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "jpg": (b"\xff\xd8\xff",), "pdf": (b"%PDF-",)}


def _matches(stored: StoredFile) -> bool:
    kind = stored.kind
    if kind in MAGIC:
        return stored.raw.startswith(MAGIC[kind])
    if kind == "xlsx":
        return is_xlsx(stored.raw, stored.path)
    if kind in TEXT_KINDS:
        text = stored.text()
        if text is None:
            return False
        if kind in ("json", "ipynb"):
            try:
                json.loads(text)
            except ValueError:
                return False
        return kind != "svg" or "<svg" in text.lower()
    return False


def file_type(stored: StoredFile, policy: CheckPolicy) -> list[Finding]:
    if stored.kind not in policy.limits.allowed_types:
        return [
            Finding(
                "file_type",
                "file_type_not_allowed",
                Severity.BLOCK,
                f"{stored.name}: .{stored.kind or '(none)'} files cannot be exported; allowed: "
                + ", ".join(policy.limits.allowed_types),
                f"{stored.name}：不允许导出 .{stored.kind or '(无)'} 文件；允许的类型："
                + "、".join(policy.limits.allowed_types),
                details={"kind": stored.kind},
            )
        ]
    if not _matches(stored):
        return [
            Finding(
                "file_type",
                "file_type_mismatch",
                Severity.BLOCK,
                f"{stored.name}: the content is not a valid .{stored.kind} file",
                f"{stored.name}：内容不是有效的 .{stored.kind} 文件",
                details={"kind": stored.kind},
            )
        ]
    return []
