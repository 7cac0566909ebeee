"""Two versions of one export request side by side: the justification, which files were added,
removed, changed or left as they were (by sha256), each side's findings, and for tables the cells
that changed, marked on both sides (only for those allowed to preview, read from the vault)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from export_review import permissions, views
from export_review.repository import get_request
from export_review.service import ExportService
from export_review.web.preview import Mark, TablePreview, finding_marks, table_preview, verified

MAX_CHANGE_MARKS = 10_000  # changed cells marked per table; the count covers them all


@dataclass(frozen=True)
class FileComparison:
    """One file name across the two versions: ``added``, ``removed``, ``changed`` or ``unchanged``."""

    name: str
    status: str
    left: dict[str, Any] | None
    right: dict[str, Any] | None
    left_tables: list[TablePreview] = field(default_factory=list)
    right_tables: list[TablePreview] = field(default_factory=list)
    changed_cells: int | None = None  # tables only, when previewed


@dataclass(frozen=True)
class Comparison:
    left: dict[str, Any]  # the older version, as ``views.describe`` shows it to the viewer
    right: dict[str, Any]
    files: list[FileComparison]
    preview: bool
    versions: list[tuple[str, int]]  # every version of the request (id, number), oldest first


def _status(left: dict[str, Any] | None, right: dict[str, Any] | None) -> str:
    if left is None:
        return "added"
    if right is None:
        return "removed"
    return "unchanged" if left["sha256"] == right["sha256"] else "changed"


def changed_cells(
    old: pd.DataFrame, new: pd.DataFrame
) -> tuple[int, set[tuple[int, str]], set[tuple[int, str]]]:
    """How many cells differ, and the differing cells of each side as (row from 1, column): a cell
    differs when its value does, or when the other side has no such row or column."""
    columns = list(dict.fromkeys([*map(str, old.columns), *map(str, new.columns)]))
    rows = max(len(old), len(new))
    left = old.reset_index(drop=True).reindex(index=range(rows), columns=columns)
    right = new.reset_index(drop=True).reindex(index=range(rows), columns=columns)
    differs = (left != right) & ~(left.isna() & right.isna())
    sides: tuple[set[tuple[int, str]], set[tuple[int, str]]] = (set(), set())
    count = 0
    for column in columns:
        for row in differs.index[differs[column].to_numpy()]:
            count += 1
            for side, frame in zip(sides, (old, new), strict=True):
                if len(side) < MAX_CHANGE_MARKS and row < len(frame) and column in frame.columns:
                    side.add((int(row) + 1, column))
    return count, *sides


def _marks(label: str, cells: set[tuple[int, str]], findings: list[dict[str, Any]]) -> dict[Any, Mark]:
    marks: dict[Any, Mark] = dict(finding_marks(findings))
    for row, column in cells:
        key = (label, row, column)
        marks[key] = marks[key].merged(Mark(changed=True)) if key in marks else Mark(changed=True)
    return marks


def _with_tables(
    ctx: ExportService, ids: tuple[str, str], old: dict[str, Any], new: dict[str, Any]
) -> FileComparison:
    """A file in both versions, with each side's tables and the changed cells marked on both."""
    name, status = old["name"], _status(old, new)
    with ctx.session() as session:
        rows = [next(f for f in get_request(session, rid).files if f.name == name) for rid in ids]
        stored = [verified(ctx.paths, f) for f in rows]
    if stored[0] is None or stored[1] is None:
        return FileComparison(name, status, old, new)
    before = {t.label: t.frame for t in stored[0].content.tables}
    after = {t.label: t.frame for t in stored[1].content.tables}
    left_tables, right_tables, total = [], [], 0
    for label in dict.fromkeys([*before, *after]):
        empty = pd.DataFrame()
        count, left_cells, right_cells = changed_cells(before.get(label, empty), after.get(label, empty))
        total += count
        if label in before:
            left_tables.append(
                table_preview(label, before[label], _marks(label, left_cells, old["findings"]))
            )
        if label in after:
            right_tables.append(
                table_preview(label, after[label], _marks(label, right_cells, new["findings"]))
            )
    return FileComparison(
        name, status, old, new, left_tables, right_tables, total if before or after else None
    )


def compare(ctx: ExportService, request_id: str, other_id: str | None, user: str) -> Comparison:
    """``request_id`` beside ``other_id`` (default: the version it revises), older on the left."""
    settings = ctx.settings()
    with ctx.session() as session:
        left, right = views.versions_to_compare(
            session, ctx.paths, request_id, other_id, settings=settings, viewer=user
        )
        request = get_request(session, request_id)
        preview = permissions.user_can_preview(session, request, user, settings.stewards)
        versions = [(rid, get_request(session, rid).version) for rid in views.version_chain(session, request)]
    by_name = [{f["name"]: f for f in side["files"]} for side in (left, right)]
    files = []
    for name in dict.fromkeys([*by_name[0], *by_name[1]]):
        old, new = by_name[0].get(name), by_name[1].get(name)
        if preview and old is not None and new is not None:
            files.append(_with_tables(ctx, (left["id"], right["id"]), old, new))
        else:
            files.append(FileComparison(name, _status(old, new), old, new))
    return Comparison(left, right, files, preview, versions)
