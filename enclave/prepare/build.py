"""Prepare a project's workspace data in the vault (ARCHITECTURE §1, §2; R-PREP-1..22, R-AUD-9).

For each approved dataset: keep the approved columns, drop direct identifiers and free text,
pseudonymise the person key, shift dates (plus per-person jitter), generalise quasi-identifiers,
top- and bottom-code measures in row-level projects (see ``enclave.deid.plan``), check k-anonymity,
write Parquet, then build read-only DuckDB views, a synthetic twin, a report and the
disclosure-ledger entries. Everything runs as DuckDB SQL over the files; secrets are bound
parameters only. With ``storage: s3`` (``enclave.prepare.storage``) the prepared Parquet is
uploaded to the bucket and removed from the build folder, and the views read it from there.
The result becomes visible in one atomic switch (see ``enclave.prepare.layout``); a failure or an
interrupt at any point leaves the previous version, or nothing, visible.

With a time range (``ProjectSpec.time_ranges``, R-APP-4), every step reads only the dataset's rows
dated within it (see ``enclave.deid.plan.time_range_filter``).
"""

from __future__ import annotations

import contextlib
import json
import os
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
from enclave.deid.coding import MeasureBounds, measure_bounds
from enclave.deid.dates import JITTER_DAYS_PARAM, OFFSET_PARAM
from enclave.deid.kanon import KReport, k_anonymity
from enclave.deid.plan import (
    JITTER_KEY_PARAM,
    OFFSET_KEY_PARAM,
    PSEUDONYM_KEY_PARAM,
    DatasetPlan,
    plan_dataset,
)
from enclave.deid.pseudonym import key_params
from enclave.deid.sql import quote_literal
from enclave.deid.twin import person_pool, write_twin
from enclave.errors import BadInput, Reason, Refused
from enclave.files import READ_ONLY_FILE, fsync_path, fsync_tree, replace_symlink
from enclave.prepare import layout, relations, storage
from enclave.prepare.hashing import BackgroundHasher
from enclave.prepare.layout import current_prepared_dir, current_twin_db, current_views_db
from enclave.prepare.secrets import ProjectSecrets, create_secrets
from enclave.prepare.views import build_views_db
from enclave.specs import AccessMode, DatasetSpec, ProjectSpec

__all__ = [
    "PreparationReport",
    "current_prepared_dir",
    "current_twin_db",
    "current_views_db",
    "prepare_workspace",
]

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
    date_jitter_days: int = 0  # N of the per-person jitter in [-N, N] days; 0 = none
    storage: str = "local"  # "local" | "s3": where the prepared Parquet is (datasets[*]["object"])

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
            "date_jitter_days": self.date_jitter_days,
            "prepared_at": self.prepared_at,
            "ledger_subjects": self.ledger_subjects,
            "storage": self.storage,
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


def _secret_params(secrets: ProjectSecrets, ledger_key: bytes, jitter_days: int) -> dict[str, Any]:
    return {
        **key_params(PSEUDONYM_KEY_PARAM, secrets.subkey("pseudonym")),
        **key_params(OFFSET_KEY_PARAM, secrets.subkey("date_offset")),
        **key_params(JITTER_KEY_PARAM, secrets.subkey("date_jitter")),
        OFFSET_PARAM: secrets.date_offset_days,
        JITTER_DAYS_PARAM: jitter_days,
        **ledger.subject_params(ledger_key),
    }


def _plan_all(
    con: duckdb.DuckDBPyConnection,
    project: ProjectSpec,
    datasets: Mapping[str, tuple[DatasetSpec, Path]],
    per_person_offset: bool,
) -> dict[str, tuple[DatasetPlan, str]]:
    """Plans for every approved dataset, each with the relation of the source rows it prepares (only
    those of its time range, if it has one), or one ``BadInput`` naming every problem."""
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
            plan = plan_dataset(
                spec,
                approved,
                types,
                per_person_offset=per_person_offset,
                date_jitter=project.date_jitter_days > 0,
                person_offset_column=relations.OFFSET_COLUMN,
                code_measures=project.access is AccessMode.ROWS,
                time_range=project.time_ranges.get(name),
            )
            # Every later read (facts, person map, measure bounds, the prepared rows, the twin, the
            # ledger) goes through this relation, so all of them see only the rows in range.
            plans[name] = (plan, plan.rows_sql(relation))
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
    hashes: BackgroundHasher,
    store: storage.S3Store | None = None,
) -> PreparationReport:
    """Build every file of one version inside ``build`` (not yet visible); with ``store`` the
    prepared Parquet goes to the bucket under the build's key."""
    k = project.min_cell_count
    plans = _plan_all(con, project, datasets, secrets.per_person_offset)
    params = _secret_params(secrets, ledger.ledger_key(paths), project.date_jitter_days)
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

    # One narrow scan of each source: its facts (persons and quasi-identifiers, counted), from which
    # come the person map, k-anonymity, the counts and the ledger; then one full pass writes it.
    facts: dict[str, str] = {}
    for index, (name, (plan, relation)) in enumerate(plans.items()):
        progress(f"{name}: reading persons and quasi-identifiers")
        facts[name] = relations.facts_table(con, plan, relation, params, f"{relations.FACTS_TABLE}_{index}")
    progress("pseudonymising persons")
    key_types = {name: _describe(con, relation)[plan.person_key] for name, (plan, relation) in plans.items()}
    maps = relations.person_maps(
        con,
        {name: (relations.PERSON_COLUMN, table) for name, table in facts.items()},
        key_types,
        params,
        per_person_offset=secrets.per_person_offset,
        date_jitter=project.date_jitter_days > 0,
    )
    map_sizes = {table: relations.map_size(con, table) for table in set(maps.values())}
    for name, (plan, relation) in plans.items():
        codes: dict[str, MeasureBounds] = {}
        if plan.measures:
            progress(f"{name}: top- and bottom-coding measures")
            spec = datasets[name][0]
            declared = {c: (spec.columns[c].bottom_code, spec.columns[c].top_code) for c in plan.measures}
            codes = measure_bounds(con, relation, plan.person_key, plan.measures, declared, k)
            plan = plan.with_measure_bounds(codes)
        progress(f"{name}: checking k-anonymity")
        persons = maps[name]
        k_reports[name] = k_anonymity(
            con,
            facts[name],
            plan.quasi_ids,
            k,
            person_key=relations.PERSON_COLUMN,
            rows=relations.ROWS_COLUMN,
        )
        if project.access is AccessMode.ROWS and not k_reports[name].ok:
            raise _refuse_k({name: k_reports[name]}, k)
        progress(f"{name}: de-identifying")
        hashes.submit(f"{name}:source", datasets[name][1])
        parquet[name] = build / f"{name}.parquet"
        relations.write_prepared(con, plan, relation, persons, str(parquet[name]), params)
        hashes.submit(f"{name}:prepared", parquet[name])
        progress(f"{name}: counting persons")
        counts = relations.person_counts(con, facts[name])
        key_unique = (
            plan.person_key_kept and counts.one_person_per_row and relations.pseudonyms_distinct(con, persons)
        )
        progress(f"{name}: synthesising the twin")
        every = max(1, -(-counts.persons // TWIN_SAMPLE_PERSONS))
        sample = relations.twin_sample(con, plan, relation, persons, params, every=every)
        schema = [(c, t) for c, t in _describe(con, sample).items() if c != relations.PERSON_COLUMN]
        twins[name] = twin_dir / f"{name}.parquet"
        twin_columns = write_twin(
            con,
            sample,
            schema,
            twins[name],
            person=relations.PERSON_COLUMN,
            person_key_column=plan.person_key if plan.person_key_kept else None,
            pool=pool,
            k=k,
            rows=TWIN_ROWS,
            rng=rng,
        )
        con.execute(f"DROP TABLE {sample}")
        progress(f"{name}: recording subjects in the disclosure ledger")
        subjects[name] = ledger.stage_subjects(
            con,
            stage,
            project_id=project.id,
            version=version,
            dataset=name,
            subjects_sql=relations.subjects_sql(
                persons, facts[name], every_person=counts.persons == map_sizes[persons]
            ),
            params={},
            prepared_at=prepared_at,
        )
        con.execute(f"DROP TABLE {facts[name]}")
        report = k_reports[name]
        reports[name] = {
            "rows": counts.rows,
            "persons": counts.persons,
            "person_key_unique": key_unique,
            "columns": plan.columns,
            "dropped_columns": plan.dropped,
            "transforms": plan.transforms,
            "measure_codes": {column: bounds.to_dict() for column, bounds in codes.items()},
            "quasi_ids": plan.quasi_ids,
            "k_min_class_size": report.min_class_size,
            "k_classes_below": report.classes_below_k,
            "k_ok": report.ok,
            "smallest_classes": report.smallest_classes,
            "twin_columns": {c.name: c.kind for c in twin_columns},
        }
        if plan.time_range is not None:  # a report without a range stays as it was
            reports[name]["time_range"] = plan.time_range

    progress("waiting for the SHA-256 of the files")
    for name, digests in hashes.results().items():
        dataset, kind = name.split(":")
        reports[dataset][f"{kind}_sha256"] = digests
    sources: dict[str, Path | str] = dict(parquet)
    setup = None
    if store is not None:
        prefix = store.build_key(project.id, build.name)
        for name, path in parquet.items():
            progress(f"{name}: uploading to object storage")
            key = f"{prefix}{name}.parquet"
            store.upload(path, key)
            sources[name] = reports[name]["object"] = store.url(key)
            path.unlink()  # the bucket holds the prepared data; the vault keeps views, twin, report
        project_id = project.id

        def setup(con: duckdb.DuckDBPyConnection) -> None:
            store.attach(con, project_id)

    progress("building views")
    build_views_db(build / layout.VIEWS_DB, sources, setup)
    build_views_db(build / layout.TWIN_DB, twins)
    for path in [*parquet.values(), *twins.values()]:
        if path.exists():
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
        date_jitter_days=project.date_jitter_days,
        storage="s3" if store is not None else "local",
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
    store = storage.store_for(paths)
    if store is not None and project.access is AccessMode.ROWS:
        raise BadInput(
            "storage_rows_unsupported",
            "Row-level projects mount their prepared files into the workspace: use local storage",
            "行级访问项目需要把预处理文件挂载到工作区：请使用本地存储",
        )
    root = layout.prepared_root(paths, project.id)
    with layout.project_lock(root):
        layout.remove_unlinked_builds(root)
        _remove_unlinked_objects(store, root, project.id)
        secrets = create_secrets(paths, project.id, per_person_offset=per_person_offset)
        build = layout.new_build_dir(root, version)
        try:
            con = _connect(build / ".spill")
            try:
                with BackgroundHasher() as hashes:
                    report = _prepare_into(
                        con,
                        build,
                        paths,
                        project,
                        datasets,
                        secrets,
                        version,
                        now_iso(),
                        report_progress,
                        hashes,
                        store,
                    )
            finally:
                con.close()
            shutil.rmtree(build / ".spill", ignore_errors=True)
            report_progress("writing the report and syncing the files")
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
            if store is not None:
                with contextlib.suppress(Exception):  # else the next preparation sweeps them
                    store.delete_prefix(store.build_key(project.id, build.name))
            if isinstance(error, duckdb.Error):
                raise BadInput(
                    "preparation_failed",
                    f"Preparation failed in the data engine ({type(error).__name__})",
                    f"数据引擎中的准备失败（{type(error).__name__}）",
                ) from None
            raise
        layout.remove_unlinked_builds(root)
        _remove_unlinked_objects(store, root, project.id)
        fsync_path(root)
    return report


def _remove_unlinked_objects(store: storage.S3Store | None, root: Path, project_id: str) -> None:
    """Delete the bucket's objects of builds that no ``v<N>`` link names (as for local builds)."""
    if store is None:
        return
    linked = {build.name for build in layout.linked_builds(root)}
    prefix = store.project_key(project_id) + f"{layout.BUILDS}/"
    stale = [key for key, _ in store.objects(prefix) if key[len(prefix) :].split("/")[0] not in linked]
    store.delete(stale)
