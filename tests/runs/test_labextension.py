"""The hand-written "Run as batch job" labextension, checked without a browser: the files JupyterLab
reads, the module-federation container protocol (run in Node), and that it is installed and
enabled. tests/e2e/test_batch_run_command.py uses it in real JupyterLab and Chromium."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

LOCKDOWN = Path(__file__).resolve().parents[2] / "images" / "analyst" / "lockdown"
EXTENSION = LOCKDOWN / "labextension" / "enclave-runs"
PAGE_CONFIG = LOCKDOWN.parent / "page_config.json"


def package() -> dict:
    return json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))


def entry() -> Path:
    return EXTENSION / package()["jupyterlab"]["_build"]["load"]


def test_package_json_is_what_jupyterlab_reads() -> None:
    data = package()
    assert data["name"] == "enclave-runs" and data["version"]
    build = data["jupyterlab"]["_build"]
    assert build["extension"] == "./extension"
    assert set(build) == {"load", "extension"}  # no style or mime module: the container has neither
    assert entry().is_file()
    assert sorted(p.name for p in (EXTENSION / "static").iterdir()) == [entry().name]


def test_the_entry_is_named_after_its_content() -> None:
    """JupyterLab caches static/ as immutable for a year: a changed file needs a new name."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rehash", LOCKDOWN / "labextension" / "rehash.py")
    assert spec and spec.loader
    rehash = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rehash)
    wanted = rehash.entry_name(entry().read_bytes())
    assert entry().name == wanted, (
        f"the labextension changed: run `python {LOCKDOWN / 'labextension' / 'rehash.py'}` ({wanted})"
    )


def test_the_distribution_installs_it_where_jupyterlab_looks() -> None:
    project = tomllib.loads((LOCKDOWN / "pyproject.toml").read_text())
    data_files = project["tool"]["setuptools"]["data-files"]
    installed = {
        f"{target}/{Path(path).name}"
        for target, patterns in data_files.items()
        for pattern in patterns
        for path in (str(p.relative_to(LOCKDOWN)) for p in EXTENSION.rglob("*") if p.is_file())
        if fnmatch.fnmatch(path, pattern)
    }
    assert installed == {
        "share/jupyter/labextensions/enclave-runs/package.json",
        f"share/jupyter/labextensions/enclave-runs/static/{entry().name}",
    }


def test_the_page_config_neither_disables_nor_locks_it() -> None:
    config = json.loads(PAGE_CONFIG.read_text())
    for key in ("disabledExtensions", "lockedExtensions"):
        names = set(config.get(key, {}))
        assert not {n for n in names if n.startswith("enclave-runs")}, (key, names)


def test_the_script_fetches_nothing_and_writes_no_markup() -> None:
    source = entry().read_text(encoding="utf-8")
    for forbidden in ("http://", "https://", "import(", "require(", "eval(", "new Function", "innerHTML"):
        assert forbidden not in source, forbidden
    assert "fetch(baseUrl() + 'enclave/runs'" in source  # its only request: its own server


NODE_HARNESS = r"""
const fs = require('fs');
const vm = require('vm');
const window = {};
const context = vm.createContext({ window, console, Promise, setTimeout });
vm.runInContext(fs.readFileSync(process.argv[1], 'utf8'), context);
const container = window._JUPYTERLAB['enclave-runs'];
const recorded = { commands: {}, menu: [], keys: [] };
const app = {
  commands: {
    addCommand: (id, options) => { recorded.commands[id] = options.label; },
    addKeyBinding: binding => recorded.keys.push(binding),
    hasCommand: () => false,
  },
  contextMenu: { addItem: item => recorded.menu.push(item) },
  shell: {},
};
(async () => {
  await container.init({ '@jupyterlab/application': {} });
  const factory = await container.get('./extension');
  const module = factory();
  let missing = null;
  try { await container.get('./style'); } catch (error) { missing = String(error.message); }
  const plugins = module.default;
  plugins.forEach(plugin => plugin.activate(app));
  console.log(JSON.stringify({
    esModule: module.__esModule === true,
    plugins: plugins.map(p => ({ id: p.id, autoStart: p.autoStart, requires: p.requires })),
    missing, recorded,
  }));
})().catch(error => { console.error(error); process.exit(1); });
"""


def test_the_container_speaks_module_federation_and_registers_the_command() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing (scripts/setup.sh installs it with the hub's proxy)")
    done = subprocess.run(
        [node, "-e", NODE_HARNESS, str(entry())], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["esModule"] is True
    assert result["plugins"] == [{"id": "enclave-runs:plugin", "autoStart": True, "requires": []}]
    assert "does not exist in container" in result["missing"]
    recorded = result["recorded"]
    assert recorded["commands"] == {"enclave:run-as-batch-job": "Run as batch job / 作为批处理作业运行"}
    selectors = sorted(item["selector"] for item in recorded["menu"])
    assert selectors == ['.jp-DirListing-item[data-file-type="notebook"]', ".jp-Notebook"]
    assert all(item["command"] == "enclave:run-as-batch-job" for item in recorded["menu"])
    (binding,) = recorded["keys"]
    assert binding["keys"] == ["Accel Alt B"] and binding["selector"] == ".jp-Notebook"
