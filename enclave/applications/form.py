"""The data-use application form (R-APP-2) and its checks against the catalog.

``ApplicationForm`` is the shape a PI files: purpose and its non-profit category (R-APP-3), the
track (R-APP-12), the minimal columns and time range of each dataset (R-APP-4), the team, the
period, the legal basis (R-APP-19) and the ethics reference (R-APP-20). ``check_against_catalog``
adds what needs the catalog: datasets exist and are shared, columns exist and are never direct
identifiers (R-CAT-6, R-CAT-14), and returns the application's level (the highest requested).
Attachments are rows of their own; ``required_attachments`` says which kinds a form needs.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.orm import Session

from enclave import catalog
from enclave.errors import BadInput, NotFound, Reason
from enclave.roles import ProjectRole
from enclave.specs import (
    MIN_K,
    NAME_PATTERN,
    USER_PATTERN,
    AccessMode,
    ColumnRole,
    Level,
    Period,
    ShareType,
    TimeRange,  # the records wanted (R-APP-4): the same shape the approved project spec carries
    load_yaml,
)


class PurposeCategory(StrEnum):
    """Non-profit purposes only (R-APP-3): no category exists for commercial use."""

    RESEARCH = "research"
    CONTEST = "contest"
    AI_TRAINING = "ai_training"


class Track(StrEnum):
    """The three application tracks, each with its own attachments (R-APP-12)."""

    IN_HOUSE = "in_house"
    DOMESTIC_PARTNER = "domestic_partner"
    FOREIGN = "foreign"


class TeamRole(StrEnum):
    """The project roles an application's team may ask for: its members become the project's."""

    PI = ProjectRole.PI.value
    ANALYST = ProjectRole.ANALYST.value


class LegalBasis(StrEnum):
    """Why the data may be used (R-APP-19): subject consent, or one of its exceptions."""

    CONSENT = "consent"
    CONSENT_WAIVER = "consent_waiver"  # granted by the ethics committee only (R-APP-20)
    LIMITED_DATA_SET = "limited_data_set"
    PUBLIC_INTEREST = "public_interest"
    TREATMENT = "treatment"
    TO_SUBJECT = "to_subject"


class AttachmentKind(StrEnum):
    ETHICS_APPROVAL = "ethics_approval"
    CONSENT_WAIVER = "consent_waiver"
    COOPERATION_AGREEMENT = "cooperation_agreement"
    PARTNER_SECURITY = "partner_security"
    GOVERNMENT_APPROVAL = "government_approval"
    DUA_DRAFT = "dua_draft"
    OTHER = "other"


ATTACHMENT_LABELS: dict[AttachmentKind, tuple[str, str]] = {
    AttachmentKind.ETHICS_APPROVAL: ("ethics committee approval", "伦理审查批件"),
    AttachmentKind.CONSENT_WAIVER: ("ethics committee consent waiver", "伦理委员会知情同意豁免"),
    AttachmentKind.COOPERATION_AGREEMENT: ("cooperation agreement", "合作协议"),
    AttachmentKind.PARTNER_SECURITY: (
        "evidence of the partner's data-security capability",
        "合作方数据安全能力证明",
    ),
    AttachmentKind.GOVERNMENT_APPROVAL: ("government approval document", "政府主管部门批准文件"),
    AttachmentKind.DUA_DRAFT: ("draft data-use agreement", "数据使用协议草案"),
    AttachmentKind.OTHER: ("other document", "其他材料"),
}
# R-APP-19: with these bases the form must say what the consent or the waiver covers.
CONSENT_BASES = frozenset({LegalBasis.CONSENT, LegalBasis.CONSENT_WAIVER})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class DatasetRequest(_Strict):
    columns: Annotated[list[Annotated[str, Field(pattern=NAME_PATTERN)]], Field(min_length=1)]
    time_range: TimeRange | None = None

    @field_validator("columns")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("columns must not repeat")
        return value


class TeamMember(_Strict):
    user: Annotated[str, Field(pattern=USER_PATTERN)]
    role: TeamRole


class ApplicationForm(_Strict):
    """A data-use application as the PI files it (R-APP-2)."""

    title: Annotated[str, Field(min_length=1, max_length=200)]
    purpose: Annotated[str, Field(min_length=1, max_length=10_000)]
    purpose_category: PurposeCategory
    track: Track
    organisation: Annotated[str, Field(min_length=1, max_length=200)]
    datasets: dict[Annotated[str, Field(pattern=NAME_PATTERN)], DatasetRequest]
    team: Annotated[list[TeamMember], Field(min_length=1)]
    period: Period
    access: AccessMode = AccessMode.AGGREGATE
    min_cell_count: int = MIN_K
    legal_basis: LegalBasis
    consent: Annotated[str, Field(max_length=10_000)] | None = None
    ethics_ref: Annotated[str, Field(max_length=200)] | None = None
    cross_border: bool = False

    @field_validator("datasets")
    @classmethod
    def _datasets_not_empty(cls, value: dict[str, DatasetRequest]) -> dict[str, DatasetRequest]:
        if not value:
            raise ValueError("at least one dataset is required")
        return value

    @field_validator("min_cell_count")
    @classmethod
    def _k_floor(cls, value: int) -> int:
        if value < MIN_K:
            raise ValueError(f"min_cell_count must be at least {MIN_K} (R-PREP-13)")
        return value

    @field_validator("team")
    @classmethod
    def _one_pi(cls, value: list[TeamMember]) -> list[TeamMember]:
        users = [m.user for m in value]
        if len(set(users)) != len(users):
            raise ValueError("a person appears in the team once")
        if sum(m.role is TeamRole.PI for m in value) != 1:
            raise ValueError("the team has exactly one pi")
        return value

    @model_validator(mode="after")
    def _ethics_and_consent(self) -> ApplicationForm:
        if self.purpose_category is PurposeCategory.RESEARCH and not (self.ethics_ref or "").strip():
            raise ValueError("ethics_ref: research needs an ethics approval reference (R-APP-20)")
        if self.legal_basis in CONSENT_BASES and not (self.consent or "").strip():
            raise ValueError(
                f"consent: the legal basis {self.legal_basis.value} needs the consent or waiver text "
                "(R-APP-19)"
            )
        return self

    @property
    def pi(self) -> str:
        return next(m.user for m in self.team if m.role is TeamRole.PI)

    def members(self) -> list[str]:
        return [m.user for m in self.team]

    def columns(self) -> dict[str, list[str]]:
        return {name: list(request.columns) for name, request in self.datasets.items()}


def _reason(item: dict[str, Any]) -> Reason:
    field = ".".join(str(part) for part in item["loc"]) or "(form)"
    message = item["msg"].removeprefix("Value error, ")
    if item["loc"][:1] == ("purpose_category",):
        allowed = ", ".join(p.value for p in PurposeCategory)
        return Reason(
            "purpose_not_allowed",
            f"purpose_category: only non-profit purposes are allowed ({allowed}), not {item.get('input')!r} "
            "(R-APP-3)",
            f"purpose_category：只允许非营利目的（{allowed}），不能是 {item.get('input')!r}（R-APP-3）",
            details={"field": field},
        )
    return Reason(
        "form_field_invalid", f"{field}: {message}", f"字段 {field}：{message}", details={"field": field}
    )


def parse_form(data: dict[str, Any]) -> ApplicationForm:
    """A form from plain data, or ``BadInput`` (``application_form_invalid``) naming every bad field."""
    try:
        return ApplicationForm.model_validate(data)
    except ValidationError as exc:
        reasons = [_reason(item) for item in exc.errors(include_url=False)]
        raise BadInput(
            "application_form_invalid",
            "The application form is invalid: " + "; ".join(r.message for r in reasons),
            "申请表无效：" + "；".join(r.message_zh for r in reasons),
            reasons=reasons,
        ) from None


def load_form(path: Path) -> ApplicationForm:
    """Read and validate a form from a YAML file."""
    return parse_form(load_yaml(path))


def form_to_json(form: ApplicationForm) -> dict[str, Any]:
    return form.model_dump(mode="json")


def _problem(code: str, field: str, en: str, zh: str, **details: Any) -> Reason:
    return Reason(code, f"{field}: {en}", f"{field}：{zh}", details={"field": field, **details})


def check_against_catalog(session: Session, form: ApplicationForm) -> int:
    """Check the requested data against the catalog; return the application's level (the highest).

    Datasets must exist and be shareable (share_type not ``none``; level 5 is not shared, R-CAT-6);
    columns must exist and never be direct identifiers (R-CAT-14, R-APP-4); the person key comes with
    the other columns (minimum counts are taken over persons); a time range needs a date column and
    cannot reach past the period of use; level 4 data needs consent evidence (R-APP-19).
    """
    reasons: list[Reason] = []
    level = int(Level.L1)
    for name, request in form.datasets.items():
        field = f"datasets.{name}"
        try:
            dataset = catalog.get(session, name)
            spec = catalog.current_spec(session, name)
        except NotFound:
            reasons.append(
                _problem("dataset_unknown", field, "no such dataset in the catalog", "目录中没有该数据集")
            )
            continue
        level = max(level, dataset.level)
        if dataset.share_type == ShareType.NONE.value or dataset.level >= Level.L5:
            reasons.append(
                _problem(
                    "dataset_not_shared",
                    field,
                    f"the dataset is not shared (level {dataset.level}, "
                    f"share type {dataset.share_type}; R-CAT-6)",
                    f"该数据集不予共享（级别 {dataset.level}，共享类型 {dataset.share_type}；R-CAT-6）",
                )
            )
        for column in request.columns:
            role = spec.columns.get(column)
            if role is None:
                reasons.append(
                    _problem(
                        "column_unknown",
                        field,
                        f"the dataset has no column {column!r}",
                        f"该数据集没有列 {column!r}",
                        column=column,
                    )
                )
            elif role.role is ColumnRole.DIRECT_ID:
                reasons.append(
                    _problem(
                        "column_direct_id",
                        field,
                        f"{column!r} is a direct identifier and is never provided (R-CAT-14, R-APP-4)",
                        f"{column!r} 是直接标识符，不予提供（R-CAT-14，R-APP-4）",
                        column=column,
                    )
                )
        if spec.person_key not in request.columns:
            reasons.append(
                _problem(
                    "person_key_required",
                    field,
                    f"the person key {spec.person_key!r} must be requested with the other columns",
                    f"必须同时申请个人标识列 {spec.person_key!r}",
                    column=spec.person_key,
                )
            )
        if request.time_range is not None:
            if not spec.columns_with_role(ColumnRole.DATE):
                reasons.append(
                    _problem(
                        "time_range_without_dates",
                        f"{field}.time_range",
                        "the dataset has no date column to restrict",
                        "该数据集没有可限定的日期列",
                    )
                )
            if request.time_range.end > form.period.end:
                reasons.append(
                    _problem(
                        "time_range_outside_period",
                        f"{field}.time_range",
                        f"the records cannot be dated after the period of use ends ({form.period.end})",
                        f"数据时间范围不能晚于使用期限结束日（{form.period.end}）",
                    )
                )
    if level >= Level.L4 and form.legal_basis not in CONSENT_BASES:
        reasons.append(
            _problem(
                "consent_evidence_required",
                "legal_basis",
                f"level {level} data needs consent or an ethics consent waiver (R-APP-19, R-CAT-6)",
                f"{level} 级数据需要知情同意或伦理委员会的知情同意豁免（R-APP-19，R-CAT-6）",
            )
        )
    if reasons:
        raise BadInput(
            "application_catalog_mismatch",
            "The application does not match the catalog: " + "; ".join(r.message for r in reasons),
            "申请与数据目录不符：" + "；".join(r.message_zh for r in reasons),
            reasons=reasons,
        )
    return level


def required_attachments(form: ApplicationForm) -> list[AttachmentKind]:
    """The attachment kinds this form needs before it can be submitted (R-APP-12, R-APP-19, R-APP-20)."""
    needed: list[AttachmentKind] = []
    if form.purpose_category is PurposeCategory.RESEARCH:
        needed.append(AttachmentKind.ETHICS_APPROVAL)
    if form.legal_basis is LegalBasis.CONSENT_WAIVER:
        needed.append(AttachmentKind.CONSENT_WAIVER)
    if form.track is Track.DOMESTIC_PARTNER:
        needed += [AttachmentKind.COOPERATION_AGREEMENT, AttachmentKind.PARTNER_SECURITY]
    if form.track is Track.FOREIGN:
        needed += [AttachmentKind.GOVERNMENT_APPROVAL, AttachmentKind.PARTNER_SECURITY]
    # R-APP-12: no cross-border transfer without a government approval document.
    if form.cross_border and AttachmentKind.GOVERNMENT_APPROVAL not in needed:
        needed.append(AttachmentKind.GOVERNMENT_APPROVAL)
    return needed
