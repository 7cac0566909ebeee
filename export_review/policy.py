"""Deployment settings of the export review: the committee rule, check thresholds, caps, outbox.

They are data, not code (ARCHITECTURE §7): ``<home>/export-review.yaml`` overrides the defaults,
and every decision records the rule it was taken under (R-APP-7, §11 C4).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from enclave.committee import CommitteeRule
from enclave.config import Paths
from enclave.errors import BadInput, Reason

SETTINGS_FILE = "export-review.yaml"

ALLOWED_TYPES = ("csv", "tsv", "xlsx", "json", "txt", "md", "png", "jpg", "svg", "pdf", "html", "ipynb")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckLimits(_Strict):
    """Thresholds of the automated checks; ``k`` itself comes from the project spec."""

    allowed_types: tuple[str, ...] = ALLOWED_TYPES
    max_file_bytes: int = Field(20 * 1024 * 1024, ge=1)
    max_request_bytes: int = Field(100 * 1024 * 1024, ge=1)
    max_files: int = Field(50, ge=1)
    max_result_rows: int = Field(1000, ge=1, description="more rows than this is not a statistical result")
    person_rows_fraction: float = Field(
        0.5, gt=0, le=1, description="rows >= this share of the project's persons looks row-level"
    )
    unique_key_min_rows: int = Field(50, ge=2, description="a column unique over this many rows is an id")
    nk_n: int = Field(2, ge=1)
    nk_k: float = Field(0.9, gt=0, le=1, description="the top n contributors may hold at most this share")
    p_percent: float = Field(0.10, gt=0, lt=1)
    rounding_base: int = Field(5, ge=1)
    small_count_ceiling: int = Field(100, ge=1, description="counts below this should be rounded")
    free_text_min_words: int = Field(6, ge=2)
    free_text_share: float = Field(0.2, gt=0, le=1)

    @field_validator("allowed_types")
    @classmethod
    def _subset_of_known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(ALLOWED_TYPES))
        if unknown:
            raise ValueError(f"no checks exist for file types {unknown}; allowed: {list(ALLOWED_TYPES)}")
        return value


class OutboxSettings(_Strict):
    """Where released files go: the local outbox folder, or ``s3://bucket/prefix`` at ``endpoint``.

    Credentials are never written here: the settings name a 0600 YAML file holding them
    (``credentials_file``, with ``access_key`` and ``secret_key``; production), or else the
    environment variables holding them.
    """

    url: str | None = None
    endpoint: str | None = None
    secure: bool = True
    region: str | None = None
    credentials_file: str | None = None
    access_key_env: str = "ENCLAVE_S3_ACCESS_KEY"
    secret_key_env: str = "ENCLAVE_S3_SECRET_KEY"

    @field_validator("url")
    @classmethod
    def _s3_only(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("s3://") and len(value) > len("s3://")):
            raise ValueError("outbox url must be s3://bucket[/prefix] (or left out for the local folder)")
        return value


class ReviewSettings(_Strict):
    committee: CommitteeRule = CommitteeRule()
    checks: CheckLimits = CheckLimits()
    cross_border_cap: int = Field(250, ge=0, description="cumulative records per project (R-EXP-7)")
    stewards: tuple[str, ...] = ()
    outbox: OutboxSettings = OutboxSettings()


def load_settings(paths: Paths, path: Path | None = None) -> ReviewSettings:
    """The deployment's settings: ``<home>/export-review.yaml`` if present, else the defaults."""
    source = path or paths.home / SETTINGS_FILE
    if not source.exists():
        return ReviewSettings()
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        return ReviewSettings.model_validate(data)
    except (yaml.YAMLError, ValidationError, TypeError) as error:
        raise BadInput(
            "export_settings_invalid",
            f"{source}: invalid export-review settings",
            f"{source}：导出审核设置无效",
            reasons=[Reason("export_settings_invalid", str(error)[:500], "设置校验失败")],
        ) from None
