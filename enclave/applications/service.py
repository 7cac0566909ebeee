"""Filing, attaching, submitting and withdrawing data-use applications (R-APP-1, 2, 12, 25).

A PI files a form from the catalog (a draft), attaches documents, and submits it: the form is
checked against the catalog again, the attachments its track and legal basis need must be there,
and the digest the committee countersigns is fixed. After submission the form is locked until
the Office returns it. Attachments are kept in the vault once per content, named by their sha256.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit, roles
from enclave.applications import form as forms
from enclave.applications.form import ApplicationForm, AttachmentKind
from enclave.applications.workflow import (
    EDITABLE_STATES,
    ApplicationActor,
    ApplicationState,
    check_transition,
    set_state,
)
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db.models import Application, ApplicationAttachment, ApplicationReview
from enclave.errors import BadInput, Forbidden, NotFound, Reason
from enclave.files import private_dir, write_private
from enclave.roles import Role

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
# Who sees every application: the Office, the Committee, the stewards and the auditors.
OVERSIGHT_ROLES = frozenset({Role.OFFICE, Role.COMMITTEE, Role.STEWARD, Role.SECURITY_AUDITOR})
SYSTEM_USER = "system"


def get(session: Session, app_id: str, *, lock: bool = False) -> Application:
    """The application, or ``NotFound`` (``application_not_found``). ``lock`` holds its row until commit."""
    app = session.get(Application, app_id, with_for_update=lock) if isinstance(app_id, str) else None
    if app is None:
        raise NotFound("application_not_found", f"No application {app_id!r}", f"没有编号为 {app_id!r} 的申请")
    return app


def form_of(app: Application) -> ApplicationForm:
    return forms.parse_form(json.loads(app.form_json))


def _check_applicant(app: Application, user: str) -> None:
    if user != app.applicant:
        raise Forbidden(
            "application_not_applicant",
            f"Only the applicant ({app.applicant}) may change application {app.id}",
            f"只有申请人（{app.applicant}）可以修改申请 {app.id}",
            details={"application": app.id, "user": user},
        )


def _check_editable(app: Application) -> None:
    if ApplicationState(app.state) not in EDITABLE_STATES:
        raise Forbidden(
            "application_locked",
            f"Application {app.id} is {app.state}: its form and attachments can no longer change",
            f"申请 {app.id} 的状态为 {app.state}：申请表和附件不能再修改",
            details={"application": app.id, "state": app.state},
        )


def _check_form(session: Session, form: ApplicationForm, applicant: str) -> int:
    """The team's rules and the catalog's; returns the application's level."""
    if form.pi != applicant:
        raise BadInput(
            "applicant_not_pi",
            f"The applicant ({applicant}) must be the team's pi, not {form.pi}",
            f"申请人（{applicant}）必须是团队的项目负责人，而不是 {form.pi}",
            details={"applicant": applicant, "pi": form.pi},
        )
    for member in form.team:
        roles.check_project_member_allowed(session, member.user, member.role.value)
    return forms.check_against_catalog(session, form)


def _apply_form(app: Application, form: ApplicationForm, level: int) -> None:
    app.title = form.title
    app.track = form.track.value
    app.level = level
    app.cross_border = form.cross_border
    app.form_json = audit.canonical_json(forms.form_to_json(form))
    app.updated_at = audit.now_iso()


def file_application(session: Session, paths: Paths, form: ApplicationForm, *, applicant: str) -> Application:
    """File a new application from the catalog (R-APP-1): checked, stored as a draft, audited."""
    level = _check_form(session, form, applicant)
    now = audit.now_iso()
    app = Application(
        id=f"app-{uuid.uuid4().hex[:16]}",
        applicant=applicant,
        state=ApplicationState.DRAFT.value,
        digest=None,
        revision=1,
        created_at=now,
    )
    _apply_form(app, form, level)
    session.add(app)
    session.flush()
    audit.record(
        session,
        AuditAction.APPLICATION_FILE,
        actor=applicant,
        obj=f"application:{app.id}",
        details={"title": app.title, "track": app.track, "level": level, "datasets": form.columns()},
    )
    return app


def update_application(
    session: Session, paths: Paths, app_id: str, form: ApplicationForm, *, user: str
) -> Application:
    """Replace the form of a draft or returned application (the applicant only)."""
    app = get(session, app_id, lock=True)
    _check_applicant(app, user)
    _check_editable(app)
    level = _check_form(session, form, app.applicant)
    _apply_form(app, form, level)
    session.flush()
    audit.record(
        session,
        AuditAction.APPLICATION_UPDATE,
        actor=user,
        obj=f"application:{app.id}",
        details={"revision": app.revision, "level": level, "datasets": form.columns()},
    )
    return app


def attachment_path(paths: Paths, sha256: str) -> Path:
    return paths.vault / "applications" / sha256[:2] / sha256


def _store(paths: Paths, data: bytes) -> str:
    """Keep ``data`` once, 0600 in the vault, under its sha256 (R-APP-25: never overwritten)."""
    sha = hashlib.sha256(data).hexdigest()
    target = attachment_path(paths, sha)
    private_dir(target.parent)
    if not target.exists():
        write_private(target, data, replace=False)
    return sha


def _parse_kind(kind: str) -> AttachmentKind:
    try:
        return AttachmentKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in AttachmentKind)
        raise BadInput(
            "attachment_kind_unknown",
            f"Unknown attachment kind {kind!r}; kinds: {kinds}",
            f"未知附件类型 {kind!r}；可用类型：{kinds}",
            details={"kind": kind, "kinds": [k.value for k in AttachmentKind]},
        ) from None


def _clean_filename(filename: str) -> str:
    name = Path(str(filename).replace("\\", "/")).name.strip()
    return name[:255] or "attachment"


def check_attachment_size(filename: str, size: int) -> None:
    """``BadInput`` (``attachment_too_large``) above the cap: callers may check before reading a file."""
    if size > MAX_ATTACHMENT_BYTES:
        raise BadInput(
            "attachment_too_large",
            f"{filename}: attachments are at most {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB",
            f"{filename}：附件不能超过 {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB",
            details={"size": size, "max": MAX_ATTACHMENT_BYTES},
        )


def attach(
    session: Session, paths: Paths, app_id: str, *, kind: str, filename: str, data: bytes, user: str
) -> ApplicationAttachment:
    """Attach a document of an allowed kind to a draft or returned application (the applicant only)."""
    attachment_kind = _parse_kind(kind)
    check_attachment_size(filename, len(data))
    if not data:
        raise BadInput("attachment_empty", f"{filename}: the file is empty", f"{filename}：文件为空")
    app = get(session, app_id, lock=True)
    _check_applicant(app, user)
    _check_editable(app)
    sha = _store(paths, data)
    existing = session.scalar(
        select(ApplicationAttachment).where(
            ApplicationAttachment.application_id == app.id,
            ApplicationAttachment.kind == attachment_kind.value,
            ApplicationAttachment.sha256 == sha,
        )
    )
    if existing is not None:
        return existing
    row = ApplicationAttachment(
        application_id=app.id,
        kind=attachment_kind.value,
        filename=_clean_filename(filename),
        sha256=sha,
        size=len(data),
        uploaded_by=user,
        uploaded_at=audit.now_iso(),
    )
    app.attachments.append(row)
    app.updated_at = row.uploaded_at
    session.flush()
    audit.record(
        session,
        AuditAction.APPLICATION_ATTACH,
        actor=user,
        obj=f"application:{app.id}",
        details={"kind": row.kind, "filename": row.filename, "sha256": sha, "size": row.size},
    )
    return row


def compute_digest(app: Application) -> str:
    """sha256 over the canonical JSON of the id, revision, form and attachments: what the
    committee countersigns (R-APP-7)."""
    content = {
        "id": app.id,
        "revision": app.revision,
        "form": json.loads(app.form_json),
        "attachments": sorted([a.kind, a.sha256] for a in app.attachments),
    }
    return hashlib.sha256(audit.canonical_json(content).encode("utf-8")).hexdigest()


def missing_attachments(app: Application, form: ApplicationForm) -> list[AttachmentKind]:
    present = {a.kind for a in app.attachments}
    return [kind for kind in forms.required_attachments(form) if kind.value not in present]


def _check_complete(app: Application, form: ApplicationForm) -> None:
    missing = missing_attachments(app, form)
    if missing:
        reasons = [
            Reason(
                "attachment_missing",
                f"{kind.value}: {forms.ATTACHMENT_LABELS[kind][0]} is required",
                f"{kind.value}：需要{forms.ATTACHMENT_LABELS[kind][1]}",
                details={"kind": kind.value},
            )
            for kind in missing
        ]
        raise BadInput(
            "application_incomplete",
            f"Application {app.id} lacks: " + ", ".join(k.value for k in missing),
            f"申请 {app.id} 缺少：" + "、".join(forms.ATTACHMENT_LABELS[k][1] for k in missing),
            reasons=reasons,
            details={"application": app.id, "missing": [k.value for k in missing]},
        )


def submit(session: Session, paths: Paths, app_id: str, *, user: str) -> Application:
    """Submit (or resubmit) the application: re-checked, complete, digest fixed, queued for the Office."""
    app = get(session, app_id, lock=True)
    _check_applicant(app, user)
    check_transition(app, ApplicationState.SUBMITTED, ApplicationActor.APPLICANT)
    form = form_of(app)
    app.level = _check_form(session, form, app.applicant)
    _check_complete(app, form)
    if app.state == ApplicationState.RETURNED:
        app.revision += 1
    app.digest = compute_digest(app)
    set_state(
        session,
        app,
        ApplicationState.SUBMITTED,
        user=user,
        actor=ApplicationActor.APPLICANT,
        details={"digest": app.digest, "level": app.level},
    )
    set_state(session, app, ApplicationState.OFFICE_REVIEW, user=SYSTEM_USER, actor=ApplicationActor.SYSTEM)
    return app


def withdraw(session: Session, app_id: str, *, user: str) -> Application:
    """The applicant withdraws the application before it is decided."""
    app = get(session, app_id, lock=True)
    _check_applicant(app, user)
    set_state(session, app, ApplicationState.WITHDRAWN, user=user, actor=ApplicationActor.APPLICANT)
    return app


def is_oversight(session: Session, viewer: str) -> bool:
    return bool(roles.roles_of(session, viewer) & OVERSIGHT_ROLES)


def involves(app: Application, viewer: str) -> bool:
    """Whether ``viewer`` is the applicant or on the team."""
    if viewer == app.applicant:
        return True
    team = json.loads(app.form_json).get("team", [])
    return any(member.get("user") == viewer for member in team)


def list_applications(session: Session, *, viewer: str) -> list[Application]:
    """The viewer's own applications (as applicant or team member); every one for oversight roles."""
    apps = list(session.scalars(select(Application).order_by(Application.created_at, Application.id)))
    if is_oversight(session, viewer):
        return apps
    return [app for app in apps if involves(app, viewer)]


def check_visible(session: Session, app: Application, viewer: str) -> None:
    if not (involves(app, viewer) or is_oversight(session, viewer)):
        raise Forbidden(
            "application_not_visible",
            f"{viewer} may not see application {app.id}",
            f"{viewer} 无权查看申请 {app.id}",
            details={"application": app.id, "user": viewer},
        )


def summary(app: Application) -> dict[str, Any]:
    return {
        "id": app.id,
        "title": app.title,
        "applicant": app.applicant,
        "state": app.state,
        "track": app.track,
        "level": app.level,
        "cross_border": app.cross_border,
        "revision": app.revision,
        "created_at": app.created_at,
        "submitted_at": app.submitted_at,
        "decided_at": app.decided_at,
    }


def _reviews(session: Session, app_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ApplicationReview)
        .where(ApplicationReview.application_id == app_id)
        .order_by(ApplicationReview.id)
    )
    return [
        {
            "revision": r.revision,
            "reviewer": r.reviewer,
            "outcome": r.outcome,
            "checklist": json.loads(r.checklist_json),
            "scorecard": json.loads(r.scorecard_json),
            "comment": r.comment,
            "created_at": r.created_at,
        }
        for r in rows
    ]


def _tally(session: Session, paths: Paths, app: Application, viewer: str) -> dict[str, Any] | None:
    """The committee's tally as ``viewer`` may see it (blind review is the committee module's rule),
    or ``None`` while that module is not installed."""
    try:
        from enclave.applications import voting  # the committee's module
    except ImportError:
        return None
    return voting.tally_of(session, paths, app.id, viewer=viewer)


def describe(session: Session, paths: Paths, app_id: str, *, viewer: str) -> dict[str, Any]:
    """Everything a viewer may see of an application: the shape of ``enclave application show --json``."""
    from enclave.applications import office  # office builds on this module

    app = get(session, app_id)
    check_visible(session, app, viewer)
    form = form_of(app)
    tally = _tally(session, paths, app, viewer)
    # Other people's applications in the history are for the reviewers' eyes only (R-APP-5).
    history = (
        office.history_summary(office.history(session, app.id)) if is_oversight(session, viewer) else None
    )
    return {
        **summary(app),
        "digest": app.digest,
        "organisation": form.organisation,
        "form": json.loads(app.form_json),
        "attachments": [
            {
                "kind": a.kind,
                "filename": a.filename,
                "sha256": a.sha256,
                "size": a.size,
                "uploaded_by": a.uploaded_by,
                "uploaded_at": a.uploaded_at,
            }
            for a in app.attachments
        ],
        "missing_attachments": [k.value for k in missing_attachments(app, form)],
        "reviews": _reviews(session, app.id),
        "votes": (tally or {}).get("votes", []),
        "tally": tally,
        "history": history,
    }


def approved_form(session: Session, app_id: str) -> ApplicationForm:
    """The form of an approved application: what provisioning may grant, and no more."""
    app = get(session, app_id)
    if app.state != ApplicationState.APPROVED:
        raise Forbidden(
            "application_not_approved",
            f"Application {app.id} is {app.state}, not approved",
            f"申请 {app.id} 的状态为 {app.state}，尚未批准",
            details={"application": app.id, "state": app.state},
        )
    return form_of(app)
