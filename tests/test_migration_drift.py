"""The models and the migrations describe the same database (issue 15): Alembic's autogenerate,
run against a database migrated to the head, finds nothing to add, drop or change, on SQLite and
on PostgreSQL. A model changed without a migration (or the reverse) fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from enclave import db
from enclave.db.models import Base


def test_autogenerate_finds_no_drift(database_url: str) -> None:
    db.migrate(database_url)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            drift = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert drift == [], "\n".join(map(str, drift))
