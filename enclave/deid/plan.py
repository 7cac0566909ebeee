"""What preparation does to each column of one dataset, as one SELECT (R-PREP-6..11, R-PREP-17/18).

Default deny: a column reaches the prepared data only if the project approved it, and then only in
the form its role allows:

* ``person_key``: replaced by the project's keyed pseudonym (same name, text ``p_<16 hex>``);
* ``direct_id`` and ``text``: dropped even when approved (R-PREP-6, R-PREP-18);
* ``quasi_id``: generalised as the spec says, else kept;
* ``date``: shifted by the secret offset; a ``year``/``year_month`` generalisation applies *after*
  the shift, so no column carries the true calendar and none reveals the offset;
* ``sensitive``, ``measure``, ``attribute``: kept.

Secrets are bound parameters (see :mod:`enclave.deid.pseudonym` and :mod:`enclave.deid.dates`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from enclave.deid.dates import DateTypeUnsupported, date_shift_sql, person_offset_sql, project_offset_sql
from enclave.deid.generalize import generalize_sql
from enclave.deid.pseudonym import pseudonym_sql
from enclave.deid.sql import quote_ident
from enclave.errors import BadInput, Reason
from enclave.specs import ColumnRole, DatasetSpec

PSEUDONYM_KEY_PARAM = "pseudonym_key"
OFFSET_KEY_PARAM = "offset_key"
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

    def select_sql(self, relation: str) -> str:
        return f"SELECT {', '.join(self.select_list)} FROM {relation}"


def _column_reason(code: str, dataset: str, column: str, en: str, zh: str) -> Reason:
    return Reason(
        code, f"{dataset}.{column}: {en}", f"{dataset}.{column}：{zh}", {"field": f"{dataset}.{column}"}
    )


def plan_dataset(
    spec: DatasetSpec,
    approved: Sequence[str],
    source_types: Mapping[str, str],
    *,
    per_person_offset: bool,
    person_offset_column: str | None = None,
) -> DatasetPlan:
    """The plan for ``spec`` restricted to ``approved`` columns of a source with ``source_types``.

    With ``per_person_offset``, each person's offset is computed in the SELECT from the person key,
    or, when ``person_offset_column`` names a column that already holds it (looked up once per
    person, see ``enclave.workspace.relations``), read from that column.

    Raises ``BadInput`` naming every approved column that the spec does not know, that the source
    lacks, or whose type cannot be handled.
    """
    reasons: list[Reason] = []
    select_list: list[str] = []
    columns: list[str] = []
    transforms: dict[str, str] = {}
    quasi_ids: list[str] = []
    approved_set = set(approved)
    dropped = {name: "not_approved" for name in spec.columns if name not in approved_set}
    person_source = quote_ident(spec.person_key)
    if not per_person_offset:
        offset_sql = project_offset_sql()
    elif person_offset_column is not None:
        offset_sql = quote_ident(person_offset_column)
    else:
        offset_sql = person_offset_sql(person_source, OFFSET_KEY_PARAM)

    for name in approved:
        column = spec.columns.get(name)
        if column is None:
            reasons.append(
                _column_reason(
                    "column_unknown",
                    spec.name,
                    name,
                    "not a column of the dataset spec",
                    "不是数据集规格中的列",
                )
            )
            continue
        if name not in source_types:
            reasons.append(
                _column_reason(
                    "column_missing", spec.name, name, "not found in the source data", "源数据中没有该列"
                )
            )
            continue
        if column.role in ALWAYS_DROPPED:
            dropped[name] = ALWAYS_DROPPED[column.role]
            continue
        source = quote_ident(name)
        expression = source
        if column.role is ColumnRole.PERSON_KEY:
            expression = pseudonym_sql(source, PSEUDONYM_KEY_PARAM)
            transforms[name] = "pseudonym"
        elif column.role is ColumnRole.DATE:
            try:
                expression = date_shift_sql(source, source_types[name], offset_sql)
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
                continue
            transforms[name] = "date_shift_per_person" if per_person_offset else "date_shift"
        if column.generalize is not None:
            expression = generalize_sql(column.generalize, expression)
            transforms[name] = "+".join(filter(None, [transforms.get(name), column.generalize.value]))
        if column.role is ColumnRole.QUASI_ID:
            quasi_ids.append(name)
        select_list.append(f"{expression} AS {source}")
        columns.append(name)

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
    )
