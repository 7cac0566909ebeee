"""Where the enclave keeps its state: the home directory and the state database URL, and who may
read it (issue #14: the state database holds password hashes and every analyst's SQL).
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from enclave.errors import BadInput

HOME_ENV = "ENCLAVE_HOME"
DATABASE_URL_ENV = "ENCLAVE_DATABASE_URL"
# Production: the environment names a 0600 file holding the URL (it has the database password).
DATABASE_URL_FILE_ENV = "ENCLAVE_DATABASE_URL_FILE"
DEFAULT_HOME = Path.home() / ".enclave"

PRIVATE_UMASK = 0o077  # the CLI and the services: what they create is the service account's alone
HOME_MODE = 0o700
STATE_FILE_MODE = 0o600
OUTBOX_MODE = 0o750  # released exports: the service account, and a group that collects them
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
SETTINGS_FILE = "enclave.yaml"  # deployment settings of the vault (``storage: local | s3``)
S3_CREDENTIALS_FILE = "s3-credentials.yaml"  # 0600, in the vault: never in the environment


@dataclass(frozen=True)
class Paths:
    """The layout of an enclave home (the vault on a single host)."""

    home: Path

    @property
    def vault(self) -> Path:
        """Raw-data copies, per-project secrets and prepared data; readable by the service only."""
        return self.home / "vault"

    @property
    def projects(self) -> Path:
        return self.vault / "projects"

    @property
    def secrets(self) -> Path:
        return self.vault / "secrets"

    @property
    def exports(self) -> Path:
        return self.vault / "exports"

    @property
    def outbox(self) -> Path:
        return self.home / "outbox"

    @property
    def state_db(self) -> Path:
        return self.home / "state.db"

    @property
    def settings_file(self) -> Path:
        return self.home / SETTINGS_FILE

    @property
    def s3_credentials(self) -> Path:
        """The default S3 credentials file of ``storage: s3`` (mode 0600)."""
        return self.vault / S3_CREDENTIALS_FILE

    def project_dir(self, project_id: str) -> Path:
        return self.projects / project_id


def enclave_home(home: str | Path | None = None) -> Path:
    """The home named on the command line, else ``$ENCLAVE_HOME``, else ``~/.enclave``."""
    if home:
        return Path(home).expanduser().resolve()
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser().resolve() if env else DEFAULT_HOME


def paths(home: str | Path | None = None) -> Paths:
    return Paths(enclave_home(home))


def database_url(home: str | Path | None = None) -> str:
    """The state database: the URL in the file ``$ENCLAVE_DATABASE_URL_FILE`` names (production:
    PostgreSQL, its password kept out of every environment), else ``$ENCLAVE_DATABASE_URL``, else
    SQLite under the home. Setting both is refused: which one wins would be a guess.
    """
    url = os.environ.get(DATABASE_URL_ENV)
    url_file = os.environ.get(DATABASE_URL_FILE_ENV)
    if url and url_file:
        raise BadInput(
            "database_url_ambiguous",
            f"Set ${DATABASE_URL_ENV} or ${DATABASE_URL_FILE_ENV}, not both",
            f"只能设置 ${DATABASE_URL_ENV} 或 ${DATABASE_URL_FILE_ENV} 之一",
        )
    if url_file:
        return read_secret_file(url_file)
    if url:
        return url
    return f"sqlite:///{paths(home).state_db}"


def read_secret_file(path: str | Path) -> str:
    """The stripped text of a secret file that only its owner can read or write.

    A secret file must be a regular file (not a link) with no group or other permission bits
    (0600 or 0400), and must not be empty; anything else is refused before it is read.
    """
    target = Path(path)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise BadInput(
            "secret_file_missing", f"The secret file {target} does not exist", f"密钥文件 {target} 不存在"
        ) from None
    except OSError as error:
        raise BadInput(
            "secret_file_unreadable",
            f"The secret file {target} cannot be read ({error.strerror}); it must be a regular file "
            "readable by this service's account",
            f"无法读取密钥文件 {target}（{error.strerror}）；它必须是本服务账户可读的普通文件",
        ) from None
    with os.fdopen(fd, encoding="utf-8") as handle:
        info = os.fstat(handle.fileno())
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISREG(info.st_mode) or mode & 0o077:
            raise BadInput(
                "secret_file_permissions",
                f"The secret file {target} must be a regular file readable by its owner only "
                f"(mode {mode:04o}): run `chmod 600 {target}`",
                f"密钥文件 {target} 必须是仅所有者可读的普通文件（当前权限 {mode:04o}）："
                f"请运行 `chmod 600 {target}`",
            )
        value = handle.read().strip()
    if not value:
        raise BadInput("secret_file_empty", f"The secret file {target} is empty", f"密钥文件 {target} 为空")
    return value


def restrict_umask() -> None:
    """Create files 0600 and folders 0700 from here on (every entry point calls this first)."""
    os.umask(PRIVATE_UMASK)


def _make_dir(path: Path, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    os.chmod(path, mode)  # mkdir's mode is cut by the umask, and an existing folder keeps its own


def secure_home(layout: Paths) -> None:
    """Create the home and the vault 0700 and the outbox 0750, or tighten them if they exist."""
    _make_dir(layout.home, HOME_MODE)
    for directory in (layout.vault, layout.projects, layout.secrets, layout.exports):
        _make_dir(directory, HOME_MODE)
    _make_dir(layout.outbox, OUTBOX_MODE)


def private_sqlite_file(database: Path) -> None:
    """Create a SQLite state file 0600 before SQLite does, and tighten an existing one.

    SQLite gives the ``-wal``, ``-shm`` and ``-journal`` files it creates the database file's
    mode; ones left from before are tightened here too.
    """
    if not database.parent.exists():
        _make_dir(database.parent, HOME_MODE)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, STATE_FILE_MODE))
    for path in (database, *(database.with_name(database.name + side) for side in SQLITE_SIDE_FILES)):
        if path.exists() and path.stat().st_mode & 0o777 & ~STATE_FILE_MODE:
            try:
                os.chmod(path, STATE_FILE_MODE)
            except PermissionError:
                raise BadInput(
                    "state_file_permissions",
                    f"{path} is readable by others and this account may not change that: "
                    f"run `chmod 600 {path}` as its owner",
                    f"{path} 可被其他用户读取，且当前账户无权修改：请由其所有者运行 `chmod 600 {path}`",
                ) from None
