"""Every module's docstring examples run (sqlglot's ``test_docs`` style, issue 15): an example that
no longer matches the code fails here, wherever it is. Modules without examples pass trivially;
a module that cannot even be imported fails."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# (folder, its path under the repository): the vault packages, the hub's, and the analyst client.
PACKAGES = (("enclave", "enclave"), ("export_review", "export_review"), ("hub_config", "hub_config"))
CLIENT = REPO / "images" / "analyst" / "client"
# Files that are not importable modules: JupyterHub config files (they call get_config()) and
# Alembic's migration scripts (they run inside Alembic's context).
NOT_MODULES = ("hub_config/jupyterhub_config.py", "hub_config/kubespawner_config.py")


def module_names() -> list[str]:
    names = []
    roots = [(REPO, REPO / folder) for folder, _ in PACKAGES] + [(CLIENT, CLIENT / "enclave_client")]
    for base, folder in roots:
        for path in sorted(folder.rglob("*.py")):
            relative = path.relative_to(base).as_posix()
            if relative in NOT_MODULES or "/migrations/" in relative:
                continue
            names.append(relative.removesuffix(".py").removesuffix("/__init__").replace("/", "."))
    return names


@pytest.mark.parametrize("name", module_names())
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


@pytest.mark.parametrize(
    "name", ["enclave.deid.coding", "enclave.deid.dates", "enclave.deid.generalize", "enclave.deid.pseudonym"]
)
def test_the_examples_are_found(name: str) -> None:
    """Not a vacuous pass: modules known to carry examples are checked, and their examples run."""
    assert name in module_names()
    assert doctest.testmod(importlib.import_module(name)).attempted > 0
