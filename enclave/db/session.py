"""Engines, sessions and migrations for the state database (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from enclave import config
from enclave.errors import BadInput

MIGRATIONS = Path(__file__).parent / "migrations"
_engines: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def engine_for(url: str) -> Engine:
    """One engine per URL for the life of the process."""
    if url not in _engines:
        if url.startswith("sqlite"):
            eng = create_engine(url, connect_args={"timeout": 30})
            event.listen(eng, "connect", _sqlite_pragmas)
        else:
            eng = create_engine(url, pool_pre_ping=True)
        _engines[url] = eng
    return _engines[url]


def dispose_all() -> None:
    """Close every pooled connection (tests, and before a process forks)."""
    for eng in _engines.values():
        eng.dispose()
    _engines.clear()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the schema to the newest migration (``enclave init`` and every service start)."""
    if url.startswith("sqlite:///"):
        database = make_url(url).database
        if database and database != ":memory:":
            config.private_sqlite_file(Path(database))  # 0600: password hashes and analysts' SQL
    cfg = alembic_config(url)
    with engine_for(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def is_initialised(url: str) -> bool:
    try:
        return inspect(engine_for(url)).has_table("audit_head")
    except Exception:
        return False


def connect(url: str) -> sessionmaker[Session]:
    """A session factory for an initialised state database."""
    if not is_initialised(url):
        raise BadInput(
            "not_initialised",
            "The enclave is not initialised here: run `enclave init` first.",
            "此处尚未初始化 enclave：请先运行 `enclave init`。",
            details={"database": _redact(url)},
        )
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error, so nothing is half-written."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
