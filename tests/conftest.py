"""Shared fixtures: a state database on SQLite and on the real PostgreSQL server, and small datasets."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from enclave import audit, db
from enclave.config import Paths
from enclave.db.session import dispose_all
from enclave.specs import DatasetSpec
from tests.harness.planted import sources

POSTGRES_ADMIN_URL = os.environ.get(
    "ENCLAVE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if not _postgres_available():
        if os.environ.get("ENCLAVE_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required but not reachable at {POSTGRES_ADMIN_URL}")
        pytest.skip("PostgreSQL is not reachable")
    return POSTGRES_ADMIN_URL


def _fresh_postgres_database(admin_url: str) -> Iterator[str]:
    name = f"enclave_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def state_database(request: pytest.FixtureRequest, sqlite_path: Path) -> Iterator[str]:
    """The URL of a fresh state database for a fixture parametrised ``sqlite``/``postgresql``: SQLite at
    ``sqlite_path``, or a new PostgreSQL database. When the generator ends, the engines are disposed
    of and the PostgreSQL database is dropped."""
    if request.param == "sqlite":
        try:
            yield f"sqlite:///{sqlite_path}"
        finally:
            dispose_all()
        return
    yield from _fresh_postgres_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated state database: SQLite in a temp dir, or a new PostgreSQL database. Its
    audit chain is keyed by the vault of the ``paths`` fixture's home."""
    for url in state_database(request, tmp_path / "state.db"):
        db.migrate(url)
        audit.use_vault(url, Paths(tmp_path / "home"))
        yield url


@pytest.fixture
def sessions(database_url: str) -> sessionmaker[Session]:
    return db.connect(database_url)


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    home = tmp_path / "home"
    home.mkdir()
    return Paths(home)


@pytest.fixture
def source_files(tmp_path: Path) -> dict[str, tuple[DatasetSpec, Path]]:
    return sources(tmp_path / "sources")


@pytest.fixture
def rare_source_files(tmp_path: Path) -> dict[str, tuple[DatasetSpec, Path]]:
    return sources(tmp_path / "rare-sources", rare=True)


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
