"""What an analyst may see of their project: the views and their columns, with roles (R-QRY-2)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from enclave import projects
from enclave.errors import NotFound
from enclave.specs import ColumnRole

DROPPED_ROLES = (ColumnRole.DIRECT_ID, ColumnRole.TEXT)


def project_views(session: Session, project_id: str) -> list[dict[str, Any]]:
    """Each approved view with the columns preparation keeps, their roles and generalisation."""
    spec = projects.current_spec(session, project_id)
    dataset_specs = projects.dataset_specs_for(session, project_id)
    views = []
    for name in sorted(spec.datasets):
        dataset = dataset_specs[name]
        columns = []
        for column in spec.datasets[name]:
            column_spec = dataset.columns[column]
            if column_spec.role in DROPPED_ROLES:
                continue
            columns.append(
                {
                    "name": column,
                    "role": column_spec.role.value,
                    "generalize": column_spec.generalize.value if column_spec.generalize else None,
                    "description": column_spec.description,
                }
            )
        views.append(
            {"name": name, "title": dataset.title, "person_key": dataset.person_key, "columns": columns}
        )
    return views


def describe_view(session: Session, project_id: str, view: str) -> dict[str, Any]:
    for candidate in project_views(session, project_id):
        if candidate["name"] == view:
            return candidate
    raise NotFound("view_not_found", f"No view {view!r} in this project", f"本项目中没有视图 {view!r}")
