"""Per-project de-identification secrets (R-PREP-10, R-PREP-15, R-LIFE-6).

Each project has its own pseudonym key (32 random bytes) and date offset (random, never zero,
within ±[30, 365] days), so the same person gets unlinkable pseudonyms and dates in two projects.
They live in ``vault/secrets/<project>/`` (folder 0700, file 0600), are never mounted into a
workspace, never written into prepared data, views, the twin, a report or a log.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from enclave.audit import now_iso
from enclave.config import Paths
from enclave.deid.dates import MAX_OFFSET_DAYS, MIN_OFFSET_DAYS
from enclave.deid.pseudonym import derive_key
from enclave.errors import BadInput, NotFound
from enclave.files import check_project_id, fsync_path, private_dir, sha256_file, write_private
from enclave.prepare.certificate import DestroyedItem

KEY_BYTES = 32
SECRETS_FILE = "deid.json"


@dataclass(frozen=True)
class ProjectSecrets:
    """A project's de-identification secrets. ``repr`` never shows them."""

    pseudonym_key: bytes
    date_offset_days: int
    per_person_offset: bool

    def __repr__(self) -> str:
        return f"ProjectSecrets(per_person_offset={self.per_person_offset}, ...)"

    def subkey(self, purpose: str) -> bytes:
        """A key for one use (``pseudonym``, ``date_offset``, ``date_jitter``, ``twin``), derived from
        the master key."""
        return derive_key(self.pseudonym_key, purpose)


def secrets_dir(paths: Paths, project_id: str) -> Path:
    return paths.secrets / check_project_id(project_id)


def _random_offset() -> int:
    size = MIN_OFFSET_DAYS + secrets.randbelow(MAX_OFFSET_DAYS - MIN_OFFSET_DAYS + 1)
    return size if secrets.randbelow(2) else -size


def _encode(value: ProjectSecrets) -> bytes:
    record = {
        "pseudonym_key": value.pseudonym_key.hex(),
        "date_offset_days": value.date_offset_days,
        "per_person_offset": value.per_person_offset,
        "created_at": now_iso(),
    }
    return json.dumps(record, sort_keys=True).encode("utf-8")


def create_secrets(paths: Paths, project_id: str, *, per_person_offset: bool = False) -> ProjectSecrets:
    """New random secrets for the project, or the existing ones unchanged (idempotent)."""
    folder = secrets_dir(paths, project_id)
    private_dir(paths.secrets)
    private_dir(folder)
    fresh = ProjectSecrets(secrets.token_bytes(KEY_BYTES), _random_offset(), per_person_offset)
    write_private(folder / SECRETS_FILE, _encode(fresh), replace=False)
    return load_secrets(paths, project_id)


def load_secrets(paths: Paths, project_id: str) -> ProjectSecrets:
    """The project's secrets; ``NotFound`` when it has none (never created, or destroyed)."""
    path = secrets_dir(paths, project_id) / SECRETS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(
            "project_secrets_not_found",
            f"Project {project_id} has no de-identification secrets",
            f"项目 {project_id} 没有去标识化密钥",
        ) from None
    per_person: object = None
    try:
        record = json.loads(text)
        key = bytes.fromhex(record["pseudonym_key"])
        offset = int(record["date_offset_days"])
        per_person = record["per_person_offset"]
        valid = len(key) == KEY_BYTES and MIN_OFFSET_DAYS <= abs(offset) <= MAX_OFFSET_DAYS
    except (KeyError, TypeError, ValueError, AttributeError):
        valid = False
    if not valid or not isinstance(per_person, bool):
        raise BadInput(
            "project_secrets_corrupt",
            f"The de-identification secrets of project {project_id} are corrupt",
            f"项目 {project_id} 的去标识化密钥已损坏",
        )
    return ProjectSecrets(key, offset, per_person)


def _overwrite(path: Path) -> None:
    """Overwrite a small file with random bytes before unlinking it (R-LIFE-6, best effort)."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.write(secrets.token_bytes(size))
        handle.flush()
        os.fsync(handle.fileno())


def destroy_secrets(paths: Paths, project_id: str) -> list[DestroyedItem]:
    """Overwrite and delete every secret of the project; the list of what was destroyed."""
    folder = secrets_dir(paths, project_id)
    if not folder.exists():
        return []
    items: list[DestroyedItem] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        digest, size = sha256_file(path), path.stat().st_size
        _overwrite(path)
        path.unlink()
        items.append(DestroyedItem("secret", str(path.relative_to(paths.home)), digest, size))
    shutil.rmtree(folder)
    fsync_path(paths.secrets)
    items.append(DestroyedItem("directory", str(folder.relative_to(paths.home))))
    return items
