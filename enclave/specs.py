"""Dataset and project specs (ARCHITECTURE §9): YAML files validated with pydantic.

A bad spec becomes one ``BadInput`` error whose reasons name each field and its problem.
Rules that need the catalog (datasets and columns exist) live in ``enclave.projects``.
"""

from __future__ import annotations

import math
from datetime import date
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from enclave.errors import BadInput, Reason

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
PROJECT_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
USER_PATTERN = r"^[a-z][a-z0-9_.-]{0,62}$"
APPLICATION_ID_PATTERN = r"^app-[a-z0-9-]{1,36}$"  # as enclave.applications.service files them
MIN_K = 5  # R-PREP-13 / R-QRY-7: never fewer than 5 persons in a released cell
MIN_COMMITTEE = 3
MAX_SPEC_BYTES = 1_000_000
DEFAULT_DATE_JITTER_DAYS = 7  # per-person date jitter of a new project: ±7 days on top of the offset
MAX_DATE_JITTER_DAYS = 60
STORED_DATE_JITTER_DAYS = 0  # a project stored before jitter existed keeps its dates: no jitter
CODE_FIELDS = ("bottom_code", "top_code")


class Level(IntEnum):
    """Sensitivity level before de-identification (GB/T 39725 §6.2, R-CAT-4)."""

    L1 = 1
    L2 = 2
    L3 = 3
    L4 = 4
    L5 = 5


class Category(StrEnum):
    """Data category (GB/T 39725 Table 1, R-CAT-3)."""

    PERSONAL_ATTRIBUTES = "personal_attributes"
    HEALTH_STATUS = "health_status"
    MEDICAL_CARE = "medical_care"
    PAYMENT = "payment"
    HEALTH_RESOURCES = "health_resources"
    PUBLIC_HEALTH = "public_health"


class ShareType(StrEnum):
    """Share type (Hubei rules Art. 12, R-CAT-8)."""

    UNCONDITIONAL = "unconditional"
    CONDITIONAL = "conditional"
    NONE = "none"


class ColumnRole(StrEnum):
    """What a column is, which drives de-identification (R-CAT-14) and the guard."""

    PERSON_KEY = "person_key"
    DIRECT_ID = "direct_id"
    QUASI_ID = "quasi_id"
    SENSITIVE = "sensitive"
    MEASURE = "measure"
    DATE = "date"
    TEXT = "text"
    ATTRIBUTE = "attribute"


class Generalize(StrEnum):
    """Generalisations applied to quasi-identifiers at preparation (GB/T 39725 §10.2, Table 6)."""

    AGE_BAND_5 = "age_band_5"
    POSTCODE_PREFIX_3 = "postcode_prefix_3"
    YEAR = "year"
    YEAR_MONTH = "year_month"


class AccessMode(StrEnum):
    AGGREGATE = "aggregate"
    ROWS = "rows"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class ColumnSpec(_Strict):
    role: ColumnRole
    generalize: Generalize | None = None
    description: str | None = None
    # Bounds of a measure in row-level projects: values beyond them are replaced by the bound at
    # preparation (otherwise the 1st/99th percentile over persons is used; see enclave.deid.coding).
    top_code: int | float | None = None
    bottom_code: int | float | None = None

    @field_validator(*CODE_FIELDS, mode="before")
    @classmethod
    def _code_is_a_number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | str | None):
            raise ValueError("must be a number")
        if isinstance(value, str):  # YAML reads 1e6 as text
            for kind in (int, float):
                try:
                    return kind(value)
                except ValueError:
                    pass
            raise ValueError("must be a number")
        return value

    @model_validator(mode="after")
    def _generalize_only_quasi(self) -> ColumnSpec:
        if self.generalize is not None and self.role not in (ColumnRole.QUASI_ID, ColumnRole.DATE):
            raise ValueError("generalize applies to quasi_id and date columns only")
        return self

    @model_validator(mode="after")
    def _codes_only_measures(self) -> ColumnSpec:
        codes = {name: getattr(self, name) for name in CODE_FIELDS if getattr(self, name) is not None}
        if codes and self.role is not ColumnRole.MEASURE:
            raise ValueError("top_code and bottom_code apply to measure columns only")
        if any(not math.isfinite(value) for value in codes.values()):
            raise ValueError("top_code and bottom_code must be finite numbers")
        if len(codes) == 2 and self.bottom_code >= self.top_code:  # type: ignore[operator]
            raise ValueError("bottom_code must be below top_code")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_codes(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A column without bounds serialises as it did before bounds existed, so a registered
        # dataset spec keeps its stored JSON (and its comparison on re-registration).
        data = handler(self)
        for name in CODE_FIELDS:
            if data.get(name) is None:
                data.pop(name, None)
        return data


class DatasetSpec(_Strict):
    """One dataset in the catalog."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    steward: Annotated[str, Field(min_length=1, max_length=100)]
    level: Level
    category: Category
    share_type: ShareType
    source: Annotated[str, Field(min_length=1)]
    person_key: Annotated[str, Field(pattern=NAME_PATTERN)]
    columns: dict[Annotated[str, Field(pattern=NAME_PATTERN)], ColumnSpec]
    description: str | None = None

    @model_validator(mode="after")
    def _person_key_is_a_person_key_column(self) -> DatasetSpec:
        if not self.columns:
            raise ValueError("columns: at least one column is required")
        column = self.columns.get(self.person_key)
        if column is None:
            raise ValueError(f"person_key '{self.person_key}' is not among the columns")
        if column.role is not ColumnRole.PERSON_KEY:
            raise ValueError(f"person_key '{self.person_key}' must have role person_key")
        others = [
            n for n, c in self.columns.items() if c.role is ColumnRole.PERSON_KEY and n != self.person_key
        ]
        if others:
            raise ValueError(f"only the person_key column may have role person_key, not {others}")
        return self

    def columns_with_role(self, role: ColumnRole) -> list[str]:
        return [name for name, column in self.columns.items() if column.role is role]


class Period(_Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _end_after_start(self) -> Period:
        if self.end <= self.start:
            raise ValueError("period: end must be after start")
        return self


class TimeRange(_Strict):
    """The approved dates of a dataset's records, both ends included (R-APP-4): preparation keeps only
    the rows whose original dates fall in it (see ``enclave.deid.plan.time_range_filter``)."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class ProjectSpec(_Strict):
    """An approved application: who, which columns of which datasets, how, and for how long.

    ``time_ranges`` (optional, per dataset of ``datasets``): only the records dated within
    ``{start, end}`` are prepared (R-APP-4, minimum necessary); a dataset without one keeps every row.
    """

    id: Annotated[str, Field(pattern=PROJECT_ID_PATTERN)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    purpose: Annotated[str, Field(min_length=1)]
    pi: Annotated[str, Field(pattern=USER_PATTERN)]
    analysts: Annotated[list[Annotated[str, Field(pattern=USER_PATTERN)]], Field(min_length=1)]
    committee: list[Annotated[str, Field(pattern=USER_PATTERN)]]
    datasets: dict[Annotated[str, Field(pattern=NAME_PATTERN)], list[str]]
    access: AccessMode = AccessMode.AGGREGATE
    min_cell_count: int = MIN_K
    period: Period
    cross_border: bool = False
    ethics_ref: str | None = None
    # Per-person date jitter in days on top of the project's offset (R-PREP-10, R-PREP-15); 0 = off.
    date_jitter_days: Annotated[int, Field(strict=True)] = DEFAULT_DATE_JITTER_DAYS
    # The approved application this spec is provisioned from (R-APP-15, T14); None only with an
    # audited override (``enclave project create --without-application REASON``).
    application: Annotated[str, Field(pattern=APPLICATION_ID_PATTERN)] | None = None
    time_ranges: dict[Annotated[str, Field(pattern=NAME_PATTERN)], TimeRange] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _without_unset_application(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A spec without an application or time ranges serialises as before these fields existed
        # (same stored JSON, same spec_sha256).
        data = handler(self)
        if data.get("application") is None:
            data.pop("application", None)
        if not data.get("time_ranges"):
            data.pop("time_ranges", None)
        return data

    @field_validator("analysts", "committee")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("names must not repeat")
        return value

    @field_validator("committee")
    @classmethod
    def _committee_size(cls, value: list[str]) -> list[str]:
        if len(value) < MIN_COMMITTEE:
            raise ValueError(
                f"the committee needs at least {MIN_COMMITTEE} voting members (GB/T 39725 App. C)"
            )
        return value

    @field_validator("min_cell_count")
    @classmethod
    def _k_floor(cls, value: int) -> int:
        if value < MIN_K:
            raise ValueError(f"min_cell_count must be at least {MIN_K} (R-PREP-13)")
        return value

    @field_validator("date_jitter_days")
    @classmethod
    def _jitter_range(cls, value: int) -> int:
        if not 0 <= value <= MAX_DATE_JITTER_DAYS:
            raise ValueError(
                f"date_jitter_days must be between 0 (off) and {MAX_DATE_JITTER_DAYS} (R-PREP-10)"
            )
        return value

    @field_validator("datasets")
    @classmethod
    def _datasets_not_empty(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not value:
            raise ValueError("at least one dataset is required")
        for name, columns in value.items():
            if not columns:
                raise ValueError(f"{name}: at least one column is required")
            if len(set(columns)) != len(columns):
                raise ValueError(f"{name}: columns must not repeat")
        return value

    @model_validator(mode="after")
    def _time_ranges_of_datasets(self) -> ProjectSpec:
        unknown = sorted(set(self.time_ranges) - set(self.datasets))
        if unknown:
            raise ValueError(f"time_ranges: {', '.join(unknown)} not among the datasets")
        return self

    @model_validator(mode="after")
    def _separation_of_duties(self) -> ProjectSpec:
        # R-SEC-5: nobody reviews the exports of a project they analyse or lead.
        both = sorted(set(self.committee) & ({*self.analysts, self.pi}))
        if both:
            raise ValueError(
                f"separation of duties (R-SEC-5): {', '.join(both)} cannot be both analyst or PI and "
                "committee member of the same project"
            )
        return self

    def members(self) -> list[tuple[str, str]]:
        """(username, role) pairs."""
        from enclave.roles import ProjectRole  # not at the top: the roles' own imports reach this module

        pairs = [(self.pi, ProjectRole.PI.value)]
        pairs += [(a, ProjectRole.ANALYST.value) for a in self.analysts]
        pairs += [(c, ProjectRole.COMMITTEE.value) for c in self.committee]
        return pairs


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(spec)"


def _validation_reasons(error: ValidationError) -> list[Reason]:
    reasons = []
    for item in error.errors(include_url=False):
        field = _field_path(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        reasons.append(
            Reason(
                "spec_field_invalid",
                f"{field}: {message}",
                f"字段 {field}：{message}",
                details={"field": field},
            )
        )
    return reasons


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a spec file as a mapping, with clear errors for a missing, huge or malformed file."""
    if not path.is_file():
        raise BadInput("spec_not_found", f"Spec file not found: {path}", f"找不到规格文件：{path}")
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise BadInput(
            "spec_too_large",
            f"Spec file is larger than {MAX_SPEC_BYTES} bytes: {path}",
            f"规格文件超过 {MAX_SPEC_BYTES} 字节：{path}",
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadInput(
            "spec_malformed",
            f"Spec file is not valid YAML: {path}: {exc}",
            f"规格文件不是有效的 YAML：{path}：{exc}",
        ) from None
    if not isinstance(data, dict):
        raise BadInput(
            "spec_malformed",
            f"Spec file must hold a mapping of fields: {path}",
            f"规格文件必须是字段映射：{path}",
        )
    return data


def _parse(model: type[BaseModel], data: dict[str, Any], what: str, what_zh: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        reasons = _validation_reasons(exc)
        raise BadInput(
            "spec_invalid",
            f"The {what} spec is invalid: " + "; ".join(r.message for r in reasons),
            f"{what_zh}规格无效：" + "；".join(r.message_zh for r in reasons),
            reasons=reasons,
        ) from None


def parse_dataset_spec(data: dict[str, Any]) -> DatasetSpec:
    return _parse(DatasetSpec, data, "dataset", "数据集")


def parse_project_spec(data: dict[str, Any]) -> ProjectSpec:
    """A new project spec (from a YAML file): fields it leaves out take today's defaults."""
    return _parse(ProjectSpec, data, "project", "项目")


def parse_stored_project_spec(data: dict[str, Any]) -> ProjectSpec:
    """A project spec as stored in the state database. A spec stored before ``date_jitter_days``
    existed was prepared without jitter, and keeps it that way, so that its dates stay the same in
    every prepared version; every spec stored since carries the field explicitly."""
    return parse_project_spec({"date_jitter_days": STORED_DATE_JITTER_DAYS, **data})


def load_dataset_spec(path: Path) -> DatasetSpec:
    return parse_dataset_spec(load_yaml(path))


def load_project_spec(path: Path) -> ProjectSpec:
    return parse_project_spec(load_yaml(path))
