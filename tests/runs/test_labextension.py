"""The hand-written "Run as batch job" labextension, checked without a browser: the files JupyterLab
reads, the module-federation container protocol (run in Node), and that it is installed and
enabled. tests/e2e/test_batch_run_command.py uses it in real JupyterLab and Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.harness import labextensions

NAME = "enclave-runs"


def test_package_json_is_what_jupyterlab_reads() -> None:
    labextensions.check_package_json(NAME)


def test_the_entry_is_named_after_its_content() -> None:
    """JupyterLab caches static/ as immutable for a year: a changed file needs a new name."""
    wanted = labextensions.rehash_module().entry_name(labextensions.entry(NAME).read_bytes())
    assert labextensions.entry(NAME).name == wanted, (
        f"the labextension changed: run `python {labextensions.LABEXTENSIONS / 'rehash.py'}` ({wanted})"
    )


def test_the_distribution_installs_it_where_jupyterlab_looks() -> None:
    labextensions.check_installed(NAME)


def test_the_page_config_neither_disables_nor_locks_it() -> None:
    labextensions.check_page_config(NAME)


def test_the_script_fetches_nothing_and_writes_no_markup() -> None:
    source = labextensions.script(NAME)
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
        [node, "-e", NODE_HARNESS, str(labextensions.entry(NAME))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
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
