"""Publish a project's read-only data for its workspaces, outside the vault (ARCHITECTURE §2).

The vault's prepared builds are private to the service (mode 0700, root). A workspace runs as an
unprivileged uid, so the spawner publishes a copy it may read:

```
<home>/workspaces/<project>/v<N>/twin/<dataset>.parquet     the synthetic twin (every project)
<home>/workspaces/<project>/v<N>/twin.duckdb                views over the twin
<home>/workspaces/<project>/v<N>/rows/<dataset>.parquet     prepared rows (``access: rows`` only)
<home>/workspaces/<project>/v<N>/rows.duckdb                views over them
```

The folder is mounted read-only at the same path inside the container, so the absolute paths in
the views stay valid. Raw data is never published; prepared rows only for ``rows`` projects
(R-PREP-13: de-identified data whose k-anonymity was verified). A version is published once,
once (a marker file written last);
publishing again returns it unchanged.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from enclave.config import Paths
from enclave.files import check_project_id
from enclave.prepare import layout
from enclave.prepare.views import build_views_db

TWIN = "twin"
ROWS = "rows"
READABLE_DIR = 0o550
READABLE_FILE = 0o440
COMPLETE = ".complete"


@dataclass(frozen=True)
class PublishedData:
    root: Path
    twin_db: Path
    rows_db: Path | None


def workspaces_root(paths: Paths) -> Path:
    return paths.home / "workspaces"


def _published(root: Path, rows: bool) -> PublishedData:
    return PublishedData(root, root / f"{TWIN}.duckdb", root / f"{ROWS}.duckdb" if rows else None)


def _copy_parquet(source_dir: Path, target_dir: Path) -> dict[str, Path]:
    target_dir.mkdir()
    files = {}
    for parquet in sorted(source_dir.glob("*.parquet")):
        target = target_dir / parquet.name
        shutil.copyfile(parquet, target)
        files[parquet.stem] = target
    return files


def _hand_over(root: Path, uid: int, gid: int) -> None:
    """Readable by the workspace user and group only, writable by nobody."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = Path(dirpath) / name
            os.chown(path, uid, gid)
            os.chmod(path, READABLE_FILE)
        for name in dirnames:
            os.chown(Path(dirpath) / name, uid, gid)
            os.chmod(Path(dirpath) / name, READABLE_DIR)
    os.chown(root, uid, gid)
    os.chmod(root, READABLE_DIR)


def publish(paths: Paths, project_id: str, *, rows: bool, uid: int, gid: int) -> PublishedData:
    """The published data of the project's current prepared version (built on first use)."""
    prepared = layout.current_prepared_dir(paths, check_project_id(project_id))
    version = layout.current_version(paths, project_id)
    project_root = workspaces_root(paths) / project_id
    final = project_root / (f"v{version}-rows" if rows else f"v{version}")
    if (final / COMPLETE).is_file():
        return _published(final, rows)
    project_root.mkdir(parents=True, exist_ok=True)
    os.chmod(project_root.parent, 0o755)  # the container must traverse these two
    os.chmod(project_root, 0o755)
    with layout.project_lock(project_root / ".publish"):
        if (final / COMPLETE).is_file():
            return _published(final, rows)
        # The views hold absolute paths that DuckDB checks when they are created, so the copy is
        # built in place; the marker written last tells a finished copy from an interrupted one.
        shutil.rmtree(final, ignore_errors=True)
        final.mkdir()
        try:
            twin_files = _copy_parquet(prepared / layout.TWIN_DIR, final / TWIN)
            build_views_db(final / f"{TWIN}.duckdb", twin_files)
            if rows:
                build_views_db(final / f"{ROWS}.duckdb", _copy_parquet(prepared, final / ROWS))
            _hand_over(final, uid, gid)
            (final / COMPLETE).write_text("")
            os.chmod(final / COMPLETE, READABLE_FILE)
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
    return _published(final, rows)


def unpublish(paths: Paths, project_id: str) -> None:
    """Remove every published version of the project (at expiry or destruction)."""
    shutil.rmtree(workspaces_root(paths) / check_project_id(project_id), ignore_errors=True)
