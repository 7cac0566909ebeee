"""What the pages and the API both do, in one place: submit uploads, vote, release, build the download.

Every rule is the domain layer's (``export_review``); this module only adapts HTTP inputs to it, each
call in one transaction (nothing half-written).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from enclave.committee_keys import registered_key
from enclave.db.models import ExportRequest
from enclave.errors import BadInput, EnclaveError, NotFound
from export_review import permissions, reproduction
from export_review.repository import get_request
from export_review.service import ExportService
from export_review.web import notebook as notebooks
from export_review.web.preview import IMAGE_TYPES, FilePreview, file_preview, finding_marks, verified
from export_review.web.sanitise import sanitise_svg

MAX_UPLOAD_NAME = 200


@dataclass(frozen=True)
class Upload:
    """One uploaded file: the name the browser sent and its bytes."""

    name: str
    body: bytes


def _safe_upload_name(name: str) -> str:
    """Refuse any name that is not a bare file name before it touches the disk (no paths, no dots)."""
    if not name or len(name) > MAX_UPLOAD_NAME or Path(name).name != name or "\\" in name or name[0] == ".":
        raise BadInput(
            "export_file_name_invalid",
            f"Upload a file with a plain name, not {name[:MAX_UPLOAD_NAME]!r}",
            f"请上传名称简单的文件，而不是 {name[:MAX_UPLOAD_NAME]!r}",
        )
    return name


def parse_records(raw: str | None) -> int | None:
    """The declared number of records going abroad, from a form field (blank: not declared)."""
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(
            "export_records_invalid", "Records must be a whole number", "记录数必须是整数"
        ) from None
    if value < 0:
        raise BadInput("export_records_invalid", "Records cannot be negative", "记录数不能为负数")
    return value


def submit_uploads(
    ctx: ExportService,
    *,
    user: str,
    project: str,
    justification: str,
    uploads: Sequence[Upload],
    abroad: bool = False,
    records: int | None = None,
    run: str | None = None,
    outputs: Sequence[str] | None = None,
    revises: str | None = None,
) -> dict[str, Any]:
    """Write the uploads to a private temporary folder, then submit them as ``user`` (with ``run``:
    that run's outputs, the named ones or all, plus the uploads compared with them by name)."""
    names = [_safe_upload_name(u.name) for u in uploads]
    with tempfile.TemporaryDirectory(prefix="export-upload-") as tmp:
        files = []
        for index, (name, upload) in enumerate(zip(names, uploads, strict=True)):
            folder = Path(tmp) / str(index)  # one folder each: a repeated name is the domain's to refuse
            folder.mkdir()
            (folder / name).write_bytes(upload.body)
            files.append(folder / name)
        return ctx.submit(
            user=user,
            project=project,
            justification=justification,
            files=files,
            abroad=abroad,
            records=records,
            revises=revises,
            run=run,
            outputs=outputs,
        )


def _without_location(release: dict[str, Any] | None) -> dict[str, Any] | None:
    """The release facts without the outbox location: a server path is for operators (the CLI)."""
    return None if release is None else {k: v for k, v in release.items() if k != "location"}


def describe(ctx: ExportService, request_id: str, user: str) -> dict[str, Any]:
    info = ctx.describe(request_id, viewer=user)
    return {**info, "release": _without_location(info.get("release"))}


def release(ctx: ExportService, request_id: str, *, user: str) -> dict[str, Any]:
    return _without_location(ctx.release(request_id, user=user)) or {}


def download_zip(ctx: ExportService, request_id: str, *, user: str) -> tuple[str, bytes]:
    """The released files and the signed manifest as one zip; audited by the domain's ``download``."""
    with tempfile.TemporaryDirectory(prefix="export-download-") as tmp:
        out = Path(tmp) / "out"
        result = ctx.download(request_id, user=user, out_dir=out)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in [*map(Path, result["files"]), Path(result["manifest"])]:
                archive.write(path, path.relative_to(out).as_posix())  # files/<name> and manifest.json
    return f"{request_id}.zip", buffer.getvalue()


@dataclass(frozen=True)
class Abilities:
    """Which buttons a user sees on a request; the server checks again when they are pressed."""

    vote: bool
    release: bool
    download: bool
    preview: bool
    voted_files: frozenset[str]
    own_key: bool = False  # the reviewer signs with their own key: only the CLI can cast their vote
    rerun: bool = False  # may ask for another reproducibility rerun (a request made from a run)


def voted_on_every_file(request: ExportRequest, user: str) -> bool:
    """``user`` has cast a vote on each file of ``request``: nothing is left for them to vote on."""
    return {v.file_id for v in request.votes if v.reviewer == user} == {f.id for f in request.files}


def abilities(ctx: ExportService, request_id: str, user: str) -> Abilities:
    settings = ctx.settings()
    with ctx.session() as session:
        request = get_request(session, request_id)
        voted = frozenset(v.file.name for v in request.votes if v.reviewer == user)
        return Abilities(
            vote=request.state == "in_review"
            and permissions.user_can_vote(session, request, user)
            and not voted_on_every_file(request, user),
            release=request.state == "approved"
            and permissions.user_can_release(session, request, user, settings.stewards),
            download=permissions.user_can_download(session, request, user),
            preview=permissions.user_can_preview(session, request, user, settings.stewards),
            voted_files=voted,
            own_key=registered_key(ctx.paths, user) is not None,
            rerun=_can(lambda: reproduction.check_user_can_rerun(session, request, user, settings.stewards)),
        )


@dataclass(frozen=True)
class Actionable:
    """What a reviewer's queue holds for them: requests to vote on, requests they voted on every file of
    that wait for the other members, and approved requests to release."""

    vote: set[str]
    voted: set[str]
    release: set[str]


def actionable(ctx: ExportService, request_ids: Collection[str], user: str) -> Actionable:
    """Of ``request_ids``, those ``user`` can vote on now, those they have voted on in full (still in
    review), and those they can release: the rules of ``abilities`` for a whole queue, in one session
    with the files and votes loaded together.

    Who may vote on or release a request depends on its project (the user's roles there, whether it
    is open for exports) and on whether the user made it, so each rule is asked once per project and
    side (tests/export_review/web/test_actions.py holds this to ``abilities``)."""
    settings = ctx.settings()
    if not request_ids:
        return Actionable(set(), set(), set())
    with ctx.session() as session:
        query = (
            select(ExportRequest)
            .where(ExportRequest.id.in_(list(request_ids)))
            .options(selectinload(ExportRequest.files), selectinload(ExportRequest.votes))
        )
        asked: dict[tuple[str, str, bool], bool] = {}

        def allowed(rule: str, request: ExportRequest) -> bool:
            key = (rule, request.project_id, request.requester == user)
            if key not in asked:
                asked[key] = (
                    permissions.user_can_vote(session, request, user)
                    if rule == "vote"
                    else permissions.user_can_release(session, request, user, settings.stewards)
                )
            return asked[key]

        found = Actionable(set(), set(), set())
        for request in session.scalars(query):
            if request.state == "in_review" and allowed("vote", request):
                (found.voted if voted_on_every_file(request, user) else found.vote).add(request.id)
            elif request.state == "approved" and allowed("release", request):
                found.release.add(request.id)
        return found


def _can(check: Callable[[], None]) -> bool:
    try:
        check()
    except EnclaveError:
        return False
    return True


def check_can_preview(ctx: ExportService, request_id: str, user: str) -> None:
    """``permissions.check_user_can_preview``: reviewers only."""
    settings = ctx.settings()
    with ctx.session() as session:
        permissions.check_user_can_preview(session, get_request(session, request_id), user, settings.stewards)


def previews(ctx: ExportService, request_id: str, user: str) -> dict[str, FilePreview]:
    """Each file's preview (tables with the findings' cells marked), for a reviewer; empty for others."""
    settings = ctx.settings()
    with ctx.session() as session:
        request = get_request(session, request_id)
        if not permissions.user_can_preview(session, request, user, settings.stewards):
            return {}
        return {
            f.name: file_preview(ctx.paths, f, finding_marks(json.loads(f.findings_json)))
            for f in request.files
        }


def _image_not_found(request_id: str, file_name: str) -> NotFound:
    return NotFound(
        "export_image_not_found",
        f"Export request {request_id} has no image {file_name!r}",
        f"导出申请 {request_id} 中没有图片 {file_name!r}",
    )


def _verified_bytes(
    ctx: ExportService, request_id: str, file_name: str, user: str, kinds: Collection[str]
) -> tuple[str, bytes]:
    """A reviewer's copy of one stored file of ``kinds``, from the vault, checked against its hash."""
    check_can_preview(ctx, request_id, user)
    with ctx.session() as session:
        match = [f for f in get_request(session, request_id).files if f.name == file_name and f.kind in kinds]
        if not match:
            raise _image_not_found(request_id, file_name)
        stored = verified(ctx.paths, match[0])
        if stored is None:
            raise NotFound(
                "export_image_not_found",
                f"The stored copy of {file_name!r} is missing or changed",
                f"{file_name!r} 的存储副本缺失或已被更改",
            )
        return match[0].kind, stored.raw


def image(ctx: ExportService, request_id: str, file_name: str, user: str) -> tuple[str, bytes]:
    """A stored raster image's MIME type and bytes, for a reviewer; checked against its hash."""
    kind, data = _verified_bytes(ctx, request_id, file_name, user, IMAGE_TYPES)
    return IMAGE_TYPES[kind], data


def svg_image(ctx: ExportService, request_id: str, file_name: str, user: str) -> bytes:
    """A stored SVG rebuilt by the sanitiser, for a reviewer (``sanitise.sanitise_svg``)."""
    return sanitise_svg(_verified_bytes(ctx, request_id, file_name, user, {"svg"})[1])


def notebook_image(
    ctx: ExportService, request_id: str, file_name: str, ref: str, user: str
) -> tuple[str, bytes]:
    """One image output of a stored notebook, for a reviewer (``notebook.notebook_image``)."""
    data = _verified_bytes(ctx, request_id, file_name, user, {"ipynb"})[1]
    return notebooks.notebook_image(data.decode("utf-8", errors="replace"), ref)
