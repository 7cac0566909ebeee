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
import functools
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
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
from enclave.deid.twin import TwinColumn, person_pool, write_twin
from enclave.errors import BadInput, Reason, Refused
from enclave.files import READ_ONLY_FILE, fsync_path, fsync_tree, replace_symlink
from enclave.prepare import layout, relations, storage
from enclave.prepare.hashing import BackgroundHasher
from enclave.prepare.layout import current_prepared_dir, current_twin_db, current_views_db
from enclave.prepare.report import DatasetReport, PreparationReport
from enclave.prepare.secrets import ProjectSecrets, create_secrets
from enclave.prepare.views import build_views_db
from enclave.specs import AccessMode, DatasetSpec, ProjectSpec

__all__ = [
    "DatasetReport",
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
ViewSetup = Callable[[duckdb.DuckDBPyConnection], None]


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


@dataclass(frozen=True)
class _Run:
    """One preparation run: the engine, the build folder it fills, the project and its sources, the
    secrets, and where progress, file digests and (with ``storage: s3``) the prepared Parquet go."""

    con: duckdb.DuckDBPyConnection
    build: Path
    project: ProjectSpec
    datasets: Mapping[str, tuple[DatasetSpec, Path]]
    secrets: ProjectSecrets
    version: int
    prepared_at: str
    progress: Progress
    hashes: BackgroundHasher
    store: storage.S3Store | None = None

    @property
    def k(self) -> int:
        return self.project.min_cell_count

    def prepared(self, name: str) -> Path:
        return self.build / f"{name}.parquet"

    def twin(self, name: str) -> Path:
        return self.build / layout.TWIN_DIR / f"{name}.parquet"


@dataclass(frozen=True)
class _Twin:
    """The seeded draws every twin of a version shares: one generator and one pool of fake persons
    (so the twins join on them)."""

    pool: list[str]
    rng: np.random.Generator

    @classmethod
    def start(cls, run: _Run) -> _Twin:
        """Create the twin folder and seed the draws from the project's twin subkey."""
        (run.build / layout.TWIN_DIR).mkdir(mode=0o700)
        seed = int.from_bytes(run.secrets.subkey("twin")[:16], "big")
        rng = np.random.default_rng(seed)
        return cls(person_pool(rng, TWIN_PERSONS), rng)


@dataclass(frozen=True)
class _Source:
    """One dataset under preparation: its plan, the relation of its rows (in range), the table of its
    facts, its person map and how many persons that map holds."""

    name: str
    plan: DatasetPlan
    relation: str
    facts: str
    persons: str
    mapped: int


def _read_facts(
    run: _Run, plans: Mapping[str, tuple[DatasetPlan, str]], params: dict[str, Any]
) -> dict[str, str]:
    """One narrow scan of each source: its facts (persons and quasi-identifiers, counted), from which
    come the person map, k-anonymity, the counts and the ledger; the name of each facts table."""
    facts: dict[str, str] = {}
    for index, (name, (plan, relation)) in enumerate(plans.items()):
        run.progress(f"{name}: reading persons and quasi-identifiers")
        facts[name] = relations.facts_table(
            run.con, plan, relation, params, f"{relations.FACTS_TABLE}_{index}"
        )
    return facts


def _map_persons(
    run: _Run, plans: Mapping[str, tuple[DatasetPlan, str]], facts: Mapping[str, str], params: dict[str, Any]
) -> list[_Source]:
    """Pseudonymise the persons of every dataset (one map per person-key type) and pair each dataset
    with its map."""
    run.progress("pseudonymising persons")
    key_types = {
        name: _describe(run.con, relation)[plan.person_key] for name, (plan, relation) in plans.items()
    }
    maps = relations.person_maps(
        run.con,
        {name: (relations.PERSON_COLUMN, table) for name, table in facts.items()},
        key_types,
        params,
        per_person_offset=run.secrets.per_person_offset,
        date_jitter=run.project.date_jitter_days > 0,
    )
    sizes = {table: relations.map_size(run.con, table) for table in set(maps.values())}
    return [
        _Source(name, plan, relation, facts[name], maps[name], sizes[maps[name]])
        for name, (plan, relation) in plans.items()
    ]


def _code_measures(run: _Run, source: _Source) -> tuple[DatasetPlan, dict[str, MeasureBounds]]:
    """Top- and bottom-code the plan's measures (row-level projects): the plan that clips them, and
    the bounds of each."""
    if not source.plan.measures:
        return source.plan, {}
    run.progress(f"{source.name}: top- and bottom-coding measures")
    spec = run.datasets[source.name][0]
    measures = source.plan.measures
    declared = {c: (spec.columns[c].bottom_code, spec.columns[c].top_code) for c in measures}
    codes = measure_bounds(run.con, source.relation, source.plan.person_key, measures, declared, run.k)
    return source.plan.with_measure_bounds(codes), codes


def _check_k(run: _Run, source: _Source) -> KReport:
    """k-anonymity of the dataset's quasi-identifiers; a row-level project is refused when it fails."""
    run.progress(f"{source.name}: checking k-anonymity")
    report = k_anonymity(
        run.con,
        source.facts,
        source.plan.quasi_ids,
        run.k,
        person_key=relations.PERSON_COLUMN,
        rows=relations.ROWS_COLUMN,
    )
    if run.project.access is AccessMode.ROWS and not report.ok:
        raise _refuse_k({source.name: report}, run.k)
    return report


def _write_prepared(run: _Run, source: _Source, plan: DatasetPlan, params: dict[str, Any]) -> None:
    """Write the de-identified rows as Parquet, hashing the source and the result in the background."""
    run.progress(f"{source.name}: de-identifying")
    run.hashes.submit(f"{source.name}:source", run.datasets[source.name][1])
    target = run.prepared(source.name)
    relations.write_prepared(run.con, plan, source.relation, source.persons, str(target), params)
    run.hashes.submit(f"{source.name}:prepared", target)


def _synthesise_twin(
    run: _Run, source: _Source, plan: DatasetPlan, persons: int, params: dict[str, Any], twin: _Twin
) -> list[TwinColumn]:
    """Write the dataset's synthetic twin from a sample of about ``TWIN_SAMPLE_PERSONS`` persons."""
    run.progress(f"{source.name}: synthesising the twin")
    every = max(1, -(-persons // TWIN_SAMPLE_PERSONS))
    sample = relations.twin_sample(run.con, plan, source.relation, source.persons, params, every=every)
    schema = [(c, t) for c, t in _describe(run.con, sample).items() if c != relations.PERSON_COLUMN]
    columns = write_twin(
        run.con,
        sample,
        schema,
        run.twin(source.name),
        person=relations.PERSON_COLUMN,
        person_key_column=plan.person_key if plan.person_key_kept else None,
        pool=twin.pool,
        k=run.k,
        rows=TWIN_ROWS,
        rng=twin.rng,
    )
    run.con.execute(f"DROP TABLE {sample}")
    return columns


def _stage_subjects(run: _Run, source: _Source, persons: int) -> int:
    """Stage the dataset's subjects for the disclosure ledger; how many."""
    run.progress(f"{source.name}: recording subjects in the disclosure ledger")
    return ledger.stage_subjects(
        run.con,
        run.build / ".ledger",
        project_id=run.project.id,
        version=run.version,
        dataset=source.name,
        subjects_sql=relations.subjects_sql(
            source.persons, source.facts, every_person=persons == source.mapped
        ),
        params={},
        prepared_at=run.prepared_at,
    )


def _prepare_dataset(
    run: _Run, source: _Source, params: dict[str, Any], twin: _Twin
) -> tuple[DatasetReport, int]:
    """Code, check, de-identify, count, twin and stage one dataset: its report (without the digests)
    and the number of subjects staged for the ledger."""
    plan, codes = _code_measures(run, source)
    k_report = _check_k(run, source)
    _write_prepared(run, source, plan, params)
    run.progress(f"{source.name}: counting persons")
    counts = relations.person_counts(run.con, source.facts)
    key_unique = (
        plan.person_key_kept
        and counts.one_person_per_row
        and relations.pseudonyms_distinct(run.con, source.persons)
    )
    twin_columns = _synthesise_twin(run, source, plan, counts.persons, params, twin)
    subjects = _stage_subjects(run, source, counts.persons)
    run.con.execute(f"DROP TABLE {source.facts}")
    report = DatasetReport(
        rows=counts.rows,
        persons=counts.persons,
        person_key_unique=key_unique,
        columns=plan.columns,
        dropped_columns=plan.dropped,
        transforms=plan.transforms,
        measure_codes={column: bounds.to_dict() for column, bounds in codes.items()},
        quasi_ids=plan.quasi_ids,
        k_min_class_size=k_report.min_class_size,
        k_classes_below=k_report.classes_below_k,
        k_ok=k_report.ok,
        smallest_classes=k_report.smallest_classes,
        twin_columns={c.name: c.kind for c in twin_columns},
        time_range=plan.time_range,
    )
    return report, subjects


def _with_digests(run: _Run, reports: Mapping[str, DatasetReport]) -> dict[str, DatasetReport]:
    """The reports with the SHA-256 of each source and prepared file (waits for the hashing)."""
    run.progress("waiting for the SHA-256 of the files")
    digests: dict[str, dict[str, str]] = {name: {} for name in reports}
    for name, digest in run.hashes.results().items():
        dataset, kind = name.split(":")
        digests[dataset][f"{kind}_sha256"] = digest
    return {name: replace(report, **digests[name]) for name, report in reports.items()}


def _upload(run: _Run, store: storage.S3Store, names: Iterable[str]) -> dict[str, str]:
    """Move the prepared Parquet to the bucket under the build's key; the URL of each dataset's object.
    The vault keeps the views, the twin and the report."""
    prefix = store.build_key(run.project.id, run.build.name)
    urls: dict[str, str] = {}
    for name in names:
        run.progress(f"{name}: uploading to object storage")
        path = run.prepared(name)
        key = f"{prefix}{name}.parquet"
        store.upload(path, key)
        urls[name] = store.url(key)
        path.unlink()
    return urls


def _build_views(run: _Run, sources: Mapping[str, Path | str], setup: ViewSetup | None) -> None:
    """Build the views database over the prepared data and the twin's over the twin files, then make
    the files in the build folder read-only."""
    run.progress("building views")
    twins = {name: run.twin(name) for name in sources}
    build_views_db(run.build / layout.VIEWS_DB, sources, setup)
    build_views_db(run.build / layout.TWIN_DB, twins)
    for path in [*(run.prepared(name) for name in sources), *twins.values()]:
        if path.exists():
            os.chmod(path, READ_ONLY_FILE)


def _prepare_into(run: _Run, paths: Paths) -> PreparationReport:
    """Build every file of one version inside ``run.build`` (not yet visible); with ``run.store`` the
    prepared Parquet goes to the bucket under the build's key."""
    plans = _plan_all(run.con, run.project, run.datasets, run.secrets.per_person_offset)
    params = _secret_params(run.secrets, ledger.ledger_key(paths), run.project.date_jitter_days)
    twin = _Twin.start(run)
    facts = _read_facts(run, plans, params)
    reports: dict[str, DatasetReport] = {}
    subjects: dict[str, int] = {}
    for source in _map_persons(run, plans, facts, params):
        reports[source.name], subjects[source.name] = _prepare_dataset(run, source, params, twin)
    reports = _with_digests(run, reports)
    sources: dict[str, Path | str] = {name: run.prepared(name) for name in reports}
    setup: ViewSetup | None = None
    if run.store is not None:
        urls = _upload(run, run.store, reports)
        reports = {name: replace(report, object=urls[name]) for name, report in reports.items()}
        sources.update(urls)
        setup = functools.partial(run.store.attach, project_id=run.project.id)
    _build_views(run, sources, setup)
    return PreparationReport(
        project_id=run.project.id,
        version=run.version,
        datasets=reports,
        views_db=run.build / layout.VIEWS_DB,
        twin_db=run.build / layout.TWIN_DB,
        k=run.k,
        k_ok=all(report.k_ok for report in reports.values()),
        access=run.project.access.value,
        date_shift="per_person" if run.secrets.per_person_offset else "project",
        prepared_at=run.prepared_at,
        prepared_dir=run.build,
        ledger_subjects=subjects,
        date_jitter_days=run.project.date_jitter_days,
        storage="s3" if run.store is not None else "local",
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
                    run = _Run(
                        con=con,
                        build=build,
                        project=project,
                        datasets=datasets,
                        secrets=secrets,
                        version=version,
                        prepared_at=now_iso(),
                        progress=report_progress,
                        hashes=hashes,
                        store=store,
                    )
                    report = _prepare_into(run, paths)
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
