"""What the pages show, read from the domain modules: the catalog for the application form, the
form's choices, one application as its reader may see it, the queues by whose turn it is
(``workflow.STATE_OWNER``), and the projects of applications. Reads only: nothing here decides who
may do what."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import catalog
from enclave.applications import form, service, voting
from enclave.applications.workflow import STATE_OWNER, ApplicationState
from enclave.config import Paths
from enclave.db.models import Project
from enclave.specs import AccessMode


def catalog_for_form(session: Session) -> list[dict[str, Any]]:
    """Every dataset of the catalog with its columns and their roles, for the column checkboxes."""
    out = []
    for dataset in catalog.list_datasets(session):
        spec = catalog.current_spec(session, dataset.name)
        out.append(
            {
                "name": dataset.name,
                "title": dataset.title,
                "level": dataset.level,
                "share_type": dataset.share_type,
                "person_key": spec.person_key,
                "columns": [(name, column.role.value) for name, column in spec.columns.items()],
            }
        )
    return out


def form_choices() -> dict[str, list[str]]:
    """The values of the form's choice fields, from the domain's enums."""
    return {
        "purpose_category": [p.value for p in form.PurposeCategory],
        "track": [t.value for t in form.Track],
        "legal_basis": [b.value for b in form.LegalBasis],
        "access": [a.value for a in AccessMode],
        "team_role": [r.value for r in form.TeamRole],
        "attachment_kind": [k.value for k in form.AttachmentKind],
    }


def attachment_labels() -> dict[str, tuple[str, str]]:
    return {kind.value: labels for kind, labels in form.ATTACHMENT_LABELS.items()}


def application_for(session: Session, paths: Paths, app_id: str, viewer: str) -> dict[str, Any]:
    """What ``viewer`` may see of an application (``service.describe``, which refuses a reader who may
    not see it), with the votes as the committee's blind review allows (``voting.tally_of``) in place
    of ``describe``'s list, and the tally as ``tally``."""
    info = service.describe(session, paths, app_id, viewer=viewer)
    tally = voting.tally_of(session, paths, app_id, viewer=viewer)
    return {**info, "votes": tally.get("votes", []), "tally": tally}


def queue(session: Session, viewer: str, owner: str, *, state: str | None = None) -> list[dict[str, Any]]:
    """The applications the viewer may see whose turn belongs to ``owner`` (an ``ApplicationActor``)
    or, with ``state``, that are in that state."""
    rows = []
    for app in service.list_applications(session, viewer=viewer):
        current = ApplicationState(app.state)
        if (state is None and STATE_OWNER[current].value == owner) or current.value == state:
            rows.append(service.summary(app))
    return rows


def project_of(session: Session, app_id: str) -> Project | None:
    """The project provisioned from the application, if any."""
    return session.scalar(select(Project).where(Project.application_id == app_id).limit(1))


def project_summary(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "title": project.title,
        "state": project.state,
        "pi": project.pi,
        "application": project.application_id,
        "period": {"start": project.period_start, "end": project.period_end},
        "members": sorted((m.username, m.role) for m in project.members),
    }
