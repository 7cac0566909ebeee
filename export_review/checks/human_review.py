"""Images, PDFs and pages cannot be checked by machine: a reviewer must look at them. Scripts in
SVG or HTML are never exported (active content could fetch or leak data)."""

from __future__ import annotations

import re

from export_review.checks.content import StoredFile
from export_review.checks.finding import Finding, Severity
from export_review.checks.policy import CheckPolicy

ACTIVE = re.compile(r"<script|\son[a-z]+\s*=|javascript:|<iframe|<object|<embed", re.IGNORECASE)


def human_review(stored: StoredFile, policy: CheckPolicy) -> list[Finding]:
    findings = [
        Finding(
            "human_review",
            "image_for_review",
            Severity.REVIEW,
            f"{label}: an image or document; look at it before approving",
            f"{label}：图像或文档；批准前请查看",
            location={"item": label},
        )
        for label in stored.content.images
    ]
    if stored.kind in ("svg", "html") and ACTIVE.search(stored.text() or ""):
        findings.append(
            Finding(
                "human_review",
                "active_content",
                Severity.BLOCK,
                f"{stored.name} contains scripts or embedded content, which are never exported",
                f"{stored.name} 含有脚本或嵌入内容，不允许导出",
            )
        )
    return findings
