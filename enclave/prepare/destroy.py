"""Destroy a project's workspace data and issue a signed certificate (R-LIFE-2, R-LIFE-4..6, R-LIFE-11).

Destroyed: every prepared version (Parquet, views, twin, reports), the project's vault folder, with
``storage: s3`` every object under the project's key prefix in the bucket (each listed in the
certificate with its URL, size and the sha256 preparation recorded), the project's secrets,
through ``volume_destroyers`` its workspace volumes and, through ``database_destroyers``, its rows
in the state database (the query guard's differencing ledger).
Kept: the disclosure ledger, released exports and the audit log, and the certificate itself,
written to ``<home>/certificates/<project>-destruction.json`` outside the vault project folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from enclave.audit import now_iso
from enclave.config import Paths
from enclave.errors import EnclaveError, NotFound
from enclave.files import check_project_id, fsync_path, private_dir, sha256_file
from enclave.prepare import layout, storage
from enclave.prepare.certificate import (
    DestroyedItem,
    DestructionCertificate,
    certificate_body,
    sign_body,
    verify_certificate,
)
from enclave.prepare.report import PreparationReport
from enclave.prepare.secrets import destroy_secrets, secrets_dir

__all__ = ["DestroyedItem", "DestructionCertificate", "destroy_workspace", "verify_certificate"]

CERTIFICATES = "certificates"
VolumeDestroyer = Callable[[str], Sequence[Any]]
Progress = Callable[[str, int, int], None]
"""``progress(step, steps_done, steps_total)``: ``step`` names what is destroyed next."""


class DestructionFailed(EnclaveError):
    """A destruction step failed; nothing after it ran, and destruction can be retried."""


def certificates_dir(paths: Paths) -> Path:
    return paths.home / CERTIFICATES


def _destroy_tree(paths: Paths, root: Path) -> list[DestroyedItem]:
    """Hash and delete every file under ``root``, then the folder; links are listed, not followed."""
    items: list[DestroyedItem] = []
    for current, dirs, files in os.walk(root):
        for name in sorted([*files, *(d for d in dirs if (Path(current) / d).is_symlink())]):
            path = Path(current) / name
            relative = str(path.relative_to(paths.home))
            if path.is_symlink():
                items.append(DestroyedItem("link", relative))
            else:
                items.append(DestroyedItem("file", relative, sha256_file(path), path.stat().st_size))
    # Files are made read-only at preparation; deletion needs write access to their folders only.
    shutil.rmtree(root)
    fsync_path(root.parent)
    items.append(DestroyedItem("directory", str(root.relative_to(paths.home))))
    return items


def _prepared_objects(project_dir: Path) -> tuple[dict[str, str], bool]:
    """(object URL -> sha256, whether any build is on object storage), from the builds' reports."""
    hashes: dict[str, str] = {}
    on_s3 = False
    builds = project_dir / layout.PREPARED / layout.BUILDS
    for report_file in sorted(builds.glob(f"*/{layout.REPORT}")) if builds.is_dir() else []:
        try:
            report = PreparationReport.load(report_file)
        except (OSError, ValueError):
            continue
        on_s3 = on_s3 or report.storage == "s3"
        for dataset in report.datasets.values():
            if dataset.object and dataset.prepared_sha256:
                hashes[dataset.object] = dataset.prepared_sha256
    return hashes, on_s3


def _destroy_objects(
    store: storage.S3Store | None, project_id: str, project_dir: Path
) -> list[DestroyedItem]:
    """Delete the project's objects in the bucket (verified gone); nothing when storage is local."""
    hashes, on_s3 = _prepared_objects(project_dir)
    if store is None:
        if on_s3:
            raise DestructionFailed(
                "storage_not_configured",
                f"Prepared data of {project_id} is in a bucket, but storage: s3 is not configured; "
                "nothing was deleted",
                f"项目 {project_id} 的预处理数据在存储桶中，但未配置 storage: s3；未删除任何内容",
            )
        return []
    prefix = store.project_key(project_id)
    items = []
    for key, size in store.delete_prefix(prefix):
        url = store.url(key)
        items.append(DestroyedItem("object", url, hashes.get(url), size))
    items.append(DestroyedItem("object_prefix", store.url(prefix)))
    return items


def _certificate_path(paths: Paths, project_id: str) -> Path:
    folder = private_dir(certificates_dir(paths))
    path = folder / f"{project_id}-destruction.json"
    if path.exists():  # never overwrite an earlier certificate
        stamp = now_iso().replace(":", "").replace("+", "_")
        path = folder / f"{project_id}-destruction-{stamp}.json"
    return path


def _stepper(progress: Progress | None, total: int) -> Callable[[str], None]:
    """``step(name)`` reports ``name`` as the next of ``total`` steps."""
    done = 0

    def step(name: str) -> None:
        nonlocal done
        if progress is not None:
            progress(name, done, total)
        done += 1

    return step


def destroy_workspace(
    paths: Paths,
    project_id: str,
    *,
    actor: str,
    volume_destroyers: Sequence[VolumeDestroyer] = (),
    database_destroyers: Sequence[VolumeDestroyer] = (),
    missing_ok: bool = False,
    progress: Progress | None = None,
) -> DestructionCertificate:
    """Delete the project's prepared data, twin, volumes and secrets; return the signed certificate.

    ``NotFound`` when nothing of the project is on disk, unless ``missing_ok`` (the state database
    knows the project, which was never prepared: its volumes still go, and the certificate says so).
    A failing volume destroyer stops before any file is deleted (``DestructionFailed``), so the
    call can simply be repeated. ``database_destroyers`` delete the project's rows in the caller's
    transaction: they run after the files are gone, just before signing, so that a SQLite state
    database is write-locked only briefly, and an error anywhere undoes them with the transaction.
    ``progress`` is told each step (every destroyer, the objects, the files, the secrets, the
    certificate) before it runs.
    """
    check_project_id(project_id)
    project_dir = paths.project_dir(project_id)
    secrets_folder = secrets_dir(paths, project_id)
    if not missing_ok and not project_dir.exists() and not secrets_folder.exists():
        raise NotFound(
            "workspace_not_found",
            f"Project {project_id} has no workspace data to destroy",
            f"项目 {project_id} 没有可销毁的工作区数据",
        )
    store = storage.store_for(paths)  # a settings or credentials problem stops before any deletion
    started_at = now_iso()
    items: list[DestroyedItem] = []
    step = _stepper(progress, len(volume_destroyers) + len(database_destroyers) + 4)
    for destroyer in volume_destroyers:
        step("volumes")
        try:
            items += [DestroyedItem.coerce(item) for item in destroyer(project_id)]
        except Exception as error:
            raise DestructionFailed(
                "destruction_failed",
                f"Destroying the workspace volumes of {project_id} failed ({type(error).__name__}); "
                "nothing else was deleted, try again",
                f"销毁项目 {project_id} 的工作区卷失败（{type(error).__name__}）；其他内容未删除，请重试",
            ) from error
    step("objects")
    try:
        items += _destroy_objects(store, project_id, project_dir)
    except DestructionFailed:
        raise
    except Exception as error:
        raise DestructionFailed(
            "destruction_failed",
            f"Deleting the objects of {project_id} in the bucket failed ({type(error).__name__}); "
            "the vault files were kept, try again",
            f"删除项目 {project_id} 在存储桶中的对象失败（{type(error).__name__}）；保险库文件未删除，请重试",
        ) from error
    step("files")
    if project_dir.exists():
        items += _destroy_tree(paths, project_dir)
    step("secrets")
    items += destroy_secrets(paths, project_id)
    for destroyer in database_destroyers:
        step("records")
        items += [DestroyedItem.coerce(item) for item in destroyer(project_id)]
    step("certificate")
    completed_at = now_iso()
    body = certificate_body(project_id, actor, started_at, completed_at, items)
    public_key, signature = sign_body(paths.vault / "keys", body)
    path = _certificate_path(paths, project_id)
    document = {**body, "public_key": public_key, "signature": signature}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True), encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    fsync_path(path.parent)
    step("destroyed")  # all ``total`` steps done
    return DestructionCertificate(
        project_id, actor, started_at, completed_at, items, public_key, signature, path
    )
