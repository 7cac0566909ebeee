"""Release and download: approved files and a signed manifest go to the outbox; only the requester
and the PI take them out, and every download is audited (R-EXP-1, R-EXP-3, R-EXP-5, R-EXP-6, T4).

Crash safety: the state database decides. Release stages the signed manifest in the vault
(``exports/manifests/<id>.json``), then commits the ``released`` state with its one audit record,
and only after that commit publishes the files and, last, the manifest to the outbox. So nothing
appears in the outbox (which a collecting group may read) before the release is recorded; a crash
before the commit leaves the request approved and the outbox untouched, to be released again; a
crash after it leaves a released request whose outbox lacks the manifest, which ``complete_release``
finishes from the staged manifest (checked against the committed hash) when the service starts
(``complete_releases``) or a download finds it missing. A manifest in the outbox means every file
is there. Bytes are hashed again on the way out, so a file changed since submission is never
released or downloaded. Neither trusts the state column: both recompute the committee's decision
from the signed votes first.

The outbox and a download hold ``manifest.json`` beside a ``files/`` folder with the released files,
so no file name (``manifest.json`` included) can collide with the manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Collection
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from enclave import audit, crashpoints, signing
from enclave.audit import AuditAction, canonical_json
from enclave.committee import CommitteeRule
from enclave.committee_keys import keys_dir
from enclave.config import Paths
from enclave.db.models import ExportRequest, ExportVote
from enclave.errors import BadInput, NotFound, Refused
from export_review import permissions, reproduction
from export_review.outbox import Outbox
from export_review.repository import get_request, lock_request
from export_review.submission import file_store
from export_review.voting import check_vote, verify_approval
from export_review.workflow import Actor, ExportState, check_transition, set_state

MANIFEST = "manifest.json"
FILES = "files"
STAGED = "manifests"  # under the vault's exports folder: the signed manifest of each release
_PENDING = "export_review.release.pending_publication"
Progress = Callable[[str, int, int], None]
"""``progress(step, files_done, files_total)``: ``step`` is ``verifying`` or ``publishing``."""

log = logging.getLogger(__name__)


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


def _reproduction_entry(request: ExportRequest) -> dict[str, Any] | None:
    """The latest rerun's verdict at release, without the per-cell examples (those stay in the vault)."""
    session = object_session(request)
    assert session is not None
    shown = reproduction.view(session, request)
    if shown is None:
        return None
    result = shown["result"] or {}
    return {
        "state": shown["state"],
        "rerun": shown["rerun"],
        "summary": result.get("summary"),
        "summary_zh": result.get("summary_zh"),
        "reason": result.get("reason"),
        "files": [
            {"name": f["name"], "status": f["status"], "reason": f["reason"], "reason_zh": f["reason_zh"]}
            | ({"nondeterminism": f["nondeterminism"]} if "nondeterminism" in f else {})
            for f in result.get("files", [])
        ],
        "reruns": len(shown["history"]),
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
    if request.provenance_json:  # an export from a batch run: where it came from and whether it reproduced
        body["provenance"] = json.loads(request.provenance_json)
        body["reproduction"] = _reproduction_entry(request)
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


def staged_manifest_path(paths: Paths, request_id: str) -> Path:
    return paths.exports / STAGED / f"{request_id}.json"


def _stage_manifest(paths: Paths, request_id: str, data: bytes) -> None:
    """Write the manifest into the vault atomically (temp name, fsync, rename), readable by the service."""
    path = staged_manifest_path(paths, request_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _publish(
    outbox: Outbox,
    prefix: str,
    payloads: dict[str, bytes],
    manifest_bytes: bytes,
    progress: Progress | None = None,
) -> None:
    """Every file, then the manifest: a manifest in the outbox means the release is complete there."""
    for i, (name, data) in enumerate(payloads.items()):
        if progress is not None:
            progress("publishing", i, len(payloads))
        outbox.put(f"{prefix}/{FILES}/{name}", data)
        if i == 0:
            crashpoints.reach("release-publishing")
    outbox.put(f"{prefix}/{MANIFEST}", manifest_bytes)
    if progress is not None:
        progress("publishing", len(payloads), len(payloads))


@sa_event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    """Publish the releases this transaction committed; a failure is logged (the release stands and
    ``complete_release`` finishes it later)."""
    for outbox, request_id, prefix, payloads, manifest_bytes, progress in session.info.pop(_PENDING, []):
        try:
            _publish(outbox, prefix, payloads, manifest_bytes, progress)
        except Exception:
            log.exception("could not publish export %s to the outbox; it is completed later", request_id)


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_publication(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)


def _incomplete(request: ExportRequest, why: str) -> Refused:
    return Refused(
        "export_release_incomplete",
        f"Export request {request.id} is released but its outbox copy cannot be completed: {why}",
        f"导出申请 {request.id} 已发布，但无法补全其发件箱副本：{why}",
        details={"why": why},
    )


def _published_manifest(outbox: Outbox, prefix: str) -> bytes | None:
    try:
        return outbox.get(f"{prefix}/{MANIFEST}")
    except NotFound:
        return None


def complete_release(paths: Paths, request: ExportRequest, outbox: Outbox) -> bool:
    """Finish publishing a released request whose outbox has no manifest (a crash after the commit):
    the files from the vault and the staged manifest, each checked against its committed hash.
    True if it published anything."""
    if request.state != ExportState.RELEASED:
        return False
    prefix = prefix_of(request)
    if _published_manifest(outbox, prefix) is not None:
        return False
    expected = json.loads(request.release_json or "{}").get("manifest_sha256")
    staged = staged_manifest_path(paths, request.id)
    manifest_bytes = staged.read_bytes() if staged.is_file() else b""
    if not expected or _sha(manifest_bytes) != expected:
        raise _incomplete(request, "the staged manifest is missing or does not match the release record")
    store = file_store(paths)
    payloads = {}
    for file in request.files:
        path = store.path_for(file.sha256)
        payloads[file.name] = path.read_bytes() if path.is_file() else b""
    bad = sorted(f.name for f in request.files if _sha(payloads[f.name]) != f.sha256)
    if bad:
        raise _tampered(request, bad, "vault")
    _publish(outbox, prefix, payloads, manifest_bytes)
    log.warning("completed the outbox copy of export %s after an interrupted release", request.id)
    return True


def complete_releases(session: Session, paths: Paths, outbox: Outbox) -> list[str]:
    """``complete_release`` for every released request (the service calls it when it starts);
    the ids it completed. One that cannot be completed is logged and left for a steward."""
    completed = []
    released = select(ExportRequest).where(ExportRequest.state == ExportState.RELEASED.value)
    for request in session.scalars(released):
        try:
            if complete_release(paths, request, outbox):
                completed.append(request.id)
        except (Refused, OSError):
            log.exception("export %s: the outbox copy could not be completed", request.id)
    return completed


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
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Copy the approved files and the manifest to the outbox, then mark the request released.

    ``committee`` is the configured rule: the recorded one is never applied if it is weaker;
    ``today`` replaces the enclave's date in the project's period check (tests); ``progress`` is told
    each file verified, then (after the commit) each file published.
    """
    request = lock_request(session, request_id)
    permissions.check_user_can_release(session, request, user, stewards, today)
    check_transition(request, ExportState.RELEASED, Actor.RELEASER)
    verified = verify_approval(session, paths, request, committee or CommitteeRule())
    store = file_store(paths)
    payloads: dict[str, bytes] = {}
    for i, file in enumerate(request.files):
        if progress is not None:
            progress("verifying", i, len(request.files))
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
    _stage_manifest(paths, request.id, manifest_bytes)
    crashpoints.reach("release-staged")
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
    # Published by ``_publish_after_commit`` once this transaction has committed, never before.
    pending = (outbox, request.id, prefix, payloads, manifest_bytes, progress)
    session.info.setdefault(_PENDING, []).append(pending)
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
    complete_release(paths, request, outbox)  # a crash after the release's commit left it unfinished
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
