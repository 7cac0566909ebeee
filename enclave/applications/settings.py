"""Deployment settings of governance: the committee rule, the approval chain by level, the password age.

They are data, not code (ARCHITECTURE §7): ``<home>/governance.yaml`` overrides the defaults, and
every committee decision records the rule it was taken under (R-APP-7, R-APP-11, §11 C4).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from enclave.committee import ApprovalChain, CommitteeRule
from enclave.config import Paths
from enclave.errors import BadInput, Reason
from enclave.roles import Role

SETTINGS_FILE = "governance.yaml"


class GovernanceSettings(BaseModel):
    """``committee``: the vote rule (> 2/3 of the seated members, never fewer than two);
    ``approval_chain``: roles that must also approve by data level (R-APP-11);
    ``password_max_age_days``: a password older than this must be changed (R-SEC-1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    committee: CommitteeRule = CommitteeRule()
    approval_chain: ApprovalChain = ApprovalChain()
    password_max_age_days: int = Field(90, ge=1, le=365)

    @field_validator("approval_chain")
    @classmethod
    def _known_roles(cls, value: ApprovalChain) -> ApprovalChain:
        # A misspelt role would have no holders and silently block every application at that level.
        known = {r.value for r in Role} - {Role.COMMITTEE.value}
        unknown = sorted({r for roles in value.steps.values() for r in roles} - known)
        if unknown:
            raise ValueError(f"unknown approval-chain roles {unknown}; one of {sorted(known)}")
        levels = sorted(level for level in value.steps if not 1 <= level <= 5)
        if levels:
            raise ValueError(f"data levels are 1 to 5, not {levels}")
        return value


def load_governance(paths: Paths, path: Path | None = None) -> GovernanceSettings:
    """The deployment's settings: ``<home>/governance.yaml`` if present, else the defaults."""
    source = path or paths.home / SETTINGS_FILE
    if not source.exists():
        return GovernanceSettings()
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        return GovernanceSettings.model_validate(data)
    except (yaml.YAMLError, ValidationError, TypeError, UnicodeDecodeError) as error:
        raise BadInput(
            "governance_settings_invalid",
            f"{source}: invalid governance settings",
            f"{source}：治理设置无效",
            reasons=[Reason("governance_settings_invalid", str(error)[:500], "设置校验失败")],
        ) from None
