"""The hand-written "Request export" labextension (enclave-exports), checked without a browser: the
files JupyterLab reads, its installation, and the module-federation container run in Node with a
fake JupyterLab (a share scope with a stand-in ``Widget``, a minimal DOM, a scripted server): the
command and its file-browser menu item, the panel and its notification when a request changes
state, the project strip and its warning. tests/e2e/test_export_from_lab.py uses it in real
JupyterLab and Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import labextensions

NAME = "enclave-exports"
EXTENSION = labextensions.LABEXTENSIONS / NAME
REHASH = labextensions.LABEXTENSIONS / "rehash.py"


def test_package_json_is_what_jupyterlab_reads() -> None:
    labextensions.check_package_json(NAME)


def test_rehash_names_every_extension_after_its_content() -> None:
    rehash = labextensions.rehash_module()
    assert [p.name for p in rehash.extensions()] == ["enclave-exports", "enclave-runs"]
    for extension in rehash.extensions():
        data = json.loads((extension / "package.json").read_text(encoding="utf-8"))
        current = extension / data["jupyterlab"]["_build"]["load"]
        wanted = rehash.entry_name(current.read_bytes())
        assert current.name == wanted, f"{extension.name} changed: run `python {REHASH}`"


def test_rehash_renames_an_edited_entry_and_points_package_json_at_it(tmp_path: Path) -> None:
    rehash = labextensions.rehash_module()
    copy = tmp_path / "enclave-exports"
    shutil.copytree(EXTENSION, copy)
    (old,) = (copy / "static").iterdir()
    old.write_text(old.read_text(encoding="utf-8") + "\n// edited\n", encoding="utf-8")
    new = rehash.rehash(copy)
    assert new.name != old.name and not old.exists() and new.exists()
    assert (
        json.loads((copy / "package.json").read_text())["jupyterlab"]["_build"]["load"]
        == f"static/{new.name}"
    )


def test_the_distribution_installs_it_where_jupyterlab_looks() -> None:
    labextensions.check_installed(NAME)


def test_the_page_config_neither_disables_nor_locks_it() -> None:
    labextensions.check_page_config(NAME)


def test_the_script_fetches_nothing_else_and_writes_no_markup() -> None:
    source = labextensions.script(NAME)
    assert source.count("fetch(") == 1 and "fetch(baseUrl() + route" in source  # its own server only
    for route in ("'enclave/exports'", "'enclave/workspace'"):
        assert route in source


NODE_HARNESS = r"""
const fs = require('fs');
const vm = require('vm');
function makeNode(tag) {
  const node = {
    tag, children: [], attrs: {}, style: {}, className: '', options: [], ownText: '',
    appendChild(child) {
      this.children.push(child);
      if (tag === 'select') this.options.push(child);
      return child;
    },
    setAttribute(key, value) { this.attrs[key] = String(value); },
    getAttribute(key) { return this.attrs[key]; },
    addEventListener() {},
  };
  Object.defineProperty(node, 'textContent', {  // as in a browser: setting it drops the children
    get() { return this.ownText; },
    set(value) { this.ownText = String(value); this.children = []; },
  });
  return node;
}
function text(node) { return node.textContent + node.children.map(text).join(' '); }
function find(node, test) {
  if (test(node)) return node;
  for (const child of node.children) { const found = find(child, test); if (found) return found; }
  return null;
}
const document = {
  createElement: makeNode, getElementById: () => null, cookie: '_xsrf=abc', body: makeNode('body'),
};
const calls = [];
const scripted = JSON.parse(process.argv[2]);
let listed = 0;
function fetch(url, init) {
  calls.push({ url, method: init.method, xsrf: init.headers['X-XSRFToken'] || null });
  let answer;
  if (url === '/user/bob/enclave/workspace') answer = scripted.workspace;
  else answer = { requests: scripted.lists[Math.min(listed++, scripted.lists.length - 1)] };
  return Promise.resolve({ ok: true, status: 200, text: () => Promise.resolve(JSON.stringify(answer)) });
}
const timers = [];
const window = {};
const context = vm.createContext({
  window, document, fetch, console, Promise, JSON,
  setTimeout: (fn, ms) => timers.push(ms), setInterval: (fn, ms) => timers.push(ms),
});
document.getElementById = id => id === 'jupyter-config-data'
  ? { textContent: JSON.stringify({ baseUrl: '/user/bob/' }) } : null;
vm.runInContext(fs.readFileSync(process.argv[1], 'utf8'), context);
class Widget {
  constructor() { this.node = makeNode('div'); this.title = {}; this.classes = []; }
  addClass(name) { this.classes.push(name); }
  get isVisible() { return true; }
}
const scope = {
  '@lumino/widgets': { '2.5.0': { loaded: 1, get: () => Promise.resolve(() => ({ Widget })) } },
};
const recorded = { commands: {}, menu: [], added: [], notified: [] };
const app = {
  commands: {
    addCommand: (id, options) => { recorded.commands[id] = options.label; },
    hasCommand: id => id === 'apputils:notify',
    execute: (id, args) => { recorded.notified.push([args.message, args.type]); return Promise.resolve(); },
  },
  contextMenu: { addItem: item => recorded.menu.push(item) },
  shell: { add: (widget, area, options) => recorded.added.push({ widget, area, options }) },
};
const settle = () => new Promise(resolve => setImmediate(resolve));
(async () => {
  const container = window._JUPYTERLAB['enclave-exports'];
  await container.init(scope);
  const module = (await container.get('./extension'))();
  const plugins = module.default;
  plugins.forEach(plugin => plugin.activate(app));
  for (let i = 0; i < 5; i++) await settle();
  const panel = recorded.added.find(a => a.area === 'left').widget;
  const strip = recorded.added.find(a => a.area === 'top').widget;
  const before = recorded.notified.length;
  panel.onAfterShow();
  for (let i = 0; i < 5; i++) await settle();
  const item = find(panel.node, n => n.tag === 'li');
  console.log(JSON.stringify({
    plugins: plugins.map(p => ({ id: p.id, autoStart: p.autoStart, requires: p.requires })),
    commands: recorded.commands,
    menu: recorded.menu.map(m => ({ command: m.command, selector: m.selector })),
    areas: recorded.added.map(a => [a.area, a.widget.id]),
    panel: { label: panel.title.label, caption: panel.title.caption, role: panel.node.attrs.role,
             aria: panel.node.attrs['aria-label'] },
    item: item && { state: item.attrs['data-state'], id: item.attrs['data-request-id'], text: text(item) },
    notifiedBefore: recorded.notified.slice(0, before),
    notifiedAfter: recorded.notified.slice(before),
    strip: { warning: strip.node.attrs['data-warning'], role: strip.node.attrs.role, text: text(strip.node) },
    calls, timers,
  }));
})().catch(error => { console.error(error); process.exit(1); });
"""


def run_harness(workspace: dict, lists: list[list[dict]]) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing (scripts/setup.sh installs it with the hub's proxy)")
    scripted = json.dumps({"workspace": workspace, "lists": lists})
    done = subprocess.run(
        [node, "-e", NODE_HARNESS, str(labextensions.entry(NAME)), scripted],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


WORKSPACE = {
    "project": "cardio-2026",
    "title": "Cardio <b>study</b>",
    "access": "aggregate",
    "state": "active",
    "period_end": "2026-12-01",
    "days_left": 3,
}


def row(state: str) -> dict:
    return {
        "id": "exp-00000000000000a1",
        "state": state,
        "version": 1,
        "files": 1,
        "updated_at": "2026-11-26",
    }


def test_the_container_registers_the_command_panel_and_strip() -> None:
    result = run_harness(WORKSPACE, [[row("in_review")], [row("approved")]])
    assert result["plugins"] == [{"id": "enclave-exports:plugin", "autoStart": True, "requires": []}]
    assert result["commands"]["enclave:request-export"] == "Request export / 申请导出"
    assert result["menu"] == [
        {"command": "enclave:request-export", "selector": '.jp-DirListing-item[data-isdir="false"]'}
    ]
    assert sorted(result["areas"]) == [["left", "enclave-exports-panel"], ["top", "enclave-workspace-strip"]]
    panel = result["panel"]
    assert panel["role"] == "region" and panel["aria"] == "Export requests / 导出申请"
    assert panel["label"] == "Export requests / 导出申请"  # no icon in the fake share scope: the label
    # Every request goes to the page's own server; the GETs carry the xsrf cookie back, as JupyterLab does.
    assert {c["url"] for c in result["calls"]} == {"/user/bob/enclave/exports", "/user/bob/enclave/workspace"}
    assert all(c["method"] == "GET" and c["xsrf"] == "abc" for c in result["calls"])
    assert 10000 in result["timers"]  # it polls every 10 s while the panel is visible


def test_a_state_change_is_notified_once_and_shown_in_the_panel() -> None:
    result = run_harness(WORKSPACE, [[row("in_review")], [row("approved")]])
    assert result["notifiedBefore"] == []  # the first list is what is; nothing changed yet
    assert result["notifiedAfter"] == [
        ["Export request / 导出申请 exp-00000000000000a1: approved / 已批准", "success"]
    ]
    assert result["item"]["state"] == "approved" and result["item"]["id"] == "exp-00000000000000a1"
    assert "approved / 已批准" in result["item"]["text"]
    unchanged = run_harness(WORKSPACE, [[row("in_review")], [row("in_review")]])
    assert unchanged["notifiedAfter"] == []


def test_the_strip_shows_the_project_and_warns_in_the_last_week() -> None:
    warned = run_harness(WORKSPACE, [[]])
    strip = warned["strip"]
    assert strip["role"] == "region" and strip["warning"] == "true"
    for text in (
        "cardio-2026",
        "Cardio <b>study</b>",
        "仅限汇总",
        "Ends soon / 即将结束: 3 days left",
        "剩余 3 天",
    ):
        assert text in strip["text"], strip
    calm = run_harness({**WORKSPACE, "days_left": 8, "access": "rows"}, [[]])["strip"]
    assert calm["warning"] == "false" and "行级数据" in calm["text"] and "8 days left" in calm["text"]
    assert "Ends soon" not in calm["text"]
    one = run_harness({**WORKSPACE, "days_left": 1}, [[]])["strip"]
    assert "1 day left" in one["text"] and "剩余 1 天" in one["text"]
    ended = run_harness({**WORKSPACE, "days_left": -2}, [[]])["strip"]
    assert ended["warning"] == "true" and "已于 2026-12-01 结束" in ended["text"]
