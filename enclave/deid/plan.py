"""What preparation does to each column of one dataset, as one SELECT (R-PREP-6..11, R-PREP-17/18).

Default deny: a column reaches the prepared data only if the project approved it, and then only in
the form its role allows:

* ``person_key``: replaced by the project's keyed pseudonym (same name, text ``p_<16 hex>``);
* ``direct_id`` and ``text``: dropped even when approved (R-PREP-6, R-PREP-18);
* ``quasi_id``: generalised as the spec says, else kept;
* ``date``: shifted by the secret offset, plus the person's secret jitter when the project has one
  (the same shift for every date of a person, so intervals within a person are exact); a
  ``year``/``year_month`` generalisation applies *after* the shift, so no column carries the true
  calendar and none reveals the offset;
* ``measure``: kept; in row-level projects top- and bottom-coded (see :mod:`enclave.deid.coding`
  and :meth:`DatasetPlan.with_measure_bounds`);
* ``sensitive``, ``attribute``: kept.

With a time range (``ProjectSpec.time_ranges``, R-APP-4) the plan also filters the rows (see
:func:`time_range_filter`): a row is kept when every date it holds is within the range.

Secrets are bound parameters (see :mod:`enclave.deid.pseudonym` and :mod:`enclave.deid.dates`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from enclave.deid.coding import MeasureBounds, codable, coding_sql
from enclave.deid.dates import (
    DateTypeUnsupported,
    calendar_date_sql,
    date_shift_sql,
    person_shift_sql,
    project_offset_sql,
)
from enclave.deid.generalize import generalize_sql
from enclave.deid.pseudonym import pseudonym_sql
from enclave.deid.sql import quote_ident, quote_literal
from enclave.errors import BadInput, Reason
from enclave.specs import ColumnRole, DatasetSpec, TimeRange

PSEUDONYM_KEY_PARAM = "pseudonym_key"
OFFSET_KEY_PARAM = "offset_key"
JITTER_KEY_PARAM = "jitter_key"
CODED = "top_bottom_code"
ALWAYS_DROPPED = {ColumnRole.DIRECT_ID: "direct_id", ColumnRole.TEXT: "free_text"}


@dataclass(frozen=True)
class DatasetPlan:
    """The prepared form of one dataset: the SELECT list, what was dropped and why."""

    name: str
    select_list: list[str]
    columns: list[str]
    dropped: dict[str, str]  # column -> reason: not_approved | direct_id | free_text
    person_key: str
    person_key_kept: bool
    quasi_ids: list[str]
    transforms: dict[str, str] = field(default_factory=dict)  # column -> what was done
    measures: dict[str, str] = field(default_factory=dict)  # measures to code -> source DuckDB type
    row_filter: str | None = None  # a WHERE condition over the source rows (the time range), or None
    time_range: dict[str, Any] | None = None  # for the report: start, end and the date columns read

    def rows_sql(self, relation: str) -> str:
        """The source rows the plan prepares, as a relation: ``relation`` itself, or the rows that
        the time range keeps. Every read of a dataset at preparation goes through it."""
        if self.row_filter is None:
            return relation
        return f"(SELECT * FROM {relation} WHERE {self.row_filter})"

    def with_measure_bounds(self, bounds: Mapping[str, MeasureBounds]) -> DatasetPlan:
        """This plan with each measure that has bounds clipped to them (``top_bottom_code``)."""
        select_list = list(self.select_list)
        transforms = dict(self.transforms)
        for name, bound in bounds.items():
            if name not in self.measures or not bound.codes:
                continue
            index = self.columns.index(name)
            expression = coding_sql(quote_ident(name), self.measures[name], bound)
            select_list[index] = f"{expression} AS {quote_ident(name)}"
            transforms[name] = CODED
        return replace(self, select_list=select_list, transforms=transforms)


def _column_reason(code: str, dataset: str, column: str, en: str, zh: str) -> Reason:
    return Reason(
        code, f"{dataset}.{column}: {en}", f"{dataset}.{column}：{zh}", {"field": f"{dataset}.{column}"}
    )


def time_range_filter(
    spec: DatasetSpec, source_types: Mapping[str, str], time_range: TimeRange
) -> tuple[str, list[str], list[Reason]]:
    """The WHERE condition that keeps the records of ``spec`` dated within ``time_range`` (R-APP-4),
    the date columns it reads, and the problems that prevent it.

    A row is kept when it holds at least one date (a row with no date at all is dropped: minimum
    necessary) and every date it holds, over *all* ``role: date`` columns of the dataset, approved or
    not, is within [start, end]. Not "the first date column": the catalog stores a dataset spec as
    canonical JSON (sorted keys), so a column order means nothing, and a single record date would
    release the other dates of a row (a discharge after the range ends) beyond the approval. Which
    rows are kept does not depend on which columns are approved, so narrowing columns cannot widen
    the rows. A date that is NULL in one column (no discharge yet) does not drop its row.

    Evaluated on the ORIGINAL dates, before the shift: the shift is the project's secret offset
    (plus the person's jitter), so the approved calendar range applies to true dates, and the filter
    never involves the secret. The dates of the range are not secret; they are literals.
    """
    columns = spec.columns_with_role(ColumnRole.DATE)
    reasons: list[Reason] = []
    if not columns:
        reasons.append(
            Reason(
                "time_range_without_dates",
                f"{spec.name}: a time range needs a date column, and the dataset has none",
                f"{spec.name}：时间范围需要日期列，而该数据集没有日期列",
                {"field": f"time_ranges.{spec.name}"},
            )
        )
    days: list[str] = []
    for name in columns:
        if name not in source_types:
            reasons.append(
                _column_reason(
                    "column_missing", spec.name, name, "not found in the source data", "源数据中没有该列"
                )
            )
            continue
        try:
            days.append(calendar_date_sql(quote_ident(name), source_types[name]))
        except DateTypeUnsupported:
            reasons.append(
                _column_reason(
                    "date_type_unsupported",
                    spec.name,
                    name,
                    f"a date column cannot hold {source_types[name]}",
                    f"日期列不能是 {source_types[name]} 类型",
                )
            )
    start, end = (f"DATE {quote_literal(d.isoformat())}" for d in (time_range.start, time_range.end))
    dated = " OR ".join(f"{day} IS NOT NULL" for day in days)
    within = " AND ".join(f"({day} IS NULL OR {day} BETWEEN {start} AND {end})" for day in days)
    return f"({dated}) AND {within}", columns, reasons


@dataclass(frozen=True)
class _Shift:
    """How every date column of a dataset is shifted: the SQL of a row's offset in days, and the
    transform the report names."""

    offset_sql: str
    transform: str


@dataclass(frozen=True)
class _ColumnSql:
    """One approved column in its prepared form: the SELECT expression, what was done, and the
    source type of a measure to code (``None``: not coded)."""

    expression: str
    transform: str | None = None
    measure_type: str | None = None


def _date_shift(
    spec: DatasetSpec, *, per_person_offset: bool, date_jitter: bool, person_offset_column: str | None
) -> _Shift:
    """The project's offset, or each person's (offset plus jitter), computed from the person key or
    read from ``person_offset_column``."""
    if not (per_person_offset or date_jitter):
        offset_sql = project_offset_sql()
    elif person_offset_column is not None:
        offset_sql = quote_ident(person_offset_column)
    else:
        offset_sql = person_shift_sql(
            quote_ident(spec.person_key),
            per_person_offset=per_person_offset,
            jitter=date_jitter,
            offset_key=OFFSET_KEY_PARAM,
            jitter_key=JITTER_KEY_PARAM,
        )
    transform = "date_shift_per_person" if per_person_offset else "date_shift"
    transform += "+jitter" if date_jitter else ""
    return _Shift(offset_sql, transform)


def _unplannable(spec: DatasetSpec, name: str, source_types: Mapping[str, str]) -> Reason | None:
    """Why an approved column cannot be planned at all: unknown to the spec or missing in the source."""
    if name not in spec.columns:
        return _column_reason(
            "column_unknown", spec.name, name, "not a column of the dataset spec", "不是数据集规格中的列"
        )
    if name not in source_types:
        return _column_reason(
            "column_missing", spec.name, name, "not found in the source data", "源数据中没有该列"
        )
    return None


def _column_sql(
    spec: DatasetSpec, name: str, source_type: str, shift: _Shift, *, code_measures: bool
) -> _ColumnSql | Reason:
    """The prepared form of one kept column by its role (pseudonym, shifted date, measure to code),
    then its generalisation; or why its source type cannot be handled."""
    column = spec.columns[name]
    source = quote_ident(name)
    planned = _ColumnSql(source)
    if column.role is ColumnRole.PERSON_KEY:
        planned = _ColumnSql(pseudonym_sql(source, PSEUDONYM_KEY_PARAM), "pseudonym")
    elif column.role is ColumnRole.DATE:
        try:
            planned = _ColumnSql(date_shift_sql(source, source_type, shift.offset_sql), shift.transform)
        except DateTypeUnsupported:
            return _column_reason(
                "date_type_unsupported",
                spec.name,
                name,
                f"a date column cannot hold {source_type}",
                f"日期列不能是 {source_type} 类型",
            )
    elif column.role is ColumnRole.MEASURE and code_measures:
        if not codable(source_type):
            return _column_reason(
                "measure_type_unsupported",
                spec.name,
                name,
                f"a measure of a row-level project must be a number, not {source_type}",
                f"行级访问项目中的度量列必须是数值，不能是 {source_type} 类型",
            )
        planned = _ColumnSql(source, measure_type=source_type)
    if column.generalize is None:
        return planned
    return replace(
        planned,
        expression=generalize_sql(column.generalize, planned.expression),
        transform="+".join(filter(None, [planned.transform, column.generalize.value])),
    )


def _row_filter(
    spec: DatasetSpec, source_types: Mapping[str, str], time_range: TimeRange, reasons: Sequence[Reason]
) -> tuple[str, dict[str, Any], list[Reason]]:
    """The time range's WHERE condition, its entry in the report, and its problems that ``reasons``
    (the columns' problems) do not already name."""
    row_filter, date_columns, problems = time_range_filter(spec, source_types, time_range)
    seen = {(r.code, r.details.get("field")) for r in reasons}  # an approved date, reported once
    dated = {
        "start": time_range.start.isoformat(),
        "end": time_range.end.isoformat(),
        "date_columns": date_columns,
    }
    return row_filter, dated, [r for r in problems if (r.code, r.details.get("field")) not in seen]


def plan_dataset(
    spec: DatasetSpec,
    approved: Sequence[str],
    source_types: Mapping[str, str],
    *,
    per_person_offset: bool,
    date_jitter: bool = False,
    person_offset_column: str | None = None,
    code_measures: bool = False,
    time_range: TimeRange | None = None,
) -> DatasetPlan:
    """The plan for ``spec`` restricted to ``approved`` columns of a source with ``source_types``.

    With ``per_person_offset`` and/or ``date_jitter``, each person's whole shift (offset plus
    jitter) is computed in the SELECT from the person key, or, when ``person_offset_column`` names a
    column that already holds it (looked up once per person, see ``enclave.prepare.relations``),
    read from that column. With ``code_measures`` (row-level projects) every approved measure must
    be a number; the plan lists them in ``measures`` for :meth:`DatasetPlan.with_measure_bounds`.
    With ``time_range`` the plan keeps only the rows :func:`time_range_filter` keeps.

    Raises ``BadInput`` naming every approved column that the spec does not know, that the source
    lacks, or whose type cannot be handled.
    """
    reasons: list[Reason] = []
    select_list: list[str] = []
    columns: list[str] = []
    transforms: dict[str, str] = {}
    quasi_ids: list[str] = []
    measures: dict[str, str] = {}
    approved_set = set(approved)
    dropped = {name: "not_approved" for name in spec.columns if name not in approved_set}
    shift = _date_shift(
        spec,
        per_person_offset=per_person_offset,
        date_jitter=date_jitter,
        person_offset_column=person_offset_column,
    )
    for name in approved:
        problem = _unplannable(spec, name, source_types)
        if problem is not None:
            reasons.append(problem)
            continue
        role = spec.columns[name].role
        if role in ALWAYS_DROPPED:
            dropped[name] = ALWAYS_DROPPED[role]
            continue
        planned = _column_sql(spec, name, source_types[name], shift, code_measures=code_measures)
        if isinstance(planned, Reason):
            reasons.append(planned)
            continue
        if planned.transform is not None:
            transforms[name] = planned.transform
        if planned.measure_type is not None:
            measures[name] = planned.measure_type
        if role is ColumnRole.QUASI_ID:
            quasi_ids.append(name)
        select_list.append(f"{planned.expression} AS {quote_ident(name)}")
        columns.append(name)

    row_filter = None
    dated: dict[str, Any] | None = None
    if time_range is not None:
        row_filter, dated, problems = _row_filter(spec, source_types, time_range, reasons)
        reasons += problems

    if reasons:
        raise BadInput(
            "dataset_columns_invalid",
            f"{spec.name}: the approved columns cannot be prepared",
            f"{spec.name}：无法准备已批准的列",
            reasons=reasons,
        )
    return DatasetPlan(
        name=spec.name,
        select_list=select_list,
        columns=columns,
        dropped=dict(sorted(dropped.items())),
        person_key=spec.person_key,
        person_key_kept=spec.person_key in columns,
        quasi_ids=quasi_ids,
        transforms=transforms,
        measures=measures,
        row_filter=row_filter,
        time_range=dated,
    )
