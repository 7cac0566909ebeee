"""Migrations 0002 and 0006 go up and down on SQLite and PostgreSQL; the docstring examples run."""

from __future__ import annotations

import doctest

import pytest
from alembic import command
from sqlalchemy import inspect

from enclave import committee
from enclave.db.session import alembic_config, engine_for
from export_review.checks import html_tables

TABLES = {"export_requests", "export_files", "export_votes", "export_reviewer_keys"}


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    assert set(inspect(engine_for(database_url)).get_table_names()) >= TABLES
    cfg = alembic_config(database_url)
    with engine_for(database_url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert not TABLES & set(inspect(engine_for(database_url)).get_table_names())
    with engine_for(database_url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert set(inspect(engine_for(database_url)).get_table_names()) >= TABLES


@pytest.mark.parametrize("module", [committee, html_tables])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0
