"""Fixtures: an export-review environment on SQLite (and on PostgreSQL where a test asks for it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from enclave import db
from enclave.config import Paths
from enclave.db.session import dispose_all
from tests.export_review.factories import ExportEnv, make_project


@pytest.fixture
def env(tmp_path: Path) -> ExportEnv:
    """SQLite only: most rules do not depend on the database."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    db.migrate(url)
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "work").mkdir()
    yield ExportEnv(db.connect(url), Paths(home), tmp_path / "work")
    dispose_all()


@pytest.fixture
def any_env(sessions: sessionmaker[Session], paths: Paths, tmp_path: Path) -> ExportEnv:
    """SQLite and PostgreSQL (the shared ``sessions`` fixture is parametrised over both)."""
    (tmp_path / "work").mkdir()
    return ExportEnv(sessions, paths, tmp_path / "work")


@pytest.fixture
def project(env: ExportEnv) -> str:
    return make_project(env)
