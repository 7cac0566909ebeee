"""Where the enclave keeps its state: the home directory and the state database URL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "ENCLAVE_HOME"
DATABASE_URL_ENV = "ENCLAVE_DATABASE_URL"
DEFAULT_HOME = Path.home() / ".enclave"


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
    """``$ENCLAVE_DATABASE_URL`` (PostgreSQL in production), else SQLite under the home."""
    url = os.environ.get(DATABASE_URL_ENV)
    if url:
        return url
    return f"sqlite:///{paths(home).state_db}"
