"""Provisioning a project from its approved application (R-APP-15, T14, T6).

``spec_from_application`` turns the approved form into a project spec: the applicant is the PI, the
team are the analysts, the approved datasets, columns, time ranges (R-APP-4), access, minimum cell
count and period are copied, and the project's export committee is every holder of the committee
role outside the team. A steward may only narrow it (``narrowing``: fewer datasets, columns or
analysts, a shorter time range of a dataset or period, a higher minimum cell count, aggregate
instead of rows).

``check_within_application`` is the one check of any spec that names ``application: ID``, generated
or written by hand: the committee's decision still verifies, a signed DUA is recorded, and nothing in
the spec is wider than the approval or the DUA's dates. ``enclave.projects.create_project`` runs it,
so provisioning goes through every check a project gets; a later spec version is held to it too, so
its end date cannot move without a new approved application (T6).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from enclave import agreements, audit, projects, roles
from enclave.agreements import ApprovedApplication
from enclave.applications import voting
from enclave.config import Paths
from enclave.db.models import DataUseAgreement, Project
from enclave.errors import BadInput, Forbidden, Reason
from enclave.roles import Role
from enclave.specs import MIN_COMMITTEE, AccessMode, ProjectSpec, TimeRange, parse_project_spec

NARROWING_KEYS = ("datasets", "analysts", "period", "min_cell_count", "access", "time_ranges")
# How much each access mode grants: row-level access is wider than aggregate answers.
ACCESS_WIDTH = {AccessMode.AGGREGATE: 0, AccessMode.ROWS: 1}


def team_of(approved: ApprovedApplication) -> list[str]:
    """The PI first, then the rest of the team in the form's order: the project's analysts."""
    members = [m.user for m in approved.form.team]
    return [approved.applicant, *(u for u in members if u != approved.applicant)]


def project_committee(session: Session, approved: ApprovedApplication) -> list[str]:
    """The project's export committee: every committee member outside the team (R-SEC-5)."""
    team = set(team_of(approved))
    members = [u for u in roles.holders(session, Role.COMMITTEE) if u not in team]
    if len(members) < MIN_COMMITTEE:
        raise BadInput(
            "committee_too_small",
            f"Only {len(members)} committee member(s) are outside the team of {approved.id}; a project's "
            f"export committee needs at least {MIN_COMMITTEE}",
            f"申请 {approved.id} 的团队之外只有 {len(members)} 名委员；项目的导出审核委员会至少需要 "
            f"{MIN_COMMITTEE} 名",
            details={"application": approved.id, "members": members, "needed": MIN_COMMITTEE},
        )
    return members


def _check_narrowing(narrowing: dict[str, Any]) -> None:
    unknown = sorted(set(narrowing) - set(NARROWING_KEYS))
    if unknown:
        raise BadInput(
            "narrowing_invalid",
            f"A narrowing may set only {', '.join(NARROWING_KEYS)}, not {', '.join(unknown)}",
            f"收窄只能设置 {', '.join(NARROWING_KEYS)}，不能设置 {', '.join(unknown)}",
            details={"unknown": unknown, "allowed": list(NARROWING_KEYS)},
        )
    if not isinstance(narrowing.get("time_ranges", {}), dict):
        raise BadInput(
            "narrowing_invalid",
            "A narrowing's time_ranges maps datasets to {start, end}",
            "收窄的 time_ranges 须为数据集到 {start, end} 的映射",
            details={"field": "time_ranges"},
        )


def _time_ranges(approved: dict[str, Any], narrowing: dict[str, Any], datasets: Any) -> dict[str, Any]:
    """The approved time ranges of the datasets still in the spec, each replaced by the narrowing's
    range for that dataset if it gives one (``check_within_application`` refuses a wider one)."""
    kept = {name: span for name, span in approved.items() if isinstance(datasets, dict) and name in datasets}
    return {**kept, **narrowing.get("time_ranges", {})}


def spec_from_application(
    session: Session,
    paths: Paths,
    app_id: str,
    *,
    project_id: str,
    narrowing: dict[str, Any] | None = None,
) -> ProjectSpec:
    """The project spec of an approved application, optionally narrowed (never widened: a widening
    narrowing is refused by ``check_within_application`` when the project is created)."""
    approved = agreements.approved_application(session, app_id)
    form = approved.form
    ranges = {
        name: {"start": request.time_range.start.isoformat(), "end": request.time_range.end.isoformat()}
        for name, request in form.datasets.items()
        if request.time_range is not None
    }
    data: dict[str, Any] = {
        "id": project_id,
        "title": form.title,
        "purpose": form.purpose,
        "pi": approved.applicant,
        "analysts": team_of(approved),
        "committee": project_committee(session, approved),
        "datasets": {name: list(request.columns) for name, request in form.datasets.items()},
        "access": form.access.value,
        "min_cell_count": form.min_cell_count,
        "period": {"start": form.period.start.isoformat(), "end": form.period.end.isoformat()},
        "cross_border": form.cross_border,
        "ethics_ref": form.ethics_ref,
        "application": app_id,
    }
    if narrowing:
        _check_narrowing(narrowing)
        data.update(narrowing)
    data["time_ranges"] = _time_ranges(ranges, narrowing or {}, data["datasets"])
    return parse_project_spec(data)


def _widened(code: str, en: str, zh: str, **details: Any) -> Reason:
    return Reason(code, en, zh, details=details)


def _time_range_widened(name: str, approved: TimeRange | None, spec: TimeRange | None) -> Reason | None:
    """A dataset's records must stay within its approved time range (R-APP-4): a spec that leaves
    the range out would prepare every record, so a missing range is a widening too."""
    if approved is None or (spec is not None and approved.start <= spec.start and spec.end <= approved.end):
        return None
    asked = "no time range (every record)" if spec is None else f"{spec.start} to {spec.end}"
    asked_zh = "未限定时间范围（全部记录）" if spec is None else f"{spec.start} 至 {spec.end}"
    return _widened(
        "time_range_widened",
        f"time_ranges.{name}: {asked} is wider than the approved records dated {approved.start} to "
        f"{approved.end}",
        f"time_ranges.{name}：{asked_zh} 超出批准的数据时间范围 {approved.start} 至 {approved.end}",
        field=f"time_ranges.{name}",
        approved={"start": approved.start.isoformat(), "end": approved.end.isoformat()},
    )


def widening_reasons(approved: ApprovedApplication, dua: DataUseAgreement, spec: ProjectSpec) -> list[Reason]:
    """One reason per item of ``spec`` wider than the approved application or the DUA's dates."""
    form = approved.form
    reasons: list[Reason] = []
    approved_columns = {name: list(request.columns) for name, request in form.datasets.items()}
    for name, columns in spec.datasets.items():
        if name not in approved_columns:
            reasons.append(
                _widened(
                    "dataset_not_approved",
                    f"datasets.{name}: the application did not ask for this dataset",
                    f"datasets.{name}：申请中没有该数据集",
                    field=f"datasets.{name}",
                )
            )
            continue
        extra = [c for c in columns if c not in approved_columns[name]]
        if extra:
            reasons.append(
                _widened(
                    "columns_not_approved",
                    f"datasets.{name}: columns {', '.join(extra)} were not approved",
                    f"datasets.{name}：列 {', '.join(extra)} 未获批准",
                    field=f"datasets.{name}",
                    columns=extra,
                )
            )
        reason = _time_range_widened(name, form.datasets[name].time_range, spec.time_ranges.get(name))
        if reason is not None:
            reasons.append(reason)
    team = team_of(approved)
    outsiders = [a for a in spec.analysts if a not in team]
    if outsiders:
        reasons.append(
            _widened(
                "analysts_not_in_team",
                f"analysts: {', '.join(outsiders)} are not in the application's team",
                f"analysts：{', '.join(outsiders)} 不在申请的团队中",
                field="analysts",
                users=outsiders,
            )
        )
    if spec.pi != approved.applicant:
        reasons.append(
            _widened(
                "pi_not_applicant",
                f"pi: {spec.pi} is not the applicant {approved.applicant}",
                f"pi：{spec.pi} 不是申请人 {approved.applicant}",
                field="pi",
            )
        )
    period = form.period
    if spec.period.start < period.start or spec.period.end > period.end:
        reasons.append(
            _widened(
                "period_not_approved",
                f"period: {spec.period.start} to {spec.period.end} is outside the approved period "
                f"{period.start} to {period.end} (a longer period needs a new approved application)",
                f"period：{spec.period.start} 至 {spec.period.end} 超出批准的期限 {period.start} 至 "
                f"{period.end}（延长期限须重新申请并获批准）",
                field="period",
            )
        )
    if spec.period.start.isoformat() < dua.start or spec.period.end.isoformat() > dua.end:
        reasons.append(
            _widened(
                "period_outside_dua",
                f"period: {spec.period.start} to {spec.period.end} is outside the data-use agreement "
                f"({dua.start} to {dua.end})",
                f"period：{spec.period.start} 至 {spec.period.end} 超出数据使用协议的期限"
                f"（{dua.start} 至 {dua.end}）",
                field="period",
            )
        )
    if ACCESS_WIDTH[spec.access] > ACCESS_WIDTH[form.access]:
        reasons.append(
            _widened(
                "access_widened",
                f"access: {spec.access.value} is wider than the approved {form.access.value}",
                f"access：{spec.access.value} 超出批准的 {form.access.value}",
                field="access",
            )
        )
    if spec.min_cell_count < form.min_cell_count:
        reasons.append(
            _widened(
                "min_cell_count_lowered",
                f"min_cell_count: {spec.min_cell_count} is below the approved {form.min_cell_count}",
                f"min_cell_count：{spec.min_cell_count} 低于批准的 {form.min_cell_count}",
                field="min_cell_count",
            )
        )
    if spec.cross_border and not form.cross_border:
        reasons.append(
            _widened(
                "cross_border_added",
                "cross_border: the application did not ask for cross-border use",
                "cross_border：申请中未申请跨境使用",
                field="cross_border",
            )
        )
    return reasons


def _raise_widened(app_id: str, reasons: list[Reason]) -> None:
    if reasons:
        raise Forbidden(
            "application_widened",
            f"The project spec goes beyond approved application {app_id}: "
            + "; ".join(r.message for r in reasons),
            f"项目规格超出已批准的申请 {app_id}：" + "；".join(r.message_zh for r in reasons),
            reasons=reasons,
            details={"application": app_id},
        )


def check_within_application(session: Session, spec: ProjectSpec, *, paths: Paths | None = None) -> None:
    """The spec names an approved application whose decision verifies (``application_not_approved``),
    which has a signed DUA (``dua_missing``, T14), and it is not wider than either
    (``application_widened``, one reason per widened item). ``paths`` defaults to the vault of the
    session's database."""
    if spec.application is None:
        raise Forbidden(
            "application_required",
            f"Project spec {spec.id} names no approved application",
            f"项目规格 {spec.id} 未指明已批准的申请",
        )
    vault = paths or audit.vault_for(session)
    approved = agreements.approved_application(session, spec.application)
    voting.verify_decision(session, vault, spec.application)  # the state column alone is not trusted
    dua = agreements.check_dua(session, spec.application, paths=vault)
    _raise_widened(spec.application, widening_reasons(approved, dua, spec))


def check_version_within(session: Session, project: Project, spec: ProjectSpec) -> None:
    """A later spec version of a project from an application stays within it: same application,
    nothing widened, and in particular no end date past the approval or the DUA (T6)."""
    if project.application_id is None:
        return
    if spec.application != project.application_id:
        raise Forbidden(
            "application_changed",
            f"Project {project.id} was provisioned from application {project.application_id}; "
            f"a new version cannot name {spec.application}",
            f"项目 {project.id} 依据申请 {project.application_id} 开通；新版本不能改为 {spec.application}",
            details={"project": project.id, "application": project.application_id},
        )
    approved = agreements.approved_application(session, project.application_id)
    dua = agreements.check_dua(session, project.application_id)
    _raise_widened(project.application_id, widening_reasons(approved, dua, spec))


def _check_provisioner(session: Session, approved: ApprovedApplication, actor: str) -> None:
    """A steward provisions (R-ROLE-2); nobody provisions an application they are on."""
    roles.check_role(session, actor, Role.STEWARD, "provision a project", "开通项目")
    if actor in team_of(approved):
        raise Forbidden(
            "own_application",
            f"{actor} is on the team of application {approved.id} and cannot provision it",
            f"{actor} 是申请 {approved.id} 的团队成员，不能为其开通项目",
            details={"application": approved.id, "user": actor},
        )


def provision_from_application(
    session: Session,
    paths: Paths,
    app_id: str,
    *,
    project_id: str,
    actor: str,
    narrowing: dict[str, Any] | None = None,
    preparer: projects.Preparer | None = None,
) -> Project:
    """Create the project of an approved application through ``enclave.projects.create_project``
    (every project check runs, and ``check_within_application``). ``preparer``: as for
    ``create_project``; None creates it unprepared, as ``project create --no-prepare`` does."""
    approved = agreements.approved_application(session, app_id)
    _check_provisioner(session, approved, actor)
    spec = spec_from_application(session, paths, app_id, project_id=project_id, narrowing=narrowing)
    projects.create_project(session, paths, spec, actor=actor, preparer=preparer)
    return projects.get(session, project_id)
