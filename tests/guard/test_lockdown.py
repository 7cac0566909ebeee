"""The locked connection: views still read their Parquet files; nothing else is reachable or changeable."""

from __future__ import annotations

import threading
import time

import duckdb
import pandas as pd
import pytest

from enclave.errors import BadInput
from enclave.guard import open_locked
from enclave.guard.lockdown import run_with_timeout, view_sources

# Raw statements on the locked connection itself (the guard would refuse them first).
BLOCKED = [
    "SELECT count(*) FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/*')",
    "COPY (SELECT 1) TO '/tmp/enclave-guard-leak.csv'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET lock_configuration",
    "SET memory_limit = '100GB'",
    "SET allowed_directories = ['/']",
    "ATTACH '/tmp/enclave-guard-other.duckdb' AS other",
    "CREATE TABLE copy_of_patients AS SELECT * FROM patients",
    "SELECT * FROM secret_frame",
]


def test_views_read_their_parquet_files(locked):
    assert locked.execute("SELECT count(*) FROM patients").fetchone()[0] == 200
    assert locked.execute("SELECT count(*) FROM visits").fetchone()[0] > 200


@pytest.mark.parametrize("sql", BLOCKED)
def test_locked_connection_refuses(locked, sql):
    secret_frame = pd.DataFrame({"x": [1]})  # a replacement scan would find this local
    assert len(secret_frame) == 1
    with pytest.raises(duckdb.Error):
        locked.execute(sql)


def test_settings_are_locked_down(locked):
    settings = dict(
        locked.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'lock_configuration', 'autoload_known_extensions', 'autoinstall_known_extensions', "
            "'python_enable_replacements', 'access_mode', 'threads')"
        ).fetchall()
    )
    assert settings["enable_external_access"] == "false"
    assert settings["lock_configuration"] == "true"
    assert settings["autoload_known_extensions"] == "false"
    assert settings["autoinstall_known_extensions"] == "false"
    assert settings["python_enable_replacements"] == "false"
    assert settings["access_mode"] == "read_only"
    assert settings["threads"] == "2"


def test_only_the_view_files_are_allowed(data_dir, locked):
    files, directories = view_sources(locked)
    assert files == {str(data_dir / "patients.parquet"), str(data_dir / "visits.parquet")}
    assert directories == set()


def test_glob_views_allow_their_directory(tmp_path):
    (tmp_path / "parts").mkdir()
    duckdb.execute(f"COPY (SELECT 1 AS x) TO '{tmp_path / 'parts' / 'a.parquet'}'")
    con = duckdb.connect(str(tmp_path / "views.duckdb"))
    con.execute(f"CREATE VIEW parts AS SELECT * FROM read_parquet('{tmp_path / 'parts'}/*.parquet')")
    con.close()
    locked = open_locked(tmp_path / "views.duckdb")
    try:
        assert locked.execute("SELECT count(*) FROM parts").fetchone()[0] == 1
        with pytest.raises(duckdb.Error):
            locked.execute("SELECT * FROM read_text('/etc/hostname')")
    finally:
        locked.close()


def test_second_open_shares_the_locked_instance(data_dir, locked):
    again = open_locked(data_dir / "views.duckdb")
    assert again.execute("SELECT count(*) FROM patients").fetchone()[0] == 200
    with pytest.raises(duckdb.Error):
        again.execute("SET enable_external_access = true")
    with pytest.raises(duckdb.Error):
        again.execute("SELECT * FROM read_text('/etc/hostname')")


def test_closing_one_connection_leaves_the_others_working(data_dir):
    first = open_locked(data_dir / "views.duckdb")
    second = open_locked(data_dir / "views.duckdb")
    first.close()
    assert second.execute("SELECT count(*) FROM visits").fetchone()[0] > 200
    second.close()
    third = open_locked(data_dir / "views.duckdb")
    assert third.execute("SELECT count(*) FROM patients").fetchone()[0] == 200
    third.close()


def test_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(BadInput) as error:
        open_locked(tmp_path / "nope.duckdb")
    assert error.value.code == "views_database_missing"


def test_timeout_interrupts_a_long_statement(locked):
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        run_with_timeout(
            locked,
            0.3,
            lambda: locked.execute(
                "SELECT count(*) FROM patients a JOIN patients b ON a.sex = b.sex "
                "JOIN patients c ON c.sex = a.sex JOIN patients d ON d.sex = c.sex "
                "JOIN patients e ON e.sex = d.sex"
            ).fetchall(),
        )
    assert time.monotonic() - start < 10


def test_an_interrupt_from_elsewhere_is_a_cancel_not_a_timeout(locked):
    threading.Timer(0.3, locked.interrupt).start()
    with pytest.raises(duckdb.InterruptException):
        run_with_timeout(
            locked,
            30.0,
            lambda: locked.execute(
                "SELECT count(*) FROM patients a JOIN patients b ON a.sex = b.sex "
                "JOIN patients c ON c.sex = a.sex JOIN patients d ON d.sex = c.sex "
                "JOIN patients e ON e.sex = d.sex"
            ).fetchall(),
        )
