"""The analyst client (images/analyst/client) is its own distribution that carries none of the vault.

It is installed in every workspace, so whatever it imports is in reach of analysts: it talks to
the gateway over HTTP, reads the project's published DuckDB files (``enclave_client.local`` only)
and must not need the vault package ``enclave`` or any server-side library. Checked statically, so
a lazy import inside a function is caught too.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "images" / "analyst" / "client"
FORBIDDEN = {
    "enclave",  # the vault: preparation, secrets, the guard, export review
    "sqlglot",
    "sqlalchemy",
    "psycopg",
    "psycopg2",
    "cryptography",
    "minio",
    "dockerspawner",
    "jupyterhub",
    "hub_config",
    "export_review",
}
ALLOWED_THIRD_PARTY = {"pyarrow", "pandas", "IPython", "duckdb"}
# The one module that opens files of the workspace with DuckDB (read-only, locked down).
DUCKDB_ONLY_IN = {"enclave_client/local.py"}


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level module) of every import; relative imports count as the client itself."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "enclave_client" if node.level else (node.module or "").split(".")[0]))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Name, ast.Attribute))
            and getattr(node.func, "id", getattr(node.func, "attr", "")) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append((node.lineno, str(node.args[0].value).split(".")[0]))
    return found


def client_sources() -> list[Path]:
    sources = sorted(CLIENT.rglob("*.py"))
    assert sources, f"no client sources under {CLIENT}"
    return sources


def test_the_client_imports_nothing_of_the_vault_or_the_servers() -> None:
    offending = [
        f"{path.relative_to(CLIENT)}:{line} imports {module}"
        for path in client_sources()
        for line, module in imported_modules(ast.parse(path.read_text(), str(path)))
        if module in FORBIDDEN
    ]
    assert offending == []


def test_only_the_local_module_imports_duckdb() -> None:
    users = {
        path.relative_to(CLIENT).as_posix()
        for path in client_sources()
        for _, module in imported_modules(ast.parse(path.read_text(), str(path)))
        if module == "duckdb"
    }
    assert users == DUCKDB_ONLY_IN


def test_the_client_imports_only_the_standard_library_and_its_dependencies() -> None:
    import sys

    allowed = set(sys.stdlib_module_names) | ALLOWED_THIRD_PARTY | {"enclave_client", "__future__"}
    strays = {
        module
        for path in client_sources()
        for _, module in imported_modules(ast.parse(path.read_text(), str(path)))
        if module not in allowed
    }
    assert strays == set()


def test_the_checker_sees_lazy_and_dynamic_imports() -> None:
    code = (
        "def f():\n    import enclave.audit\n    from sqlglot import exp\n"
        "    importlib.import_module('minio.api')\n"
    )
    assert [m for _, m in imported_modules(ast.parse(code))] == ["enclave", "sqlglot", "minio"]


def test_the_distribution_depends_on_pyarrow_pandas_and_duckdb_only() -> None:
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "enclave-client"
    names = {dep.split(">")[0].split("=")[0].split("<")[0].strip() for dep in project["dependencies"]}
    assert names == {"pyarrow", "pandas", "duckdb"}
    extras = {dep for deps in project.get("optional-dependencies", {}).values() for dep in deps}
    assert all(dep.startswith("ipython") for dep in extras), extras


def test_the_vault_package_has_no_client_left() -> None:
    vault = CLIENT.parents[2] / "enclave"
    assert not (vault / "client").exists()
    requirements = (CLIENT.parent / "requirements.txt").read_text().split()
    assert "enclave" not in requirements and "enclave-client" in requirements
