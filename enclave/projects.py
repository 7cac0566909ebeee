"""Project specs: validate against the catalog, store as immutable versions, provision.

``create_project`` checks an approved application (datasets and columns exist, the person key
comes with any other column, share rules, R-SEC-5 separation of duties in ``enclave.specs``),
stores the spec as version 1 and hands the data to a ``Preparer`` — the seam where the workspace
is built (``enclave.prepare``). The rows, the audit events and the prepared data appear together
or not at all: preparation writes its files atomically and the transaction commits only after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit, catalog
from enclave.audit import AuditAction
from enclave.config import Paths
from enclave.db.models import Project, ProjectMember, ProjectSpecVersion
from enclave.errors import BadInput, Forbidden, NotFound, Reason, Refused
from enclave.project_states import ProjectState, check_preparable, check_transition
from enclave.specs import ColumnRole, DatasetSpec, Level, ProjectSpec, ShareType, parse_stored_project_spec

SourceMap = dict[str, tuple[DatasetSpec, Path]]


class Preparer(Protocol):
    """Builds a project's workspace data; returns a JSON-safe report. Raises to abort creation."""

    def __call__(
        self, paths: Paths, spec: ProjectSpec, datasets: SourceMap, *, version: int
    ) -> dict[str, Any]: ...


def workspace_preparer(
    paths: Paths,
    spec: ProjectSpec,
    datasets: SourceMap,
    *,
    version: int,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The default preparer: de-identify into the vault (``enclave.prepare``); ``progress`` is told
    each step ("visits: de-identifying")."""
    from enclave.prepare.build import prepare_workspace

    return prepare_workspace(paths, spec, datasets, version=version, progress=progress).to_dict()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def validate_against_catalog(session: Session, spec: ProjectSpec) -> dict[str, DatasetSpec]:
    """Every dataset and column exists, and the person key comes with any other column."""
    reasons: list[Reason] = []
    dataset_specs: dict[str, DatasetSpec] = {}
    for name, columns in spec.datasets.items():
        try:
            dataset_spec = catalog.current_spec(session, name)
        except NotFound:
            reasons.append(
                Reason(
                    "dataset_unknown",
                    f"datasets.{name}: no such dataset in the catalog",
                    f"datasets.{name}：目录中没有该数据集",
                    details={"field": f"datasets.{name}"},
                )
            )
            continue
        dataset_specs[name] = dataset_spec
        for column in columns:
            if column not in dataset_spec.columns:
                reasons.append(
                    Reason(
                        "column_unknown",
                        f"datasets.{name}: the dataset has no column {column!r}",
                        f"datasets.{name}：该数据集没有列 {column!r}",
                        details={"field": f"datasets.{name}", "column": column},
                    )
                )
        if dataset_spec.person_key not in columns:
            reasons.append(
                Reason(
                    "person_key_required",
                    f"datasets.{name}: the person key {dataset_spec.person_key!r} must be approved with the "
                    "other columns (minimum counts are taken over distinct persons)",
                    f"datasets.{name}：必须同时批准个人标识列 {dataset_spec.person_key!r}"
                    "（最小计数按不同个人计算）",
                    details={"field": f"datasets.{name}", "column": dataset_spec.person_key},
                )
            )
    if reasons:
        raise BadInput(
            "project_spec_invalid",
            "The project spec does not match the catalog: " + "; ".join(r.message for r in reasons),
            "项目规格与数据目录不符：" + "；".join(r.message_zh for r in reasons),
            reasons=reasons,
        )
    return dataset_specs


def check_shareable(session: Session, spec: ProjectSpec, overrides: Mapping[str, str], actor: str) -> None:
    """A dataset that is not shared, or is level 5, needs an explicit, audited override (R-CAT-6..8)."""
    blocked = []
    for name in spec.datasets:
        dataset = catalog.get(session, name)
        if dataset.share_type == ShareType.NONE.value or dataset.level == Level.L5:
            blocked.append(dataset)
    unknown = sorted(set(overrides) - set(spec.datasets))
    if unknown:
        raise BadInput(
            "override_unknown_dataset",
            f"Overrides name datasets that are not in the project: {', '.join(unknown)}",
            f"豁免指定的数据集不在项目中：{', '.join(unknown)}",
        )
    reasons = []
    for dataset in blocked:
        reason_text = (overrides.get(dataset.name) or "").strip()
        if not reason_text:
            reasons.append(
                Reason(
                    "dataset_not_shareable",
                    f"{dataset.name}: share type {dataset.share_type}, level {dataset.level}: not shared "
                    "without an explicit override and its reason",
                    f"{dataset.name}：共享类型 {dataset.share_type}，级别 {dataset.level}："
                    "未经明确豁免并说明理由不予共享",
                    details={"dataset": dataset.name},
                )
            )
            continue
        audit.record(
            session,
            AuditAction.DATASET_SHARE_OVERRIDE,
            actor=actor,
            obj=f"dataset:{dataset.name}",
            project=spec.id,
            details={"reason": reason_text, "level": dataset.level, "share_type": dataset.share_type},
        )
    if reasons:
        raise Refused(
            "dataset_not_shareable",
            "A dataset in this project may not be shared without an override.",
            "本项目中的数据集未经豁免不得共享。",
            reasons=reasons,
        )


def _sources(session: Session, paths: Paths, dataset_specs: dict[str, DatasetSpec]) -> SourceMap:
    sources: SourceMap = {}
    for name, dataset_spec in dataset_specs.items():
        version = catalog.current_version(session, name)
        sources[name] = (
            dataset_spec,
            catalog.raw_copy_path(paths, name, version.sha256, version.source_format),
        )
    return sources


def _store_version(
    session: Session, spec: ProjectSpec, version: int, dataset_specs: dict[str, DatasetSpec], actor: str
) -> ProjectSpecVersion:
    spec_json = audit.canonical_json(spec.model_dump(mode="json"))
    versions = {name: catalog.get(session, name).current_version for name in dataset_specs}
    row = ProjectSpecVersion(
        project_id=spec.id,
        version=version,
        spec_json=spec_json,
        spec_sha256=sha256_text(spec_json),
        dataset_versions_json=audit.canonical_json(versions),
        created_at=audit.now_iso(),
        created_by=actor,
    )
    session.add(row)
    return row


def create_project(
    session: Session,
    paths: Paths,
    spec: ProjectSpec,
    *,
    actor: str,
    overrides: Mapping[str, str] | None = None,
    preparer: Preparer | None = workspace_preparer,
    today: date | None = None,
    without_application: str | None = None,
) -> dict[str, Any]:
    """Validate, store version 1, and prepare the workspace; all in the caller's transaction.

    The spec names its approved application (``application: ID``), which must verify, have a signed
    DUA and not be widened (``enclave.provisioning.check_within_application``; R-APP-15, T14), or
    ``without_application`` gives the reason for an audited override (else ``application_required``).
    A spec whose period has ended is refused (``project_ended``, R-LIFE-9); one whose period has
    not started is created, but refused on every access path until its start date."""
    from enclave.lifecycle import check_not_ended

    if session.get(Project, spec.id) is not None:
        raise BadInput("project_exists", f"A project {spec.id!r} already exists", f"项目 {spec.id!r} 已存在")
    override = _check_application(session, paths, spec, without_application)
    check_not_ended(spec, today)
    dataset_specs = validate_against_catalog(session, spec)
    check_shareable(session, spec, overrides or {}, actor)
    now = audit.now_iso()
    project = Project(
        id=spec.id,
        title=spec.title,
        state=ProjectState.APPROVED,
        access=spec.access.value,
        pi=spec.pi,
        period_start=spec.period.start.isoformat(),
        period_end=spec.period.end.isoformat(),
        current_spec_version=1,
        locked=False,
        created_at=now,
        updated_at=now,
        application_id=spec.application,
    )
    session.add(project)
    session.flush()
    version = _store_version(session, spec, 1, dataset_specs, actor)
    from enclave.roles import check_project_member_allowed

    for username, role in spec.members():
        check_project_member_allowed(session, username, role)  # no de-id operator uses data (R-ROLE-5)
        session.add(ProjectMember(project_id=spec.id, username=username, role=role))
    session.flush()
    if override is not None:
        audit.record(
            session,
            AuditAction.PROJECT_CREATE_WITHOUT_APPLICATION,
            actor=actor,
            obj=f"project:{spec.id}",
            project=spec.id,
            details={"reason": override},
        )
    audit.record(
        session,
        AuditAction.PROJECT_CREATE,
        actor=actor,
        obj=f"project:{spec.id}",
        project=spec.id,
        details={
            "application": spec.application,
            "spec_sha256": version.spec_sha256,
            "datasets": json.loads(version.dataset_versions_json),
            "members": [{"user": u, "role": r} for u, r in spec.members()],
            "access": spec.access.value,
            "period": {"start": project.period_start, "end": project.period_end},
        },
    )
    report = None
    if preparer is not None:
        report = _prepare(session, paths, project, spec, dataset_specs, 1, preparer, actor)
    return {"project": spec.id, "state": project.state, "spec_version": 1, "preparation": report}


def _check_application(
    session: Session, paths: Paths, spec: ProjectSpec, without_application: str | None
) -> str | None:
    """No project without its approved application (R-APP-15, T14), unless the override's reason is
    given: returns that reason (to be audited), or None when the spec names its application."""
    reason = (without_application or "").strip()
    if spec.application is None:
        if not reason:
            raise Forbidden(
                "application_required",
                f"Project spec {spec.id} names no approved application: add application: ID, or give "
                "the reason for creating it without one (--without-application REASON, audited)",
                f"项目规格 {spec.id} 未指明已批准的申请：请添加 application: ID，或说明无申请创建的理由"
                "（--without-application REASON，记入审计日志）",
                details={"project": spec.id},
            )
        return reason
    if reason:
        raise BadInput(
            "application_override_conflict",
            f"Project spec {spec.id} names application {spec.application}: it needs no override",
            f"项目规格 {spec.id} 已指明申请 {spec.application}：无需豁免",
        )
    from enclave.provisioning import check_within_application

    check_within_application(session, spec, paths=paths)
    return None


def _prepare(
    session: Session,
    paths: Paths,
    project: Project,
    spec: ProjectSpec,
    dataset_specs: dict[str, DatasetSpec],
    version: int,
    preparer: Preparer,
    actor: str,
) -> dict[str, Any]:
    report = preparer(paths, spec, _sources(session, paths, dataset_specs), version=version)
    if project.state != ProjectState.ACTIVE:  # a first preparation: approved -> active
        check_transition(project, ProjectState.ACTIVE)
    project.state = ProjectState.ACTIVE
    project.updated_at = audit.now_iso()
    audit.record(
        session,
        AuditAction.PROJECT_PREPARE,
        actor=actor,
        obj=f"project:{spec.id}",
        project=spec.id,
        details={"version": version, "report": report},
    )
    return report


def prepare_project(
    session: Session,
    paths: Paths,
    project_id: str,
    *,
    actor: str,
    preparer: Preparer = workspace_preparer,
    today: date | None = None,
) -> dict[str, Any]:
    """Prepare again (new dataset versions): a new immutable spec version with the same approval.
    Not once the period has ended (``project_ended``), whatever the state says."""
    from enclave.lifecycle import check_not_ended

    project = get(session, project_id)
    check_preparable(project)
    check_not_ended(project, today)
    spec = current_spec(session, project_id)
    from enclave.provisioning import check_version_within

    check_version_within(session, project, spec)  # T6: no end date past the approval or the DUA
    dataset_specs = validate_against_catalog(session, spec)
    version = project.current_spec_version + 1
    _store_version(session, spec, version, dataset_specs, actor)
    project.current_spec_version = version
    session.flush()
    report = _prepare(session, paths, project, spec, dataset_specs, version, preparer, actor)
    return {"project": project_id, "state": project.state, "spec_version": version, "preparation": report}


def get(session: Session, project_id: str) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound("project_not_found", f"No project {project_id!r}", f"没有项目 {project_id!r}")
    return project


def current_spec_row(session: Session, project_id: str) -> ProjectSpecVersion:
    project = get(session, project_id)
    row = session.scalar(
        select(ProjectSpecVersion).where(
            ProjectSpecVersion.project_id == project_id,
            ProjectSpecVersion.version == project.current_spec_version,
        )
    )
    assert row is not None, "a project always has its current spec version"
    return row


def current_spec(session: Session, project_id: str) -> ProjectSpec:
    """The stored spec; one stored before ``date_jitter_days`` existed reads as 0 (no jitter)."""
    return parse_stored_project_spec(json.loads(current_spec_row(session, project_id).spec_json))


def dataset_specs_for(session: Session, project_id: str) -> dict[str, DatasetSpec]:
    """The dataset specs as registered at the project's current version."""
    from enclave.db.models import DatasetVersion

    row = current_spec_row(session, project_id)
    out = {}
    for name, sha in json.loads(row.dataset_versions_json).items():
        version = session.scalar(
            select(DatasetVersion).where(DatasetVersion.dataset_name == name, DatasetVersion.sha256 == sha)
        )
        assert version is not None
        out[name] = DatasetSpec.model_validate(json.loads(version.spec_json))
    return out


def roles_of(session: Session, project_id: str, username: str) -> set[str]:
    return set(
        session.scalars(
            select(ProjectMember.role).where(
                ProjectMember.project_id == project_id, ProjectMember.username == username
            )
        )
    )


def list_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.id)))


def describe(session: Session, project_id: str, *, today: date | None = None) -> dict[str, Any]:
    from enclave.lifecycle import retention_review

    project = get(session, project_id)
    row = current_spec_row(session, project_id)
    return {
        "id": project.id,
        "title": project.title,
        "state": project.state,
        "locked": project.locked,
        "access": project.access,
        "pi": project.pi,
        "application": project.application_id,
        "period": {"start": project.period_start, "end": project.period_end},
        "spec_version": project.current_spec_version,
        "spec_sha256": row.spec_sha256,
        "spec": json.loads(row.spec_json),
        "dataset_versions": json.loads(row.dataset_versions_json),
        "members": sorted(
            ({"user": m.username, "role": m.role} for m in project.members),
            key=lambda m: (m["role"], m["user"]),
        ),
        "versions": [
            {
                "version": v.version,
                "spec_sha256": v.spec_sha256,
                "created_at": v.created_at,
                "by": v.created_by,
            }
            for v in project.spec_versions
        ],
        "created_at": project.created_at,
        "updated_at": project.updated_at,
        "retention_review": retention_review(session, project, today),  # R-LIFE-8
    }


def dropped_at_preparation(spec: ProjectSpec, dataset_specs: dict[str, DatasetSpec]) -> dict[str, list[str]]:
    """Approved columns that preparation drops all the same: direct identifiers and free text."""
    dropped = {}
    for name, columns in spec.datasets.items():
        roles = dataset_specs[name].columns
        gone = [c for c in columns if roles[c].role in (ColumnRole.DIRECT_ID, ColumnRole.TEXT)]
        if gone:
            dropped[name] = gone
    return dropped
