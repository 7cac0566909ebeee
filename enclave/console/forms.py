"""HTML forms to the domain's input shapes, and back: no rule is checked here.

The application form's fields are flat (``title``, ``ds.<dataset>.columns``, ``team_user``...);
``values_from_arguments`` collects them into ``FormValues`` (what the page shows again after a
refusal), ``form_data`` turns those into the plain data ``enclave.applications.form.parse_form``
validates, and ``values_from_form`` fills the page from a stored form. Checklist, scorecard and
narrowing are read the same way; a value that is not what the domain expects is passed on as it is,
so the domain's refusal names it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from enclave.errors import BadInput
from enclave.roles import ProjectRole

TEAM_ROWS = 6  # rows of the team table on the form (no script adds rows)

Arguments = Callable[[str], list[str]]  # the request's values of one field name


@dataclass
class DatasetValues:
    columns: list[str] = field(default_factory=list)
    start: str = ""
    end: str = ""


@dataclass
class FormValues:
    """What the application form shows: as typed, before any validation."""

    title: str = ""
    purpose: str = ""
    purpose_category: str = ""
    track: str = ""
    organisation: str = ""
    datasets: dict[str, DatasetValues] = field(default_factory=dict)
    team: list[tuple[str, str]] = field(default_factory=list)
    period_start: str = ""
    period_end: str = ""
    access: str = "aggregate"
    min_cell_count: str = "5"
    legal_basis: str = ""
    consent: str = ""
    ethics_ref: str = ""
    cross_border: bool = False

    def team_rows(self) -> list[tuple[str, str]]:
        """The team table's rows: the members, then empty rows up to ``TEAM_ROWS``."""
        rows = list(self.team)
        return rows + [("", ProjectRole.ANALYST.value)] * max(TEAM_ROWS - len(rows), 1)


def _one(args: Arguments, name: str) -> str:
    values = args(name)
    return values[0].strip() if values else ""


def values_from_arguments(args: Arguments, dataset_names: Iterable[str]) -> FormValues:
    """The submitted application form. A dataset is requested when at least one column is ticked."""
    datasets = {}
    for name in dataset_names:
        columns = [c for c in args(f"ds.{name}.columns") if c]
        if columns:
            datasets[name] = DatasetValues(
                columns, _one(args, f"ds.{name}.start"), _one(args, f"ds.{name}.end")
            )
    users, team_roles = args("team_user"), args("team_role")
    team = [
        (user.strip(), team_roles[i] if i < len(team_roles) else "")
        for i, user in enumerate(users)
        if user.strip()
    ]
    return FormValues(
        title=_one(args, "title"),
        purpose=_one(args, "purpose"),
        purpose_category=_one(args, "purpose_category"),
        track=_one(args, "track"),
        organisation=_one(args, "organisation"),
        datasets=datasets,
        team=team,
        period_start=_one(args, "period_start"),
        period_end=_one(args, "period_end"),
        access=_one(args, "access"),
        min_cell_count=_one(args, "min_cell_count"),
        legal_basis=_one(args, "legal_basis"),
        consent=_one(args, "consent"),
        ethics_ref=_one(args, "ethics_ref"),
        cross_border=_one(args, "cross_border") in ("yes", "on", "true", "1"),
    )


def form_data(values: FormValues) -> dict[str, Any]:
    """The plain data of ``parse_form``: empty optional fields are left out, the rest is passed as typed."""
    datasets: dict[str, Any] = {}
    for name, wanted in values.datasets.items():
        request: dict[str, Any] = {"columns": wanted.columns}
        if wanted.start or wanted.end:
            request["time_range"] = {"start": wanted.start, "end": wanted.end}
        datasets[name] = request
    data: dict[str, Any] = {
        "title": values.title,
        "purpose": values.purpose,
        "purpose_category": values.purpose_category,
        "track": values.track,
        "organisation": values.organisation,
        "datasets": datasets,
        "team": [{"user": user, "role": role} for user, role in values.team],
        "period": {"start": values.period_start, "end": values.period_end},
        "access": values.access or "aggregate",
        "min_cell_count": values.min_cell_count or "5",
        "legal_basis": values.legal_basis,
        "cross_border": values.cross_border,
    }
    if values.consent:
        data["consent"] = values.consent
    if values.ethics_ref:
        data["ethics_ref"] = values.ethics_ref
    return data


def values_from_form(form: Mapping[str, Any]) -> FormValues:
    """The page's values from a stored form (its JSON), to edit a draft or returned application."""
    datasets = {}
    for name, request in (form.get("datasets") or {}).items():
        span = request.get("time_range") or {}
        datasets[name] = DatasetValues(
            list(request.get("columns") or []), str(span.get("start") or ""), str(span.get("end") or "")
        )
    period = form.get("period") or {}
    return FormValues(
        title=str(form.get("title") or ""),
        purpose=str(form.get("purpose") or ""),
        purpose_category=str(form.get("purpose_category") or ""),
        track=str(form.get("track") or ""),
        organisation=str(form.get("organisation") or ""),
        datasets=datasets,
        team=[(str(m.get("user", "")), str(m.get("role", ""))) for m in form.get("team") or []],
        period_start=str(period.get("start") or ""),
        period_end=str(period.get("end") or ""),
        access=str(form.get("access") or "aggregate"),
        min_cell_count=str(form.get("min_cell_count") or "5"),
        legal_basis=str(form.get("legal_basis") or ""),
        consent=str(form.get("consent") or ""),
        ethics_ref=str(form.get("ethics_ref") or ""),
        cross_border=bool(form.get("cross_border")),
    )


def _number(value: str) -> int | str:
    """A whole number if it is one; else the text, for the domain to refuse by name."""
    try:
        return int(value)
    except ValueError:
        return value


def checklist(args: Arguments, items: Iterable[str]) -> dict[str, bool]:
    """Every item of the domain's checklist: ticked or not."""
    return {item: _one(args, f"check.{item}") in ("yes", "on", "true", "1") for item in items}


def scorecard(args: Arguments, dimensions: Iterable[str]) -> dict[str, Any]:
    """The dimensions given a score; an empty one is left out (the domain says whether it may be)."""
    scores: dict[str, Any] = {}
    for dimension in dimensions:
        value = _one(args, f"score.{dimension}")
        if value:
            scores[dimension] = _number(value)
    return scores


def narrowing(
    args: Arguments, approved_columns: Mapping[str, list[str]], team: list[str]
) -> dict[str, Any] | None:
    """The steward's narrowing of an approved application: the columns and analysts left ticked.

    The form says ``narrowing=yes`` (its ticks are then the whole answer, even none); without it, or
    with everything approved still ticked, None: the project is the application as approved."""
    if _one(args, "narrowing") != "yes":
        return None
    datasets = {}
    for name in approved_columns:
        columns = [c for c in args(f"ds.{name}.columns") if c]
        if columns:
            datasets[name] = columns
    analysts = [u for u in args("analysts") if u]
    out: dict[str, Any] = {}
    if datasets != {n: list(c) for n, c in approved_columns.items()}:
        out["datasets"] = datasets
    if analysts != list(team):
        out["analysts"] = analysts
    return out or None


def day(value: str, field_name: str) -> date:
    """A date typed as YYYY-MM-DD (what a date input sends), or ``BadInput`` naming the field."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(
            "date_invalid",
            f"{field_name}: {value!r} is not a date (YYYY-MM-DD)",
            f"{field_name}：{value!r} 不是日期（YYYY-MM-DD）",
            details={"field": field_name},
        ) from None
