"""The request digest every vote and the release manifest are signed over (R-EXP-6, R-SEC-9)."""

from __future__ import annotations

import hashlib
from typing import Any

from enclave.audit import canonical_json


def request_digest(
    *,
    request_id: str,
    version: int,
    previous_id: str | None,
    project: str,
    requester: str,
    justification: str,
    abroad: bool,
    records: int,
    files: list[tuple[str, str, int]],
    provenance: dict[str, Any] | None = None,
) -> str:
    """sha256 over the request's fixed content: who, why, where to, each file's name and hash, and
    for an export from a batch run its provenance (absent otherwise, so older digests still hold)."""
    payload = {
        "request": request_id,
        "version": version,
        "previous": previous_id,
        "project": project,
        "requester": requester,
        "justification": justification,
        "abroad": abroad,
        "records": records,
        "files": [{"name": n, "sha256": s, "size": z} for n, s, z in sorted(files)],
    }
    if provenance is not None:
        payload["provenance"] = provenance
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def vote_message(
    *,
    digest: str,
    request_id: str,
    file_name: str,
    file_sha256: str,
    reviewer: str,
    choice: str,
    comment: str | None,
    override: str | None,
) -> bytes:
    """The exact bytes a reviewer signs: the request digest and everything the vote says."""
    body: dict[str, Any] = {
        "digest": digest,
        "request": request_id,
        "file": file_name,
        "sha256": file_sha256,
        "reviewer": reviewer,
        "choice": choice,
        "comment": comment,
        "override": override,
    }
    return canonical_json(body).encode("utf-8")
