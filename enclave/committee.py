"""The committee rule, one module for every committee decision (R-APP-7, R-APP-11, T2).

Data-use applications, account applications and export requests are all decided by votes of the
seated members of a committee: more than two thirds, and never fewer than two (``CommitteeRule``).
``tally`` counts each seated member's vote once and ignores everyone else's (an adviser or a
secretary does not vote); where votes are countersigned, an approval counts once its voter has
countersigned, and every yes-voter must have (R-APP-7). ``stricter`` picks the rule a recorded
decision is recomputed under. ``ApprovalChain`` escalates the route with the data level: a level may
add roles whose holders must also approve (R-APP-11).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from enclave.roles import Role

APPROVE, REJECT, CHANGES = "approve", "reject", "changes"


class CommitteeRule(BaseModel):
    """Approval needs more than ``numerator/denominator`` of the seated voting committee (R-APP-7, T2).

    ``base`` names the denominator: ``seated`` counts every voting member of the project's
    committee, voted or not (the §11 C4 default). ``min_approvals`` is the floor of independent
    approvals whatever the committee's size.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    numerator: int = Field(2, ge=1)
    denominator: int = Field(3, ge=1)
    strict: bool = True
    min_approvals: int = Field(2, ge=2, description="never fewer than two independent approvals")
    base: Literal["seated"] = "seated"

    @field_validator("denominator")
    @classmethod
    def _fraction_at_most_one(cls, value: int, info) -> int:  # type: ignore[no-untyped-def]
        if info.data.get("numerator", 2) > value:
            raise ValueError("the fraction numerator/denominator must not exceed 1")
        return value

    def needed(self, seated: int) -> int:
        """Approvals needed from a committee of ``seated`` voting members.

        >>> CommitteeRule().needed(9), CommitteeRule().needed(3), CommitteeRule().needed(6)
        (7, 3, 5)
        """
        share = seated * self.numerator
        needed = share // self.denominator + 1 if self.strict else -(-share // self.denominator)
        return max(needed, self.min_approvals)

    def reachable(self, seated: int) -> bool:
        """A committee of ``seated`` members can reach the approvals needed at all (with the floor
        of two, a committee of one never can)."""
        return self.needed(seated) <= seated

    def describe(self, seated: int) -> dict[str, object]:
        return {
            "rule": f"{'>' if self.strict else '>='} {self.numerator}/{self.denominator} of {self.base}",
            "base": self.base,
            "seated": seated,
            "needed": self.needed(seated),
            "min_approvals": self.min_approvals,
        }


def stricter(configured: CommitteeRule, recorded: CommitteeRule, seated: int) -> CommitteeRule:
    """The rule to recompute a recorded decision under: the recorded one, unless the configured
    rule needs more approvals from ``seated`` members (a decision is never checked more leniently
    than the deployment now asks)."""
    return configured if configured.needed(seated) > recorded.needed(seated) else recorded


@dataclass(frozen=True)
class Tally:
    """The counted votes on one question (an export file, an application): approvals, rejections,
    requests for changes, members still to vote, and the approvals needed.

    ``awaiting`` counts approvals whose voter has not countersigned yet (R-APP-7: every member who
    voted yes countersigns): they are not approvals yet, they can still become ones, and they hold
    the decision until they do (T2).
    """

    approvals: int
    rejections: int
    changes: int
    outstanding: int
    needed: int
    awaiting: int = 0

    @property
    def approved(self) -> bool:
        return self.approvals >= self.needed and self.awaiting == 0

    @property
    def blocked(self) -> bool:
        """Approval can no longer be reached."""
        return self.approvals + self.awaiting + self.outstanding < self.needed

    def to_dict(self) -> dict[str, int | str]:
        outcome = "approved" if self.approved else "blocked" if self.blocked else "open"
        return {
            APPROVE: self.approvals,
            REJECT: self.rejections,
            CHANGES: self.changes,
            "outstanding": self.outstanding,
            "needed": self.needed,
            "outcome": outcome,
        }


def tally(
    choices: Mapping[str, str],
    seated: Iterable[str],
    rule: CommitteeRule,
    *,
    countersigned: Collection[str] | None = None,
) -> Tally:
    """Count each seated member's vote once; votes of anyone else are ignored (T2).

    With ``countersigned`` (the members whose countersignature is recorded), an approval counts
    only once its voter has countersigned; until then it is ``awaiting``.
    """
    members = set(seated)
    counted = {voter: choice for voter, choice in choices.items() if voter in members}
    signed = set(counted) if countersigned is None else set(countersigned)
    approving = [voter for voter, choice in counted.items() if choice == APPROVE]
    values = list(counted.values())
    return Tally(
        approvals=sum(1 for voter in approving if voter in signed),
        rejections=values.count(REJECT),
        changes=values.count(CHANGES),
        outstanding=len(members) - len(counted),
        needed=rule.needed(len(members)),
        awaiting=sum(1 for voter in approving if voter not in signed),
    )


class ApprovalChain(BaseModel):
    """Extra approvers by data level (R-APP-11): e.g. ``{4: ["security_admin"]}`` means an
    application touching level-4 data also needs an approving vote from a holder of that role.

    A level inherits every step of the levels below it, so the route only grows with the level.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: dict[int, tuple[str, ...]] = Field(default_factory=lambda: {4: (Role.SECURITY_ADMIN.value,)})

    def roles_for(self, level: int) -> tuple[str, ...]:
        """The roles that must approve at ``level``, lowest level's first.

        >>> ApprovalChain().roles_for(3), ApprovalChain().roles_for(4)
        ((), ('security_admin',))
        """
        out: list[str] = []
        for step in sorted(self.steps):
            if step <= level:
                out.extend(r for r in self.steps[step] if r not in out)
        return tuple(out)
