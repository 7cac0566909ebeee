"""What the guard knows about a project: its views, their column roles, and the disclosure thresholds.

A ``GuardPolicy`` is plain data built from the project and dataset specs (ARCHITECTURE §9); the guard
never reads the catalog itself. ``k`` is the minimum number of distinct persons behind any released
group (R-QRY-7, R-PREP-13).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from enclave.errors import BadInput
from enclave.specs import MIN_K, AccessMode, ColumnRole, DatasetSpec, ProjectSpec

# Roles that never reach a prepared view (dropped at preparation).
DROPPED_ROLES = frozenset({ColumnRole.DIRECT_ID, ColumnRole.TEXT})


@dataclass(frozen=True)
class ViewPolicy:
    """One view an analyst may query."""

    name: str
    person_key: str
    columns: dict[str, ColumnRole]
    # Set only from preparation's measurement (report.json: every row has its own non-NULL person
    # key); then a query over this view alone counts persons with count(*). Default: not known.
    unique_person_key: bool = False

    def role(self, column: str) -> ColumnRole | None:
        return self.columns.get(column)


@dataclass(frozen=True)
class GuardPolicy:
    """The project's rules for the query guard (ARCHITECTURE §3)."""

    views: dict[str, ViewPolicy]
    k: int = MIN_K
    mode: AccessMode = AccessMode.AGGREGATE
    round_to: int | None = None
    dominance_n: int = 2
    dominance_k: float = 0.85
    dominance_p: float = 0.10
    max_estimated_rows: int = 200_000_000  # DuckDB's estimated cardinality of any plan step (rule 6)
    max_sql_chars: int = 20_000
    max_nodes: int = 4_000

    def __post_init__(self) -> None:
        problems = []
        if self.k < MIN_K:
            problems.append(f"k must be at least {MIN_K} (R-QRY-7)")
        if self.round_to is not None and self.round_to < 1:
            problems.append("round_to must be a positive integer")
        if not 1 <= self.dominance_n <= 10:
            problems.append("dominance_n must be between 1 and 10")
        if not 0 < self.dominance_k <= 1:
            problems.append("dominance_k must be in (0, 1]")
        if not 0 <= self.dominance_p < 1:
            problems.append("dominance_p must be in [0, 1)")
        for name, view in self.views.items():
            if name != view.name:
                problems.append(f"view {name!r} is registered under another name {view.name!r}")
            if view.columns.get(view.person_key) is not ColumnRole.PERSON_KEY:
                problems.append(f"view {name!r}: person key {view.person_key!r} must have role person_key")
            dropped = sorted(c for c, r in view.columns.items() if r in DROPPED_ROLES)
            if dropped:
                problems.append(f"view {name!r}: columns {dropped} must not reach a view")
        if problems:
            raise BadInput(
                "guard_policy_invalid",
                "Invalid guard policy: " + "; ".join(problems),
                "查询守卫策略无效：" + "；".join(problems),
            )

    def schema(self) -> dict[str, dict[str, str]]:
        """The views as a sqlglot schema (types are irrelevant to the guard)."""
        return {name: dict.fromkeys(view.columns, "UNKNOWN") for name, view in self.views.items()}


def policy_from_specs(
    project: ProjectSpec, datasets: dict[str, DatasetSpec], unique_person_keys: Collection[str] = ()
) -> GuardPolicy:
    """The project's approved columns of each dataset, minus direct identifiers and free text.

    ``unique_person_keys`` names the datasets whose prepared rows each carry a distinct person key,
    as measured by preparation (``person_key_unique`` in the version's report.json).
    """
    views: dict[str, ViewPolicy] = {}
    for name, approved in project.datasets.items():
        spec = datasets.get(name)
        if spec is None:
            raise BadInput(
                "dataset_not_found",
                f"Project {project.id} uses dataset {name!r}, which was not given",
                f"项目 {project.id} 使用的数据集 {name!r} 未提供",
            )
        columns = {}
        for column in approved:
            column_spec = spec.columns.get(column)
            if column_spec is None:
                raise BadInput(
                    "column_not_found",
                    f"Dataset {name!r} has no column {column!r}",
                    f"数据集 {name!r} 没有列 {column!r}",
                )
            if column_spec.role not in DROPPED_ROLES:
                columns[column] = column_spec.role
        # The person key is always present: the guard needs it to count persons.
        columns[spec.person_key] = ColumnRole.PERSON_KEY
        views[name] = ViewPolicy(
            name=name,
            person_key=spec.person_key,
            columns=columns,
            unique_person_key=name in unique_person_keys,
        )
    return GuardPolicy(views=views, k=project.min_cell_count, mode=project.access)
