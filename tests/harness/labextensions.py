"""The hand-written labextensions of the analyst image (images/analyst/lockdown/labextension/), each
checked the same way without a browser: the files JupyterLab reads, that the lockdown distribution
installs them where JupyterLab looks, that the page config neither disables nor locks them, and that
the script loads nothing else and writes no markup. Each check is named by the extension's folder."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import tomllib
from pathlib import Path
from types import ModuleType

from tests.harness.jupyterhub import REPO

LOCKDOWN = REPO / "images" / "analyst" / "lockdown"
LABEXTENSIONS = LOCKDOWN / "labextension"
PAGE_CONFIG = LOCKDOWN.parent / "page_config.json"
FORBIDDEN_IN_SCRIPT = ("http://", "https://", "import(", "require(", "eval(", "new Function", "innerHTML")


def package(name: str) -> dict:
    """The package.json of the extension in folder ``name``."""
    return json.loads((LABEXTENSIONS / name / "package.json").read_text(encoding="utf-8"))


def entry(name: str) -> Path:
    """The extension's module-federation container (remoteEntry.<hash>.js), as package.json names it."""
    return LABEXTENSIONS / name / package(name)["jupyterlab"]["_build"]["load"]


def rehash_module() -> ModuleType:
    """labextension/rehash.py, which names each entry after its content."""
    spec = importlib.util.spec_from_file_location("rehash", LABEXTENSIONS / "rehash.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_package_json(name: str) -> None:
    """package.json is what JupyterLab reads: this name, a version, the container and no style or mime
    module; static/ holds the entry alone."""
    data = package(name)
    assert data["name"] == name and data["version"]
    build = data["jupyterlab"]["_build"]
    assert build["extension"] == "./extension"
    assert set(build) == {"load", "extension"}  # no style or mime module: the container has neither
    assert entry(name).is_file()
    assert sorted(p.name for p in (LABEXTENSIONS / name / "static").iterdir()) == [entry(name).name]


def check_installed(name: str) -> None:
    """The lockdown distribution's data-files put package.json and the entry, and nothing else, in
    share/jupyter/labextensions/``name``/."""
    project = tomllib.loads((LOCKDOWN / "pyproject.toml").read_text())
    data_files = project["tool"]["setuptools"]["data-files"]
    files = (str(p.relative_to(LOCKDOWN)) for p in (LABEXTENSIONS / name).rglob("*") if p.is_file())
    installed = {
        f"{target}/{Path(path).name}"
        for path in files
        for target, patterns in data_files.items()
        for pattern in patterns
        if fnmatch.fnmatch(path, pattern)
    }
    assert installed == {
        f"share/jupyter/labextensions/{name}/package.json",
        f"share/jupyter/labextensions/{name}/static/{entry(name).name}",
    }


def check_page_config(name: str) -> None:
    """page_config.json neither disables nor locks the extension."""
    config = json.loads(PAGE_CONFIG.read_text())
    for key in ("disabledExtensions", "lockedExtensions"):
        names = set(config.get(key, {}))
        assert not {n for n in names if n.startswith(name)}, (key, names)


def script(name: str) -> str:
    """The entry's source, checked to load no other code and write no markup (FORBIDDEN_IN_SCRIPT)."""
    source = entry(name).read_text(encoding="utf-8")
    for forbidden in FORBIDDEN_IN_SCRIPT:
        assert forbidden not in source, forbidden
    return source
