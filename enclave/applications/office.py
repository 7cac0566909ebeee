"""The Office's pre-review (初审, R-APP-5, 6, 8, 9): checklist, scorecard, return or forward.

A reviewer holds the Office role and is neither the applicant nor on the team. Forwarding to the
Committee needs every checklist item ticked and a full scorecard; returning needs a comment for
the applicant. ``history`` shows the reviewer what the applicant and their organisation asked for
and exported before, with the datasets requested again flagged, so that data leaking out in
batches over time (分批分期泄露, R-APP-5) is visible on one screen.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit, roles
from enclave.applications import service
from enclave.applications.workflow import ApplicationActor, ApplicationState, check_transition, set_state
from enclave.config import Paths
from enclave.db.models import Application, ApplicationReview, ExportRequest, Project, ProjectSpecVersion
from enclave.errors import BadInput, Forbidden, Reason

# R-APP-8: what the review covers (合法性、正当性、必要性、目的、内容、使用方), the applicant's
# data-security capability, and their willingness to sign the data-use agreement.
CHECKLIST: dict[str, dict[str, str]] = {
    "legality": {"en": "Legality: the use is lawful", "zh": "合法性：使用合法"},
    "legitimacy": {"en": "Legitimacy: the use is proper and justified", "zh": "正当性：使用正当"},
    "necessity": {
        "en": "Necessity: only the minimum necessary columns, rows and time range (R-APP-4)",
        "zh": "必要性：仅申请最少必要的字段、记录和时间范围（R-APP-4）",
    },
    "purpose": {
        "en": "Purpose: non-profit and as stated (R-APP-3)",
        "zh": "目的：非营利且与申请一致（R-APP-3）",
    },
    "content": {"en": "Content: the data requested fits the purpose", "zh": "内容：申请的数据与目的相符"},
    "receiving_party": {
        "en": "Receiving party: the applicant's organisation, no third party",
        "zh": "使用方：仅限申请单位，无第三方",
    },
    "security_capability": {
        "en": "The applicant has adequate data-security capability",
        "zh": "申请方具备相应的数据安全能力",
    },
    "dua_willingness": {
        "en": "The applicant will sign the data-use agreement",
        "zh": "申请方愿意签署数据使用协议",
    },
}

# R-APP-9: the five dimensions of the review scorecard, each scored 1 (worst) to 5 (best).
SCORECARD: dict[str, dict[str, str]] = {
    "legality_legitimacy": {"en": "Legality and legitimacy", "zh": "合法性与正当性"},
    "consistency_with_need": {
        "en": "Consistency between application and need (no over-scope)",
        "zh": "申请与需求的一致性（无超范围申请）",
    },
    "data_value": {
        "en": "Value of the data: volume, diseases covered, social benefit",
        "zh": "数据价值：数据量、覆盖病种、社会效益",
    },
    "leakage_risk": {
        "en": "Leakage risk: people affected, diseases, patient harm (5 = lowest risk)",
        "zh": "泄露风险：涉及人数、病种、对患者的危害（5 = 风险最低）",
    },
    "provision_cost": {
        "en": "Provision cost: extraction, cleaning, de-identification, transfer (5 = lowest cost)",
        "zh": "提供成本：抽取、清洗、去标识化、传输（5 = 成本最低）",
    },
}
SCORE_MIN, SCORE_MAX = 1, 5
OUTCOMES = {"forward": ApplicationState.COMMITTEE_REVIEW, "return": ApplicationState.RETURNED}


def _check_reviewer(session: Session, app: Application, reviewer: str) -> None:
    roles.require(session, reviewer, roles.PRE_REVIEW)
    if service.involves(app, reviewer):
        raise Forbidden(
            "application_self_review",
            f"{reviewer} is the applicant or on the team of application {app.id}: they cannot review it",
            f"{reviewer} 是申请 {app.id} 的申请人或团队成员：不能审核该申请",
            details={"application": app.id, "user": reviewer},
        )


def _check_checklist(checklist: dict[str, bool], forward: bool) -> None:
    unknown = sorted(set(checklist) - set(CHECKLIST))
    not_bool = sorted(k for k, v in checklist.items() if not isinstance(v, bool))
    if unknown or not_bool:
        raise BadInput(
            "checklist_invalid",
            f"Checklist items must be among {', '.join(CHECKLIST)} and true or false; "
            f"unknown: {unknown}, not true/false: {not_bool}",
            f"检查项必须属于 {', '.join(CHECKLIST)} 且取值为真或假；未知：{unknown}，取值无效：{not_bool}",
            details={"unknown": unknown, "invalid": not_bool},
        )
    unticked = [item for item in CHECKLIST if checklist.get(item) is not True]
    if forward and unticked:
        raise BadInput(
            "checklist_incomplete",
            "Every checklist item must be ticked to forward the application: " + ", ".join(unticked),
            "转交委员会前必须勾选全部检查项：" + "、".join(CHECKLIST[i]["zh"] for i in unticked),
            reasons=[
                Reason("checklist_item_unticked", CHECKLIST[i]["en"], CHECKLIST[i]["zh"], details={"item": i})
                for i in unticked
            ],
            details={"unticked": unticked},
        )


def _check_scorecard(scorecard: dict[str, int], forward: bool) -> None:
    unknown = sorted(set(scorecard) - set(SCORECARD))
    invalid = sorted(
        k
        for k, v in scorecard.items()
        if isinstance(v, bool) or not isinstance(v, int) or not SCORE_MIN <= v <= SCORE_MAX
    )
    if unknown or invalid:
        raise BadInput(
            "scorecard_invalid",
            f"Scores are whole numbers {SCORE_MIN}-{SCORE_MAX} on {', '.join(SCORECARD)}; "
            f"unknown: {unknown}, invalid: {invalid}",
            f"评分须为 {SCORE_MIN}-{SCORE_MAX} 的整数，维度为 {', '.join(SCORECARD)}；"
            f"未知：{unknown}，无效：{invalid}",
            details={"unknown": unknown, "invalid": invalid},
        )
    missing = [d for d in SCORECARD if d not in scorecard]
    if forward and missing:
        raise BadInput(
            "scorecard_incomplete",
            "Every scorecard dimension must be scored to forward the application: " + ", ".join(missing),
            "转交委员会前必须为全部维度评分：" + "、".join(SCORECARD[d]["zh"] for d in missing),
            details={"missing": missing},
        )


def review(
    session: Session,
    paths: Paths,
    app_id: str,
    *,
    reviewer: str,
    outcome: str,
    checklist: dict[str, bool],
    scorecard: dict[str, int],
    comment: str = "",
) -> Application:
    """Record the Office's pre-review and return the application or forward it to the Committee."""
    app = service.get(session, app_id, lock=True)
    _check_reviewer(session, app, reviewer)
    to = OUTCOMES.get(outcome)
    if to is None:
        raise BadInput(
            "review_outcome_invalid",
            f"The outcome is forward or return, not {outcome!r}",
            f"审核结论只能是 forward（转交）或 return（退回），不能是 {outcome!r}",
        )
    check_transition(app, to, ApplicationActor.OFFICE)
    forward = to is ApplicationState.COMMITTEE_REVIEW
    _check_checklist(checklist, forward)
    _check_scorecard(scorecard, forward)
    if forward:
        from enclave.applications.voting import check_committee_can_decide  # voting builds on office's states

        check_committee_can_decide(session, paths, app)
    if not forward and not comment.strip():
        raise BadInput(
            "comment_required",
            "Say what the applicant must change: returning an application needs a comment",
            "退回申请时必须填写意见，说明申请人需要修改的内容",
        )
    row = ApplicationReview(
        application_id=app.id,
        revision=app.revision,
        reviewer=reviewer,
        outcome=outcome,
        checklist_json=audit.canonical_json({item: checklist.get(item, False) for item in CHECKLIST}),
        scorecard_json=audit.canonical_json({d: scorecard[d] for d in SCORECARD if d in scorecard}),
        comment=comment,
        created_at=audit.now_iso(),
    )
    session.add(row)
    session.flush()
    set_state(
        session,
        app,
        to,
        user=reviewer,
        actor=ApplicationActor.OFFICE,
        details={"review": row.id, "outcome": outcome, "scorecard": json.loads(row.scorecard_json)},
    )
    return app


# ---- history (R-APP-5) --------------------------------------------------------------------------


def _overlap(requested: dict[str, list[str]], other: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Datasets asked for again, with the columns asked for again."""
    return [
        {"dataset": name, "columns": sorted(set(requested[name]) & set(other[name]))}
        for name in sorted(set(requested) & set(other))
    ]


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _project_datasets(session: Session, project_id: str, cache: dict[str, dict[str, list[str]]]) -> dict:
    if project_id not in cache:
        project = session.get(Project, project_id)
        spec_json = None
        if project is not None:
            spec_json = session.scalar(
                select(ProjectSpecVersion.spec_json).where(
                    ProjectSpecVersion.project_id == project_id,
                    ProjectSpecVersion.version == project.current_spec_version,
                )
            )
        cache[project_id] = dict(json.loads(spec_json).get("datasets", {})) if spec_json else {}
    return cache[project_id]


def history(session: Session, app_id: str) -> dict[str, Any]:
    """Other applications by the same applicant or organisation, and the exports of the applicant and
    the team, each with the datasets and columns requested again flagged (R-APP-5)."""
    app = service.get(session, app_id)
    form = service.form_of(app)
    requested = form.columns()
    organisation = _norm(form.organisation)

    applications = []
    for other in session.scalars(
        select(Application).where(Application.id != app.id).order_by(Application.created_at, Application.id)
    ):
        other_form = json.loads(other.form_json)
        same_applicant = other.applicant == app.applicant
        same_org = _norm(other_form.get("organisation", "")) == organisation
        if not (same_applicant or same_org):
            continue
        datasets = {name: list(d.get("columns", [])) for name, d in other_form.get("datasets", {}).items()}
        applications.append(
            {
                **service.summary(other),
                "organisation": other_form.get("organisation"),
                "same_applicant": same_applicant,
                "same_organisation": same_org,
                "datasets": datasets,
                "overlap": _overlap(requested, datasets),
            }
        )

    people = sorted({app.applicant, *form.members()})
    exports = []
    cache: dict[str, dict[str, list[str]]] = {}
    for request in session.scalars(
        select(ExportRequest)
        .where(ExportRequest.requester.in_(people))
        .order_by(ExportRequest.created_at, ExportRequest.id)
    ):
        datasets = _project_datasets(session, request.project_id, cache)
        exports.append(
            {
                "id": request.id,
                "project": request.project_id,
                "requester": request.requester,
                "state": request.state,
                "created_at": request.created_at,
                "files": [f.name for f in request.files],
                "datasets": datasets,
                "overlap": _overlap(requested, datasets),
            }
        )

    flagged = sorted({o["dataset"] for entry in applications + exports for o in entry["overlap"]})
    return {
        "application": app.id,
        "applicant": app.applicant,
        "organisation": form.organisation,
        "applications": applications,
        "exports": exports,
        "overlap": bool(flagged),
        "overlapping_datasets": flagged,
    }


def history_summary(info: dict[str, Any]) -> dict[str, Any]:
    """The counts and flags of ``history``, for ``describe``."""
    return {
        "applications": len(info["applications"]),
        "exports": len(info["exports"]),
        "overlap": info["overlap"],
        "overlapping_datasets": info["overlapping_datasets"],
        "overlapping_applications": [a["id"] for a in info["applications"] if a["overlap"]],
        "overlapping_exports": [e["id"] for e in info["exports"] if e["overlap"]],
    }
