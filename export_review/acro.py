"""An ACRO ``results.json`` carried by the request, summarised to sit beside our own findings.

ACRO's verdicts come from the workspace, so they are shown, never trusted: our checks still run.
"""

from __future__ import annotations

import json
from typing import Any

from export_review.checks.content import StoredFile

ACRO_NAME = "results.json"


def acro_summary(files: list[StoredFile]) -> dict[str, Any] | None:
    """The outputs ACRO reported (status, type, summary, files, comments), or ``None``."""
    for stored in files:
        if stored.name.lower() != ACRO_NAME:
            continue
        try:
            data = json.loads(stored.text() or "")
        except ValueError:
            return {"file": stored.name, "error": "not valid JSON"}
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, dict):
            return {"file": stored.name, "error": "no ACRO results"}
        outputs = []
        for uid, output in results.items():
            if not isinstance(output, dict):
                continue
            outputs.append(
                {
                    "uid": str(uid),
                    "status": str(output.get("status", "")),
                    "type": str(output.get("type", "")),
                    "summary": str(output.get("summary", ""))[:1000],
                    "files": [
                        str(f.get("name", "")) if isinstance(f, dict) else str(f)
                        for f in output.get("files", []) or []
                    ],
                    "comments": [str(c)[:1000] for c in output.get("comments", []) or []],
                    "exception": output.get("exception"),
                }
            )
        return {"file": stored.name, "version": str(data.get("version", "")), "outputs": outputs}
    return None
