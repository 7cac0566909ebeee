"""Release and download: approved files and a signed manifest go to the outbox; only the requester
and the PI take them out, and every download is audited (R-EXP-1, R-EXP-3, R-EXP-5, R-EXP-6, T4).

Release is safe to repeat after a crash: the outbox writes are idempotent, and the request becomes
``released`` only in the transaction that commits after every object is written. Bytes are hashed
again on the way out, so a file changed since submission is never released or downloaded. Neither
trusts the state column: both recompute the committee's decision from the signed votes first.

The outbox and a download hold ``manifest.json`` beside a ``files/`` folder with the released files,
so no file name (``manifest.json`` included) can collide with the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Collection
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, object_session

from enclave import audit, signing
from enclave.audit import AuditAction, canonical_json
from enclave.config import Paths
from enclave.errors import BadInput, Refused
from export_review import permissions
from export_review.models import ExportRequest, ExportVote
from export_review.outbox import Outbox
from export_review.policy import CommitteeRule
from export_review.repository import get_request, lock_request
from export_review.submission import file_store
from export_review.voting import check_vote, keys_dir, verify_approval
from export_review.workflow import Actor, ExportState, check_transition, set_state

MANIFEST = "manifest.json"
FILES = "files"


def prefix_of(request: ExportRequest) -> str:
    return f"{request.project_id}/{request.id}"


def _tampered(request: ExportRequest, names: list[str], where: str) -> Refused:
    return Refused(
        "export_file_tampered",
        f"{names} of export request {request.id} no longer match their hashes in the {where}: not released",
        f"导出申请 {request.id} 的 {names} 在{where}中与其哈希不符：不予发布",
        details={"files": names, "where": where},
    )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _vote_entry(paths: Paths, request: ExportRequest, vote: ExportVote) -> dict[str, Any]:
    session = object_session(vote)
    assert session is not None
    check = check_vote(session, paths, request, vote)
    return {
        "reviewer": vote.reviewer,
        "choice": vote.choice,
        "comment": vote.comment,
        "override": vote.override_reason,
        "public_key": vote.public_key,
        "key_kind": check.key_kind,
        "key_fingerprint": check.fingerprint,
        "signature": vote.signature,
        "signature_valid": check.valid,
        "at": vote.created_at,
    }


def build_manifest(
    paths: Paths, request: ExportRequest, *, released_by: str, released_at: str
) -> dict[str, Any]:
    """Hashes, findings, votes with signatures and key kinds, the decision, lineage; signed by the
    enclave key."""
    body: dict[str, Any] = {
        "request": request.id,
        "version": request.version,
        "previous": request.previous_id,
        "project": request.project_id,
        "requester": request.requester,
        "justification": request.justification,
        "abroad": request.abroad,
        "records": request.records,
        "digest": request.digest,
        "files": [
            {
                "name": f.name,
                "sha256": f.sha256,
                "size": f.size,
                "findings": json.loads(f.findings_json),
                "path": f"{FILES}/{f.name}",
                "votes": [_vote_entry(paths, request, v) for v in request.votes if v.file_id == f.id],
            }
            for f in request.files
        ],
        "decision": json.loads(request.decision_json or "null"),
        "acro": json.loads(request.acro_json or "null"),
        "lineage": json.loads(request.lineage_json or "{}"),
        "released_by": released_by,
        "released_at": released_at,
    }
    key = signing.load_or_create_key(keys_dir(paths), signing.ENCLAVE_SIGNER)
    body["signature"] = {
        "signer": signing.ENCLAVE_SIGNER,
        "public_key": signing.public_key_hex(key),
        "signature": signing.sign(key, canonical_json(body).encode("utf-8")),
    }
    return body


def manifest_valid(manifest: dict[str, Any], public_key: str) -> bool:
    signature = manifest.get("signature") or {}
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return signature.get("public_key") == public_key and signing.verify(
        public_key, canonical_json(body).encode("utf-8"), str(signature.get("signature", ""))
    )


def release(
    session: Session,
    paths: Paths,
    request_id: str,
    *,
    user: str,
    outbox: Outbox,
    stewards: Collection[str] = (),
    committee: CommitteeRule | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Copy the approved files and the manifest to the outbox, then mark the request released.

    ``committee`` is the configured rule: the recorded one is never applied if it is weaker;
    ``today`` replaces the enclave's date in the project's period check (tests).
    """
    request = lock_request(session, request_id)
    permissions.check_user_can_release(session, request, user, stewards, today)
    check_transition(request, ExportState.RELEASED, Actor.RELEASER)
    verified = verify_approval(session, paths, request, committee or CommitteeRule())
    store = file_store(paths)
    payloads: dict[str, bytes] = {}
    for file in request.files:
        path = store.path_for(file.sha256)
        data = path.read_bytes() if path.is_file() else b""
        payloads[file.name] = data
    bad = sorted(f.name for f in request.files if _sha(payloads[f.name]) != f.sha256)
    if bad:
        raise _tampered(request, bad, "vault")
    released_at = audit.now_iso()
    manifest = build_manifest(paths, request, released_by=user, released_at=released_at)
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    prefix = prefix_of(request)
    for name, data in payloads.items():
        outbox.put(f"{prefix}/{FILES}/{name}", data)
    outbox.put(f"{prefix}/{MANIFEST}", manifest_bytes)
    info = {
        "location": outbox.location(prefix),
        "manifest_sha256": _sha(manifest_bytes),
        "released_at": released_at,
        "released_by": user,
    }
    request.release_json = json.dumps(info)
    set_state(
        session,
        request,
        ExportState.RELEASED,
        user=user,
        actor=Actor.RELEASER,
        details={
            **info,
            "files": [{"name": f.name, "sha256": f.sha256} for f in request.files],
            "verified": verified,
        },
    )
    return {"request": request.id, "state": request.state, **info}


def download(
    session: Session,
    paths: Paths,
    request_id: str,
    *,
    user: str,
    out_dir: Path,
    outbox: Outbox,
    committee: CommitteeRule | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """Write the manifest into ``out_dir`` and the released files into ``out_dir/files`` after
    checking the approval again and every hash (``today``: the date of the period check, for tests)."""
    request = get_request(session, request_id)
    permissions.check_user_can_download(session, request, user, today)
    verify_approval(session, paths, request, committee or CommitteeRule())
    prefix = prefix_of(request)
    manifest_bytes = outbox.get(f"{prefix}/{MANIFEST}")
    release_info = json.loads(request.release_json or "{}")
    public = signing.public_key_hex(signing.load_or_create_key(keys_dir(paths), signing.ENCLAVE_SIGNER))
    manifest = json.loads(manifest_bytes)
    if _sha(manifest_bytes) != release_info.get("manifest_sha256") or not manifest_valid(manifest, public):
        raise _tampered(request, [MANIFEST], "outbox")
    payloads = {f.name: outbox.get(f"{prefix}/{FILES}/{f.name}") for f in request.files}
    bad = sorted(f.name for f in request.files if _sha(payloads[f.name]) != f.sha256)
    if bad:
        raise _tampered(request, bad, "outbox")
    # Relative paths inside out_dir; names were validated at submission (no separators, no dots).
    layout = {f"{FILES}/{name}": data for name, data in payloads.items()} | {MANIFEST: manifest_bytes}
    existing = [str(out_dir / rel) for rel in layout if (out_dir / rel).exists()]
    if existing:
        raise BadInput(
            "export_download_exists", f"Will not overwrite {existing}", f"不会覆盖已有文件 {existing}"
        )
    # Audited before the bytes are written: if writing fails, the transaction (and record) rolls back.
    audit.record(
        session,
        AuditAction.EXPORT_DOWNLOAD,
        actor=user,
        obj=f"export:{request.id}",
        project=request.project_id,
        details={"files": [{"name": f.name, "sha256": f.sha256} for f in request.files], "to": str(out_dir)},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=out_dir))
    try:
        (staging / FILES).mkdir()
        (out_dir / FILES).mkdir(exist_ok=True)
        for rel, data in layout.items():
            (staging / rel).write_bytes(data)
        for rel in layout:
            os.replace(staging / rel, out_dir / rel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "request": request.id,
        "files": [str(out_dir / FILES / name) for name in payloads],
        "manifest": str(out_dir / MANIFEST),
    }
