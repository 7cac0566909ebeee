"""Prepare a project's workspace data in the vault (ARCHITECTURE §1, §2; R-PREP-1..22, R-AUD-9).

For each approved dataset: keep the approved columns, drop direct identifiers and free text,
pseudonymise the person key, shift dates, generalise quasi-identifiers (see ``enclave.deid.plan``),
check k-anonymity, write Parquet, then build read-only DuckDB views, a synthetic twin, a report
and the disclosure-ledger entries. Everything runs as DuckDB SQL over the files; secrets are bound
parameters only. The result becomes visible in one atomic switch (see ``enclave.workspace.layout``);
a failure or an interrupt at any point leaves the previous version, or nothing, visible.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from enclave import ledger
from enclave.audit import now_iso
from enclave.config import Paths
from enclave.deid.dates import OFFSET_PARAM
from enclave.deid.kanon import KReport, k_anonymity
from enclave.deid.plan import OFFSET_KEY_PARAM, PSEUDONYM_KEY_PARAM, DatasetPlan, plan_dataset
from enclave.deid.pseudonym import key_params, pseudonym_sql
from enclave.deid.sql import quote_ident, quote_literal
from enclave.deid.twin import person_pool, write_twin
from enclave.errors import BadInput, Reason, Refused
from enclave.specs import AccessMode, DatasetSpec, ProjectSpec
from enclave.workspace import layout
from enclave.workspace.files import READ_ONLY_FILE, fsync_path, fsync_tree, replace_symlink, sha256_file
from enclave.workspace.layout import current_prepared_dir, current_twin_db, current_views_db
from enclave.workspace.secrets import ProjectSecrets, create_secrets
from enclave.workspace.views import build_views_db

__all__ = [
    "PreparationReport",
    "current_prepared_dir",
    "current_twin_db",
    "current_views_db",
    "prepare_workspace",
]

PERSON_COLUMN = "__enclave_person"  # hidden working column; never written out
SOURCE_COLUMN = "__enclave_source"  # the raw person key in the person map (memory only)
TWIN_ROWS = 1000
TWIN_PERSONS = 100
TWIN_SAMPLE_PERSONS = 20_000  # the twin's statistics come from about this many persons
SOURCE_READERS = {".parquet": "read_parquet", ".csv": "read_csv"}
Progress = Callable[[str], None]


@dataclass
class PreparationReport:
    """What preparation did: per dataset rows, columns, drops, hashes and the k-anonymity result."""

    project_id: str
    version: int
    datasets: dict[str, dict[str, Any]]
    views_db: Path
    twin_db: Path
    k: int
    k_ok: bool
    access: str
    date_shift: str  # "project" | "per_person" (never the offset itself)
    prepared_at: str
    prepared_dir: Path
    ledger_subjects: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "version": self.version,
            "datasets": self.datasets,
            "views_db": str(self.views_db),
            "twin_db": str(self.twin_db),
            "prepared_dir": str(self.prepared_dir),
            "k": self.k,
            "k_ok": self.k_ok,
            "access": self.access,
            "date_shift": self.date_shift,
            "prepared_at": self.prepared_at,
            "ledger_subjects": self.ledger_subjects,
        }


def _source_relation(name: str, source: Path) -> str:
    reader = SOURCE_READERS.get(source.suffix.lower())
    if reader is None:
        raise BadInput(
            "source_format_unsupported",
            f"{name}: {source.name} is neither .parquet nor .csv",
            f"{name}：{source.name} 不是 .parquet 或 .csv 文件",
        )
    if not source.is_file():
        raise BadInput(
            "source_not_found", f"{name}: file not found: {source}", f"{name}：找不到文件：{source}"
        )
    return f"{reader}({quote_literal(str(source.resolve()))})"


def _describe(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


def _used_params(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Only the parameters the SQL names (DuckDB refuses extra ones)."""
    return {name: value for name, value in params.items() if re.search(rf"\${name}\b", sql)}


def _secret_params(secrets: ProjectSecrets, ledger_key: bytes) -> dict[str, Any]:
    return {
        **key_params(PSEUDONYM_KEY_PARAM, secrets.subkey("pseudonym")),
        **key_params(OFFSET_KEY_PARAM, secrets.subkey("date_offset")),
        OFFSET_PARAM: secrets.date_offset_days,
        **ledger.subject_params(ledger_key),
    }


def _plan_all(
    con: duckdb.DuckDBPyConnection,
    project: ProjectSpec,
    datasets: Mapping[str, tuple[DatasetSpec, Path]],
    per_person_offset: bool,
) -> dict[str, tuple[DatasetPlan, str]]:
    """Plans for every approved dataset, or one ``BadInput`` naming every problem."""
    plans: dict[str, tuple[DatasetPlan, str]] = {}
    reasons: list[Reason] = []
    for name, approved in project.datasets.items():
        if name not in datasets:
            reasons.append(
                Reason(
                    "dataset_source_missing",
                    f"{name}: no source was given for this approved dataset",
                    f"{name}：未提供该已批准数据集的源数据",
                )
            )
            continue
        spec, source = datasets[name]
        try:
            relation = _source_relation(name, source)
            try:
                types = _describe(con, relation)
            except duckdb.Error:
                raise BadInput(
                    "source_unreadable",
                    f"{name}: {source.name} could not be read",
                    f"{name}：无法读取 {source.name}",
                ) from None
            plans[name] = (plan_dataset(spec, approved, types, per_person_offset=per_person_offset), relation)
        except BadInput as error:
            reasons.extend(error.reasons or [Reason(error.code, error.message, error.message_zh)])
    if reasons:
        raise BadInput(
            "preparation_input_invalid",
            "The approved datasets cannot be prepared: " + "; ".join(r.message for r in reasons),
            "无法准备已批准的数据集：" + "；".join(r.message_zh for r in reasons),
            reasons=reasons,
        )
    return plans


def _person_maps(
    con: duckdb.DuckDBPyConnection,
    plans: Mapping[str, tuple[DatasetPlan, str]],
    types: Mapping[str, str],
    params: Mapping[str, Any],
) -> dict[str, str]:
    """One table per person-key type: every distinct source person of the project, with their
    pseudonym and ledger subject. One HMAC of each kind per person, not per row, and the same
    pseudonym for the same person in every dataset."""
    by_type: dict[str, list[str]] = {}
    for name, (plan, relation) in plans.items():
        column = quote_ident(plan.person_key)
        by_type.setdefault(types[name], []).append(
            f"SELECT DISTINCT {column} AS s FROM {relation} WHERE {column} IS NOT NULL"
        )
    tables: dict[str, str] = {}
    for index, (key_type, selects) in enumerate(sorted(by_type.items())):
        table = quote_ident(f"_persons_{index}")
        sql = (
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT s AS {quote_ident(SOURCE_COLUMN)}, "
            f"{pseudonym_sql('s', PSEUDONYM_KEY_PARAM)} AS {quote_ident(PERSON_COLUMN)}, "
            f"{ledger.subject_sql('s')} AS subject "
            f"FROM ({' UNION '.join(selects)})"
        )
        con.execute(sql, _used_params(sql, params))
        for name in plans:
            if types[name] == key_type:
                tables[name] = table
    return tables


def _materialise(
    con: duckdb.DuckDBPyConnection, plan: DatasetPlan, relation: str, persons: str, params: Mapping[str, Any]
) -> str:
    """The prepared rows as a temp table, plus the hidden pseudonym column used for counting persons."""
    table = f"_prepared_{plan.name}"
    select = [
        f"{quote_ident(PERSON_COLUMN)} AS {quote_ident(plan.person_key)}"
        if plan.transforms.get(column) == "pseudonym"
        else expression
        for column, expression in zip(plan.columns, plan.select_list, strict=True)
    ]
    inner = (
        f"(SELECT _src.*, _map.{quote_ident(PERSON_COLUMN)} FROM {relation} AS _src "
        f"LEFT JOIN {persons} AS _map "
        f"ON _src.{quote_ident(plan.person_key)} = _map.{quote_ident(SOURCE_COLUMN)})"
    )
    sql = (
        f"CREATE OR REPLACE TEMP TABLE {quote_ident(table)} AS "
        f"SELECT {', '.join([*select, quote_ident(PERSON_COLUMN)])} FROM {inner}"
    )
    try:
        con.execute(sql, _used_params(sql, params))
    except duckdb.Error as error:
        # The engine's message may quote raw values; name the dataset and the kind of failure only.
        raise BadInput(
            "source_invalid",
            f"{plan.name}: the source could not be transformed ({type(error).__name__}); check that "
            "date columns hold dates and generalised columns hold the expected values",
            f"{plan.name}：无法转换源数据（{type(error).__name__}）；请检查日期列是否为日期、泛化列的取值是否正确",
        ) from None
    return quote_ident(table)


def _twin_sample(con: duckdb.DuckDBPyConnection, table: str, persons: int) -> str:
    """The rows of about ``TWIN_SAMPLE_PERSONS`` persons (all rows of each), to draw the twin from.

    Counting persons in a sample can only under-count, so the twin's k rule stays safe.
    """
    every = -(-persons // TWIN_SAMPLE_PERSONS)
    if every <= 1:
        return table
    sample = quote_ident("_twin_sample")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {sample} AS SELECT * FROM {table} "
        f"WHERE hash({quote_ident(PERSON_COLUMN)}) % {every} = 0"
    )
    return sample


def _write_parquet(con: duckdb.DuckDBPyConnection, table: str, target: Path) -> None:
    con.execute(
        f"COPY (SELECT * EXCLUDE ({quote_ident(PERSON_COLUMN)}) FROM {table}) "
        f"TO {quote_literal(str(target))} (FORMAT parquet)"
    )


def _refuse_k(reports: Mapping[str, KReport], k: int) -> Refused:
    reasons = [
        Reason(
            "k_anonymity_violated",
            f"{name}: {report.classes_below_k} equivalence classes over {report.quasi_ids} have fewer "
            f"than {k} persons (smallest: {report.min_class_size})",
            f"{name}：在 {report.quasi_ids} 上有 {report.classes_below_k} 个等价类少于 {k} 人"
            f"（最小：{report.min_class_size}）",
            details=report.to_dict(),
        )
        for name, report in reports.items()
        if not report.ok
    ]
    return Refused(
        "k_anonymity_violated",
        f"Row-level access needs every quasi-identifier class to hold at least {k} persons (R-PREP-13); "
        "generalise further or use aggregate access",
        f"行级访问要求每个准标识符等价类至少有 {k} 人（R-PREP-13）；请进一步泛化或改用聚合访问",
        reasons=reasons,
    )


def _prepare_into(
    con: duckdb.DuckDBPyConnection,
    build: Path,
    paths: Paths,
    project: ProjectSpec,
    datasets: Mapping[str, tuple[DatasetSpec, Path]],
    secrets: ProjectSecrets,
    version: int,
    prepared_at: str,
    progress: Progress,
) -> PreparationReport:
    """Build every file of one version inside ``build`` (not yet visible)."""
    k = project.min_cell_count
    plans = _plan_all(con, project, datasets, secrets.per_person_offset)
    params = _secret_params(secrets, ledger.ledger_key(paths))
    twin_dir = build / layout.TWIN_DIR
    twin_dir.mkdir(mode=0o700)
    stage = build / ".ledger"
    seed = int.from_bytes(secrets.subkey("twin")[:16], "big")
    rng = np.random.default_rng(seed)
    pool = person_pool(rng, TWIN_PERSONS)
    reports: dict[str, dict[str, Any]] = {}
    k_reports: dict[str, KReport] = {}
    parquet: dict[str, Path] = {}
    twins: dict[str, Path] = {}
    subjects: dict[str, int] = {}

    progress("pseudonymising persons")
    key_types = {name: _describe(con, relation)[plan.person_key] for name, (plan, relation) in plans.items()}
    person_maps = _person_maps(con, plans, key_types, params)
    for name, (plan, relation) in plans.items():
        progress(f"{name}: de-identifying")
        persons = person_maps[name]
        table = _materialise(con, plan, relation, persons, params)
        parquet[name] = build / f"{name}.parquet"
        _write_parquet(con, table, parquet[name])
        progress(f"{name}: checking k-anonymity")
        k_reports[name] = k_anonymity(con, table, plan.quasi_ids, k, person_key=PERSON_COLUMN)
        if project.access is AccessMode.ROWS and not k_reports[name].ok:
            raise _refuse_k({name: k_reports[name]}, k)
        (rows, person_count) = con.execute(
            f"SELECT count(*), count(DISTINCT {quote_ident(PERSON_COLUMN)}) FROM {table}"
        ).fetchone()  # type: ignore[misc]
        progress(f"{name}: synthesising the twin")
        schema = [(c, t) for c, t in _describe(con, table).items() if c != PERSON_COLUMN]
        twins[name] = twin_dir / f"{name}.parquet"
        twin_source = _twin_sample(con, table, int(person_count))
        twin_columns = write_twin(
            con,
            twin_source,
            schema,
            twins[name],
            person=PERSON_COLUMN,
            person_key_column=plan.person_key if plan.person_key_kept else None,
            pool=pool,
            k=k,
            rows=TWIN_ROWS,
            rng=rng,
        )
        if twin_source != table:
            con.execute(f"DROP TABLE {twin_source}")
        progress(f"{name}: recording subjects in the disclosure ledger")
        person = quote_ident(PERSON_COLUMN)
        subjects[name] = ledger.stage_subjects(
            con,
            stage,
            project_id=project.id,
            version=version,
            dataset=name,
            subjects_sql=f"SELECT m.subject FROM (SELECT DISTINCT {person} FROM {table}) AS d "
            f"JOIN {persons} AS m ON m.{person} = d.{person}",
            params={},
            prepared_at=prepared_at,
        )
        con.execute(f"DROP TABLE {table}")
        source = datasets[name][1]
        report = k_reports[name]
        reports[name] = {
            "rows": int(rows),
            "persons": int(person_count),
            "columns": plan.columns,
            "dropped_columns": plan.dropped,
            "transforms": plan.transforms,
            "quasi_ids": plan.quasi_ids,
            "source_sha256": sha256_file(source),
            "prepared_sha256": sha256_file(parquet[name]),
            "k_min_class_size": report.min_class_size,
            "k_classes_below": report.classes_below_k,
            "k_ok": report.ok,
            "smallest_classes": report.smallest_classes,
            "twin_columns": {c.name: c.kind for c in twin_columns},
        }

    progress("building views")
    build_views_db(build / layout.VIEWS_DB, parquet)
    build_views_db(build / layout.TWIN_DB, twins)
    for path in [*parquet.values(), *twins.values()]:
        os.chmod(path, READ_ONLY_FILE)
    return PreparationReport(
        project_id=project.id,
        version=version,
        datasets=reports,
        views_db=build / layout.VIEWS_DB,
        twin_db=build / layout.TWIN_DB,
        k=k,
        k_ok=all(r.ok for r in k_reports.values()),
        access=project.access.value,
        date_shift="per_person" if secrets.per_person_offset else "project",
        prepared_at=prepared_at,
        prepared_dir=build,
        ledger_subjects=subjects,
    )


def _connect(spill_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory engine that spills only inside the build folder (raw data stays in the vault)."""
    con = duckdb.connect(config={"temp_directory": str(spill_dir), "preserve_insertion_order": False})
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    return con


def prepare_workspace(
    paths: Paths,
    project: ProjectSpec,
    datasets: dict[str, tuple[DatasetSpec, Path]],
    *,
    version: int,
    progress: Progress | None = None,
    per_person_offset: bool = False,
) -> PreparationReport:
    """Build version ``version`` of the project's prepared data and make it current, atomically.

    ``datasets`` maps each approved dataset name to its spec and local source file (.parquet or
    .csv). ``per_person_offset`` applies only when the project's secrets are first created.
    Raises ``BadInput`` for missing or malformed input and ``Refused("k_anonymity_violated")`` for a
    ``rows`` project whose data is not k-anonymous; in both cases nothing new becomes visible.
    """
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BadInput("version_invalid", f"Invalid version: {version!r}", f"版本号无效：{version!r}")
    report_progress = progress or (lambda _message: None)
    root = layout.prepared_root(paths, project.id)
    with layout.project_lock(root):
        layout.remove_unlinked_builds(root)
        secrets = create_secrets(paths, project.id, per_person_offset=per_person_offset)
        build = layout.new_build_dir(root, version)
        try:
            con = _connect(build / ".spill")
            try:
                report = _prepare_into(
                    con, build, paths, project, datasets, secrets, version, now_iso(), report_progress
                )
            finally:
                con.close()
            shutil.rmtree(build / ".spill", ignore_errors=True)
            (build / layout.REPORT).write_text(json.dumps(report.to_dict(), indent=2, sort_keys=True))
            os.chmod(build / layout.REPORT, READ_ONLY_FILE)
            fsync_tree(build)
            report_progress("recording the disclosure ledger")
            ledger.commit_stage(paths, build / ".ledger", project.id, version)
            report_progress("switching to the new version")
            relative = f"{layout.BUILDS}/{build.name}"
            replace_symlink(layout.version_link(root, version), relative)
            replace_symlink(root / layout.CURRENT, f"v{version}")
        except BaseException as error:
            shutil.rmtree(build, ignore_errors=True)
            if isinstance(error, duckdb.Error):
                raise BadInput(
                    "preparation_failed",
                    f"Preparation failed in the data engine ({type(error).__name__})",
                    f"数据引擎中的准备失败（{type(error).__name__}）",
                ) from None
            raise
        layout.remove_unlinked_builds(root)
        fsync_path(root)
    return report
