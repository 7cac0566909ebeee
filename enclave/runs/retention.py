"""What a project's destruction removes of its batch runs (R-LIFE-2): intermediate data.

The notebooks, executed notebooks, outputs and logs of the project's runs and templates are
deleted from the run store (unless another project's run holds the same bytes), and any working
folder left behind. The rows stay: they are the provenance of released exports and hold hashes
and names, never data. Exported files were copied to the export store and are kept with the export.
"""

from __future__ import annotations

import shutil
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave.config import Paths
from enclave.db.models import Run, RunOutput, RunTemplate
from enclave.runs.service import run_dir, run_store
from enclave.runs.worker import unmount_out


def _hashes(session: Session, project: str | None, *, other_than: str | None = None) -> set[str]:
    def scope(query: Any, column: Any) -> Any:
        if other_than is not None:
            return query.where(column != other_than)
        return query.where(column == project)

    found: set[str] = set()
    for column in (Run.notebook_sha256, Run.executed_sha256, Run.log_sha256):
        found |= set(session.scalars(scope(select(column), Run.project_id)))
    found |= set(
        session.scalars(scope(select(RunOutput.sha256).join(Run, RunOutput.run_id == Run.id), Run.project_id))
    )
    found |= set(session.scalars(scope(select(RunTemplate.notebook_sha256), RunTemplate.project_id)))
    found.discard(None)  # type: ignore[arg-type]
    return found


def destroy(session: Session, paths: Paths, project: str) -> list[dict[str, Any]]:
    """Delete the project's run files; the destroyed items for the certificate."""
    store = run_store(paths)
    items: list[dict[str, Any]] = []
    shared = _hashes(session, None, other_than=project)
    for sha256 in sorted(_hashes(session, project) - shared):
        path = store.path_for(sha256)
        if path.is_file():
            size = path.stat().st_size
            path.unlink()
            items.append({"kind": "run_file", "name": f"runs/{sha256}", "sha256": sha256, "bytes": size})
    for run_id in session.scalars(select(Run.id).where(Run.project_id == project)):
        folder = run_dir(paths, run_id)
        if folder.exists():
            unmount_out(folder / "out")  # a run folder left by a crashed worker may still hold one
            shutil.rmtree(folder)
            items.append({"kind": "directory", "name": str(folder.relative_to(paths.home))})
    return items
