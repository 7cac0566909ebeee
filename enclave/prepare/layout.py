"""Where a project's prepared data lives, and which version is current.

```
vault/projects/<id>/prepared/
    builds/v3-1a2b3c4d/     one finished build: <dataset>.parquet, views.duckdb, twin/, twin.duckdb,
                            report.json (never renamed, so the absolute paths in the views stay valid)
    v3 -> builds/v3-1a2b3c4d
    current -> v3
```

A build becomes visible only when the ``v<N>`` and ``current`` links are switched, each with one
atomic rename; builds that no link names are leftovers of an interrupted run and are removed.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from enclave.config import Paths
from enclave.errors import NotFound
from enclave.files import check_project_id, private_dir

PREPARED = "prepared"
BUILDS = "builds"
CURRENT = "current"
VIEWS_DB = "views.duckdb"
TWIN_DB = "twin.duckdb"
TWIN_DIR = "twin"
REPORT = "report.json"
LOCK = ".lock"


def prepared_root(paths: Paths, project_id: str) -> Path:
    return paths.project_dir(check_project_id(project_id)) / PREPARED


def new_build_dir(root: Path, version: int) -> Path:
    builds = private_dir(root / BUILDS)
    path = builds / f"v{version}-{secrets.token_hex(4)}"
    path.mkdir(mode=0o700)
    return path


def version_link(root: Path, version: int) -> Path:
    return root / f"v{version}"


@contextmanager
def project_lock(root: Path) -> Iterator[None]:
    """One preparation at a time per project."""
    private_dir(root)
    fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def linked_builds(root: Path) -> set[Path]:
    """The resolved build folders that a ``v<N>`` link points to."""
    if not root.is_dir():
        return set()
    return {
        (root / os.readlink(link)).resolve()
        for link in root.iterdir()
        if link.is_symlink() and link.name.startswith("v")
    }


def remove_unlinked_builds(root: Path) -> None:
    """Delete builds that no ``v<N>`` link points to (interrupted or superseded runs)."""
    builds = root / BUILDS
    if not builds.is_dir():
        return
    linked = linked_builds(root)
    for build in builds.iterdir():
        if build.resolve() not in linked:
            shutil.rmtree(build, ignore_errors=True)


def current_prepared_dir(paths: Paths, project_id: str) -> Path:
    """The folder of the current prepared version (resolved); ``NotFound`` when not prepared."""
    link = prepared_root(paths, project_id) / CURRENT
    target = link.resolve() if link.is_symlink() else None
    if target is None or not (target / VIEWS_DB).is_file():
        raise NotFound(
            "workspace_not_prepared",
            f"Project {project_id} has no prepared data",
            f"项目 {project_id} 没有已准备的数据",
        )
    return target


def current_version(paths: Paths, project_id: str) -> int:
    """The number of the current prepared version."""
    link = prepared_root(paths, project_id) / CURRENT
    current_prepared_dir(paths, project_id)
    return int(os.readlink(link).removeprefix("v"))


def current_views_db(paths: Paths, project_id: str) -> Path:
    return current_prepared_dir(paths, project_id) / VIEWS_DB


def current_twin_db(paths: Paths, project_id: str) -> Path:
    return current_prepared_dir(paths, project_id) / TWIN_DB
