"""What a user may see of export requests: the ``show`` and ``list`` shapes (ARCHITECTURE §9)."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from enclave.committee import Tally
from enclave.config import Paths
from enclave.db.models import ExportRequest, ProjectMember
from enclave.errors import BadInput
from export_review import permissions, reproduction
from export_review.policy import ReviewSettings
from export_review.repository import get_request, seated_committee
from export_review.voting import signature_valid, tallies
from export_review.workflow import STATE_OWNER, ExportState, all_voted


def _vote_dict(paths: Paths, request: ExportRequest, vote) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {
        "file": vote.file.name,
        "reviewer": vote.reviewer,
        "choice": vote.choice,
        "comment": vote.comment,
        "override": vote.override_reason,
        "public_key": vote.public_key,
        "signature": vote.signature,
        "signature_valid": signature_valid(paths, request, vote),
        "at": vote.created_at,
    }


def describe(
    session: Session,
    paths: Paths,
    request_id: str,
    *,
    settings: ReviewSettings,
    viewer: str | None = None,
) -> dict[str, Any]:
    """The request as ``viewer`` may see it (everything for the vault operator, ``viewer=None``)."""
    request = get_request(session, request_id)
    if viewer is not None:
        permissions.check_user_can_view(session, request, viewer, settings.stewards)
    counted = tallies(paths, session, request, settings)
    visible = permissions.user_sees_votes(session, request, viewer, all_voted(counted))
    votes = [_vote_dict(paths, request, v) for v in request.votes]
    revised_by = session.scalar(select(ExportRequest.id).where(ExportRequest.previous_id == request.id))
    out: dict[str, Any] = {
        **list_row(request),
        "previous": request.previous_id,
        "revised_by": revised_by,
        "justification": request.justification,
        "abroad": request.abroad,
        "records": request.records,
        "k": request.k,
        "digest": request.digest,
        "files": [
            {
                "name": f.name,
                "sha256": f.sha256,
                "size": f.size,
                "kind": f.kind,
                "failed_checks": f.failed,
                "findings": json.loads(f.findings_json),
                **({"tally": counted[f.name].to_dict()} if visible else {}),
            }
            for f in request.files
        ],
        "votes": votes if visible else [v for v in votes if v["reviewer"] == viewer],
        "votes_hidden": not visible,
        "committee": _committee(session, request, settings, counted, visible),
        "decision": json.loads(request.decision_json or "null"),
        "acro": json.loads(request.acro_json or "null"),
        "lineage": json.loads(request.lineage_json or "{}"),
        "release": json.loads(request.release_json or "null"),
        "provenance": json.loads(request.provenance_json) if request.provenance_json else None,
        "reproduction": reproduction.view(session, request),
    }
    return out


def _committee(
    session: Session,
    request: ExportRequest,
    settings: ReviewSettings,
    counted: dict[str, Tally],
    visible: bool,
) -> dict[str, Any]:
    """The rule and where each file stands. While votes are hidden from the viewer only how many
    members have voted on each file is given: no choice, no name, no count of approvals."""
    rule = settings.committee
    seated = len(seated_committee(session, request.project_id))
    files: dict[str, dict[str, int]] = {}
    for name, tally in counted.items():
        files[name] = {"voted": seated - tally.outstanding}
        if visible:
            files[name] |= {
                "approvals": tally.approvals,
                "still_needed": max(tally.needed - tally.approvals, 0),
            }
    return {
        "numerator": rule.numerator,
        "denominator": rule.denominator,
        "strict": rule.strict,
        "min_approvals": rule.min_approvals,
        "seated": seated,
        "needed": rule.needed(seated),
        "files": files,
    }


def version_chain(session: Session, request: ExportRequest) -> list[str]:
    """The ids of every version of the request (those it revises, those revising it), oldest first."""
    first, seen = request, {request.id}
    while first.previous_id is not None and first.previous_id not in seen:
        earlier = session.get(ExportRequest, first.previous_id)
        if earlier is None:
            break
        first = earlier
        seen.add(first.id)
    chain = [first.id]
    while True:
        later = session.scalar(select(ExportRequest.id).where(ExportRequest.previous_id == chain[-1]))
        if later is None or later in chain:
            return chain
        chain.append(later)


def versions_to_compare(
    session: Session,
    paths: Paths,
    request_id: str,
    other_id: str | None,
    *,
    settings: ReviewSettings,
    viewer: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two versions of one request as ``viewer`` may see them, older first: ``request_id`` and
    ``other_id`` (default: the version it revises). Any id outside the request's own chain is refused
    the same way, whether it exists or not (nothing to learn about other requests)."""
    first = describe(session, paths, request_id, settings=settings, viewer=viewer)
    other_id = other_id or first["previous"]
    if other_id is None:
        raise BadInput(
            "export_compare_no_previous",
            f"Export request {request_id} is the first version: there is nothing to compare it with",
            f"导出申请 {request_id} 是第一个版本：没有可比较的版本",
        )
    if other_id == request_id:
        raise BadInput(
            "export_compare_same_version",
            "Choose another version to compare with, not the request itself",
            "请选择另一个版本进行比较，而不是申请本身",
        )
    if other_id not in version_chain(session, get_request(session, request_id)):
        raise BadInput(
            "export_compare_other_chain",
            f"{other_id[:40]!r} is not a version of export request {request_id}",
            f"{other_id[:40]!r} 不是导出申请 {request_id} 的版本",
        )
    second = describe(session, paths, other_id, settings=settings, viewer=viewer)
    return (first, second) if first["version"] < second["version"] else (second, first)


def list_row(request: ExportRequest) -> dict[str, Any]:
    """What every view of a request shows (``describe``, ``list_requests`` and the reviewers' history
    add their own fields): who asked for what in which project, its state and whose turn it is."""
    return {
        "id": request.id,
        "project": request.project_id,
        "requester": request.requester,
        "state": request.state,
        "waiting_on": STATE_OWNER[ExportState(request.state)].value,
        "version": request.version,
        "files": len(request.files),
        "created_at": request.created_at,
        "updated_at": request.updated_at,
    }


def visible_to(query: Select[Any], viewer: str, stewards: Collection[str]) -> Select[Any]:
    """``query`` narrowed to the requests ``viewer`` may see: those of their projects (stewards: all)."""
    if viewer in stewards:
        return query
    mine = select(ProjectMember.project_id).where(ProjectMember.username == viewer)
    return query.where(ExportRequest.project_id.in_(mine))


def list_requests(
    session: Session,
    *,
    settings: ReviewSettings,
    project: str | None = None,
    state: str | None = None,
    viewer: str | None = None,
    requester: str | None = None,
) -> list[dict[str, Any]]:
    """Requests (of ``requester`` only, if given), newest first; a viewer sees only the projects they
    belong to (stewards: all)."""
    query = (
        select(ExportRequest)
        .order_by(ExportRequest.created_at.desc(), ExportRequest.id)
        .options(selectinload(ExportRequest.files))  # one query for every row's files, not one each
    )
    if state is not None:
        try:
            query = query.where(ExportRequest.state == ExportState(state).value)
        except ValueError:
            raise BadInput(
                "export_state_unknown",
                f"Unknown state {state!r}; one of {[s.value for s in ExportState]}",
                f"未知状态 {state!r}；可选 {[s.value for s in ExportState]}",
            ) from None
    if project is not None:
        query = query.where(ExportRequest.project_id == project)
    if requester is not None:
        query = query.where(ExportRequest.requester == requester)
    if viewer is not None:
        query = visible_to(query, viewer, settings.stewards)
    return [
        {**list_row(r), "previous": r.previous_id, "abroad": r.abroad, "records": r.records}
        for r in session.scalars(query)
    ]
