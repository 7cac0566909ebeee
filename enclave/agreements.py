"""Data-use agreements: the gate before any data is provisioned (R-APP-15, T14, R-GOV-12).

A DUA is recorded for an approved application, either as the signed PDF (stored in the vault by its
sha256) or as an electronic signature: the PI signs a canonical statement of the agreement (the
application, its digest, the dates and the standard terms) with their server-held Ed25519 key, and
the statement is stored the same way. The DUA must cover the approved period; provisioning refuses
an application without one (``check_dua``, ``dua_missing``).

R-GOV-12: the obligations last six years after the agreement ends, so the record is kept at least
that long (``retain_until``). Nothing in the lifecycle deletes it: project destruction removes the
project's folder and secrets only, and ``vault/agreements`` is outside both (and inside every backup).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit, roles, signing
from enclave.applications.form import ApplicationForm
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db.models import Application, DataUseAgreement
from enclave.errors import BadInput, Forbidden
from enclave.files import private_dir, write_private
from enclave.roles import Role

KINDS = ("pdf", "esign")
MAX_PDF_BYTES = 20 * 1024 * 1024
PDF_MAGIC = b"%PDF-"
RETAIN_YEARS = 6  # R-GOV-12: DUA obligations last six years after termination
STATEMENT_FORMAT = "enclave.dua/1"
STATEMENT_FILENAME = "dua-statement.json"
MAX_SIGNER_CHARS = 64
MAX_FILENAME_CHARS = 255

# The standard terms every DUA carries (R-APP-15, R-GOV-12); the e-signed statement quotes them.
TERMS: tuple[tuple[str, str, str], ...] = (
    (
        "purpose_limitation",
        "The data are used only for the purpose approved in the application.",
        "数据仅用于申请获批的用途。",
    ),
    (
        "no_reidentification",
        "No attempt is made, ever, to re-identify any person in the data.",
        "任何时候均不得试图重新识别数据中的任何个人。",
    ),
    (
        "no_linkage",
        "The data are never linked with external data.",
        "不得将数据与外部数据关联。",
    ),
    (
        "no_onward_provision",
        "Neither the data nor anything derived from them is provided to any third party.",
        "不得向任何第三方提供数据或由其派生的内容。",
    ),
    (
        "confidentiality",
        f"The confidentiality obligations last {RETAIN_YEARS} years after the agreement ends.",
        f"保密义务在协议终止后持续 {RETAIN_YEARS} 年。",
    ),
)


def agreements_dir(paths: Paths) -> Path:
    """Where DUA documents live, by sha256: in the vault, never under a project's folder."""
    return paths.vault / "agreements"


def document_path(paths: Paths, sha256: str) -> Path:
    return agreements_dir(paths) / sha256


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def retain_until(end: date) -> date:
    """The earliest day the DUA record may go: six years after its end (R-GOV-12)."""
    return add_years(end, RETAIN_YEARS)


@dataclass(frozen=True)
class ApprovedApplication:
    """An approved application and its form: what provisioning and the DUA are measured against."""

    application: Application
    form: ApplicationForm

    @property
    def id(self) -> str:
        return self.application.id

    @property
    def applicant(self) -> str:
        return self.application.applicant


def application(session: Session, app_id: str) -> Application:
    """The application, or ``NotFound`` (``application_not_found``)."""
    from enclave.applications import service

    return service.get(session, app_id)


def approved_application(session: Session, app_id: str) -> ApprovedApplication:
    """The application and its approved form; ``application_not_found`` or ``application_not_approved``."""
    from enclave.applications import service

    return ApprovedApplication(service.get(session, app_id), service.approved_form(session, app_id))


def _check_recorder(
    session: Session, approved: ApprovedApplication, kind: str, actor: str, signer: str
) -> None:
    """A steward records a DUA; the PI may e-sign their own. No steward records one for their own
    application on paper (nobody acts on their own application)."""
    pi_signing = kind == "esign" and actor == signer == approved.applicant
    if pi_signing:
        return
    roles.check_role(session, actor, Role.STEWARD, "record a data-use agreement", "登记数据使用协议")
    if kind == "pdf" and actor == approved.applicant:
        raise Forbidden(
            "own_application",
            f"{actor} cannot record the agreement of their own application {approved.id}",
            f"{actor} 不能登记自己的申请 {approved.id} 的协议",
            details={"application": approved.id, "user": actor},
        )


def _check_dates(approved: ApprovedApplication, start: date, end: date) -> None:
    if start > end:
        raise BadInput(
            "dua_period_invalid",
            f"The agreement's start {start} is after its end {end}",
            f"协议开始日期 {start} 晚于结束日期 {end}",
        )
    period = approved.form.period
    if start > period.start or end < period.end:
        raise BadInput(
            "dua_period_mismatch",
            f"The agreement ({start} to {end}) must cover the approved period "
            f"({period.start} to {period.end})",
            f"协议期限（{start} 至 {end}）必须涵盖批准的使用期限（{period.start} 至 {period.end}）",
            details={
                "dua": {"start": start.isoformat(), "end": end.isoformat()},
                "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
            },
        )


def _dua_invalid(en: str, zh: str) -> BadInput:
    return BadInput("dua_invalid", en, zh)


def _check_pdf(pdf: bytes | None) -> bytes:
    if not pdf:
        raise _dua_invalid("A PDF agreement needs the signed PDF file", "PDF 协议需要提供已签署的 PDF 文件")
    if len(pdf) > MAX_PDF_BYTES:
        raise _dua_invalid(
            f"The agreement file is larger than {MAX_PDF_BYTES} bytes",
            f"协议文件超过 {MAX_PDF_BYTES} 字节",
        )
    if not pdf.startswith(PDF_MAGIC):
        raise _dua_invalid("The agreement file is not a PDF", "协议文件不是 PDF")
    return pdf


def statement(approved: ApprovedApplication, *, signer: str, start: date, end: date) -> bytes:
    """The canonical text the PI e-signs: the application, its digest, the dates and the terms."""
    body = {
        "format": STATEMENT_FORMAT,
        "application": approved.id,
        "digest": approved.application.digest,
        "title": approved.application.title,
        "signer": signer,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "retain_until": retain_until(end).isoformat(),
        "terms": [{"id": tid, "en": en, "zh": zh} for tid, en, zh in TERMS],
    }
    return audit.canonical_json(body).encode("utf-8")


def _store(paths: Paths, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    folder = private_dir(agreements_dir(paths))
    write_private(folder / sha, data, replace=False)  # content-addressed: an existing copy is the same
    return sha


def record_dua(
    session: Session,
    paths: Paths,
    app_id: str,
    *,
    kind: str,
    start: date,
    end: date,
    actor: str,
    signer: str,
    pdf: bytes | None = None,
    filename: str | None = None,
) -> DataUseAgreement:
    """Record the signed DUA of an approved application (R-APP-15), audited (``dua.record``).

    ``pdf``: the signed PDF (``signer`` names who signed it). ``esign``: ``signer`` must be the PI,
    whose key signs the statement. A steward records either; the PI may e-sign their own."""
    if kind not in KINDS:
        raise BadInput(
            "dua_kind_invalid",
            f"An agreement is recorded as one of {', '.join(KINDS)}, not {kind!r}",
            f"协议的登记方式为 {', '.join(KINDS)} 之一，而不是 {kind!r}",
        )
    approved = approved_application(session, app_id)
    signer = (signer or "").strip()
    if not signer or len(signer) > MAX_SIGNER_CHARS:
        raise BadInput("dua_signer_invalid", "The agreement needs its signer", "协议需要签署人")
    _check_recorder(session, approved, kind, actor, signer)
    _check_dates(approved, start, end)
    public_key = None
    if kind == "pdf":
        sha = _store(paths, _check_pdf(pdf))
        name = Path(filename or "agreement.pdf").name[-MAX_FILENAME_CHARS:] or "agreement.pdf"
        signature = None
    else:
        if pdf is not None:
            raise _dua_invalid("An e-signed agreement takes no file", "电子签署的协议不附文件")
        if signer != approved.applicant:
            raise Forbidden(
                "dua_signer_not_pi",
                f"The agreement of {app_id} is e-signed by its PI {approved.applicant}, not {signer}",
                f"申请 {app_id} 的协议须由项目负责人 {approved.applicant} 电子签署，而不是 {signer}",
                details={"application": app_id, "signer": signer, "pi": approved.applicant},
            )
        text = statement(approved, signer=signer, start=start, end=end)
        key = signing.load_or_create_key(paths.vault / "keys", signer)
        signature = signing.sign(key, text)
        public_key = signing.public_key_hex(key)
        sha = _store(paths, text)
        name = STATEMENT_FILENAME
    row = DataUseAgreement(
        application_id=app_id,
        kind=kind,
        sha256=sha,
        filename=name,
        signer=signer,
        signature=signature,
        start=start.isoformat(),
        end=end.isoformat(),
        retain_until=retain_until(end).isoformat(),
        recorded_by=actor,
        recorded_at=audit.now_iso(),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        AuditAction.DUA_RECORD,
        actor=actor,
        obj=f"application:{app_id}",
        details={
            "dua": row.id,
            "kind": kind,
            "sha256": sha,
            "filename": name,
            "signer": signer,
            "start": row.start,
            "end": row.end,
            "retain_until": row.retain_until,
            **({"key_fingerprint": signing.fingerprint(public_key)} if public_key else {}),
        },
    )
    return row


def agreements_of(session: Session, app_id: str) -> list[DataUseAgreement]:
    """Every DUA recorded for the application, oldest first (none is ever deleted)."""
    rows = session.scalars(
        select(DataUseAgreement)
        .where(DataUseAgreement.application_id == app_id)
        .order_by(DataUseAgreement.id)
    )
    return list(rows)


def current_dua(session: Session, app_id: str) -> DataUseAgreement | None:
    """The latest DUA recorded for the application, or None."""
    rows = agreements_of(session, app_id)
    return rows[-1] if rows else None


def verify_document(paths: Paths, dua: DataUseAgreement) -> bool:
    """The stored document still has its sha256 and, if e-signed, the PI's signature verifies."""
    path = document_path(paths, dua.sha256)
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if hashlib.sha256(data).hexdigest() != dua.sha256:
        return False
    if dua.kind != "esign":
        return True
    key_file = signing.key_path(paths.vault / "keys", dua.signer)
    if not key_file.is_file() or not dua.signature:
        return False
    public = signing.public_key_hex(signing.load_or_create_key(paths.vault / "keys", dua.signer))
    return signing.verify(public, data, dua.signature)


def check_dua(session: Session, app_id: str, *, paths: Paths | None = None) -> DataUseAgreement:
    """The application's DUA, or ``Forbidden`` ``dua_missing`` (T14: no data without a signed DUA).

    With ``paths``, the stored document is checked too (``dua_invalid`` if it is gone or altered)."""
    dua = current_dua(session, app_id)
    if dua is None:
        raise Forbidden(
            "dua_missing",
            f"No signed data-use agreement is recorded for application {app_id}: "
            "no data is provisioned without one (R-APP-15)",
            f"申请 {app_id} 尚未登记已签署的数据使用协议：未签署协议不得提供数据（R-APP-15）",
            details={"application": app_id},
        )
    if paths is not None and not verify_document(paths, dua):
        raise Forbidden(
            "dua_invalid",
            f"The data-use agreement of application {app_id} is missing from the vault or was altered",
            f"申请 {app_id} 的数据使用协议在保险库中缺失或已被篡改",
            details={"application": app_id, "sha256": dua.sha256},
        )
    return dua


def dua_to_dict(dua: DataUseAgreement, *, verified: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": dua.id,
        "application": dua.application_id,
        "kind": dua.kind,
        "sha256": dua.sha256,
        "filename": dua.filename,
        "signer": dua.signer,
        "signature": dua.signature,
        "start": dua.start,
        "end": dua.end,
        "retain_until": dua.retain_until,
        "recorded_by": dua.recorded_by,
        "recorded_at": dua.recorded_at,
    }
    if verified is not None:
        out["verified"] = verified
    return out


def describe(session: Session, paths: Paths, app_id: str) -> dict[str, Any]:
    """The JSON of ``enclave agreement show``: the current DUA and every earlier one."""
    app = application(session, app_id)
    rows = agreements_of(session, app_id)
    listed = [dua_to_dict(r, verified=verify_document(paths, r)) for r in rows]
    return {
        "application": app_id,
        "state": app.state,
        "current": listed[-1] if listed else None,
        "agreements": listed,
        "terms": [{"id": tid, "en": en, "zh": zh} for tid, en, zh in TERMS],
    }
