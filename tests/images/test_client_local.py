"""The analyst client's local data (``enclave_client.twin()``, ``rows()``, ``%%sql --twin``) on real
DuckDB files laid out as the spawner publishes them: ``<root>/twin.duckdb`` over ``<root>/twin/``,
and in ``access: rows`` projects ``<root>/rows.duckdb`` over ``<root>/rows/``."""

from __future__ import annotations

from pathlib import Path

import duckdb
import enclave_client
import pytest
from enclave_client import QueryError, magic
from enclave_client.magic import run_cell

from enclave.prepare.views import build_views_db


def publish(root: Path, name: str, rows: list[tuple[str, int]]) -> Path:
    """``<root>/<name>.duckdb`` with a ``patients`` view over ``<root>/<name>/patients.parquet``."""
    folder = root / name
    folder.mkdir(parents=True)
    parquet = folder / "patients.parquet"
    values = ", ".join(f"('{sex}', {age})" for sex, age in rows)
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM (VALUES {values}) t(sex, age)) TO '{parquet}' (FORMAT parquet)")
    build_views_db(root / f"{name}.duckdb", {"patients": parquet})
    return root / f"{name}.duckdb"


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``aggregate`` workspace's environment: the twin only."""
    root = tmp_path / "workspaces" / "cardio" / "v1"
    monkeypatch.setenv("ENCLAVE_TWIN_DB", str(publish(root, "twin", [("F", 40), ("M", 50), ("F", 60)])))
    monkeypatch.setenv("ENCLAVE_ACCESS", "aggregate")
    monkeypatch.delenv("ENCLAVE_ROWS_DB", raising=False)
    monkeypatch.setattr(magic, "_local", {})
    return root


@pytest.fixture
def with_rows(published: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``access: rows`` workspace: the prepared rows beside the twin."""
    monkeypatch.setenv("ENCLAVE_ROWS_DB", str(publish(published, "rows", [("F", 41), ("M", 52)])))
    monkeypatch.setenv("ENCLAVE_ACCESS", "rows")
    return published


def test_twin_reads_the_environment_and_answers_locally(published: Path) -> None:
    con = enclave_client.twin()
    assert con.sql("SELECT count(*) FROM patients").fetchone() == (3,)
    assert con.sql("SELECT avg(age) FROM patients WHERE sex = 'F'").fetchone() == (50.0,)


def test_twin_twice_in_one_kernel(published: Path) -> None:
    """A cell run again asks for the twin again while the first connection is open."""
    first, second = enclave_client.twin(), enclave_client.twin()
    assert first.sql("SELECT count(*) FROM patients").fetchone() == (3,)
    assert second.sql("SELECT count(*) FROM patients").fetchone() == (3,)
    second.close()
    assert first.sql("SELECT count(*) FROM patients").fetchone() == (3,)
    with pytest.raises(duckdb.Error, match="locked"):
        second_again = enclave_client.twin()
        second_again.execute("SET enable_external_access = true")


def test_twin_already_opened_another_way_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "elsewhere" / "v1"
    monkeypatch.setenv("ENCLAVE_TWIN_DB", str(publish(root, "twin", [("F", 40)])))
    own = duckdb.connect(str(root / "twin.duckdb"), read_only=True)
    try:
        with pytest.raises(QueryError) as caught:
            enclave_client.twin()
        assert caught.value.code == "local_data_in_use"
        assert "DuckDB" in str(caught.value) and "连接" in caught.value.errors[0]["message"]["zh"]
    finally:
        own.close()


def test_twin_is_read_only(published: Path) -> None:
    with pytest.raises(duckdb.Error, match="read-only"):
        enclave_client.twin().execute("CREATE TABLE copied AS SELECT * FROM patients")


def test_twin_reads_no_file_beyond_its_own_folder(published: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("secret\n1\n")
    con = enclave_client.twin()
    for sql in (
        f"SELECT * FROM read_csv('{outside}')",
        f"SELECT * FROM read_csv('{published / 'twin' / '..' / '..' / '..' / '..' / 'elsewhere.csv'}')",
        "SELECT * FROM glob('/etc/*')",
        f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'",
        f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
    ):
        with pytest.raises(duckdb.PermissionException):
            con.execute(sql)
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "other.duckdb").exists()


def test_twin_cannot_reach_the_rows_beside_it(with_rows: Path) -> None:
    rows_file = with_rows / "rows" / "patients.parquet"
    with pytest.raises(duckdb.PermissionException):
        enclave_client.twin().execute(f"SELECT * FROM read_parquet('{rows_file}')")


def test_the_lock_down_cannot_be_undone_by_a_query(published: Path) -> None:
    con = enclave_client.twin()
    for sql in (
        "SET enable_external_access = true",
        "SET allowed_directories = ['/']",
        "RESET enable_external_access",
    ):
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute(sql)
    with pytest.raises(duckdb.Error):
        con.execute("LOAD httpfs")


def test_twin_outside_a_workspace_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENCLAVE_TWIN_DB", raising=False)
    with pytest.raises(QueryError) as caught:
        enclave_client.twin()
    assert caught.value.code == "twin_not_available"
    assert "ENCLAVE_TWIN_DB" in caught.value.message and caught.value.message_zh


def test_a_missing_file_is_a_query_error(tmp_path: Path) -> None:
    with pytest.raises(QueryError) as caught:
        enclave_client.twin(tmp_path / "absent.duckdb")
    assert caught.value.code == "local_data_missing" and not (tmp_path / "absent.duckdb").exists()


def test_rows_in_an_aggregate_project_are_refused_in_both_languages(published: Path) -> None:
    with pytest.raises(QueryError) as caught:
        enclave_client.rows()
    error = caught.value
    assert error.code == "no_row_access" and error.status == 0
    assert "no row access" in error.message and "aggregate" in error.message
    assert "行级访问" in error.message_zh


def test_rows_in_a_rows_project(with_rows: Path) -> None:
    con = enclave_client.rows()
    assert sorted(con.sql("SELECT age FROM patients").fetchall()) == [(41,), (52,)]
    with pytest.raises(duckdb.Error, match="read-only"):
        con.execute("DROP VIEW patients")


def test_sql_magic_on_the_twin_and_the_rows(with_rows: Path) -> None:
    namespace: dict[str, object] = {}
    frame = run_cell("--twin --out t", "SELECT count(*) AS n FROM patients", namespace)
    assert namespace["t"] is frame and int(frame["n"][0]) == 3
    assert frame.attrs["synthetic"] is True and frame.attrs["local"] is True
    real = run_cell("--rows", "SELECT count(*) AS n FROM patients")
    assert int(real["n"][0]) == 2 and real.attrs["synthetic"] is False


def test_sql_magic_rows_in_an_aggregate_project(published: Path) -> None:
    with pytest.raises(QueryError) as caught:
        run_cell("--rows", "SELECT 1")
    assert caught.value.code == "no_row_access"


@pytest.mark.parametrize("line", ["--twin --rows", "--synthetic --twin", "--twin --local"])
def test_sql_magic_refuses_conflicting_or_unknown_options(published: Path, line: str) -> None:
    with pytest.raises(ValueError):
        run_cell(line, "SELECT 1")
