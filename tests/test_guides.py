"""The user guides' examples run (issue 16, item 6; Datasette checks its docs this way), so the guides
cannot drift from the code.

Every fenced block of ``docs/analyst.md``, ``docs/reviewer.md`` and ``docs/steward.md`` is one of:

* ``console``: ``$ enclave ...`` lines run in order through the CLI in-process, on the demo's home
  (``scripts/demo.sh`` up to the provisioned ``demo-cardio``); each must exit 0, or N with
  ``console exit=N``. Other lines are the documented output: each must match a line of the output,
  ``...`` standing for anything. ``REQUEST`` and ``APP`` are replaced by the newest export request's
  id and the demo application's id. The guides run in the order analyst, reviewer, steward.
* ``python``: run in one namespace per guide, with ``ENCLAVE_TWIN_DB`` naming the demo project's twin.
* ``console no-run: REASON`` / ``python no-run: REASON``: not run, but the reason is required, each
  command must parse against the CLI (so a removed command or option fails), and Python must compile
  and name only what ``enclave_client`` has.
* ``text``: no commands.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import enclave_client
import pytest
import typer.core
import typer.main
from typer.testing import CliRunner

from enclave.cli import app
from enclave.prepare.layout import TWIN_DB

REPO = Path(__file__).resolve().parents[1]
GUIDES = ("analyst", "reviewer", "steward")  # the order they run in: the reviewer reviews bob's export
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.S | re.M)
KINDS = ("console", "python", "text")
runner = CliRunner()
# Typer parses with its own copy of click; its UsageError (unknown command or option, missing argument)
# is the base of the BadParameter it exports.
UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


@dataclass
class Block:
    guide: str
    kind: str
    info: str  # what follows the kind on the fence line
    body: str
    line: int

    @property
    def no_run(self) -> str | None:
        """The reason it is not run, or None when it runs."""
        match = re.match(r"no-run:\s*(.*)", self.info)
        return match.group(1).strip() if match else None

    @property
    def exit_code(self) -> int:
        match = re.match(r"exit=(\d+)$", self.info)
        return int(match.group(1)) if match else 0

    def where(self) -> str:
        return f"docs/{self.guide}.md:{self.line}"


def blocks(guide: str, text: str | None = None) -> list[Block]:
    text = (REPO / "docs" / f"{guide}.md").read_text(encoding="utf-8") if text is None else text
    found = []
    for match in FENCE.finditer(text):
        kind, _, info = match.group(1).strip().partition(" ")
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(guide, kind, info.strip(), match.group(2), line))
    return found


def commands(block: Block) -> list[tuple[list[str], list[str]]]:
    """Each ``$ enclave`` command of a console block (``\\`` continues a line) with its output lines."""
    steps: list[tuple[list[str], list[str]]] = []
    lines = iter(block.body.splitlines())
    for line in lines:
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + next(lines)
            args = shlex.split(command)
            assert args[0] == "enclave", f"{block.where()}: only enclave commands run here: {command}"
            steps.append((args[1:], []))
        elif line.strip():
            assert steps, f"{block.where()}: output before any command: {line}"
            steps[-1][1].append(line.strip())
    return steps


def parse_only(args: list[str]) -> None:
    """Parse a command line against the CLI without running it: unknown commands, options, missing
    arguments raise ``UsageError``."""
    command = typer.main.get_command(app)
    name, parent = "enclave", None
    while True:
        assert command is not None, f"no command {name}"
        ctx = command.make_context(name, list(args), parent=parent)
        if not isinstance(command, typer.core.TyperGroup):
            return
        rest = [*ctx._protected_args, *ctx.args]
        name, command, args = command.resolve_command(ctx, rest)
        parent = ctx


def output_matches(expected: str, output: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.search(pattern, output, re.M) is not None


# --- the guides' shape, without the demo --------------------------------------------------------


@pytest.mark.parametrize("guide", GUIDES)
def test_every_block_is_a_known_kind_and_every_skip_says_why(guide: str) -> None:
    found = blocks(guide)
    assert any(b.kind == "console" and b.no_run is None for b in found), "a guide without a run example"
    for block in found:
        assert block.kind in KINDS, f"{block.where()}: ```{block.kind} is neither run nor allowed"
        if block.info.startswith("no-run"):
            assert block.no_run, f"{block.where()}: a no-run block must say why (no-run: REASON)"
        else:
            assert block.info == "" or (block.kind == "console" and block.exit_code), block.where()
        if block.kind == "text":
            assert "$ enclave" not in block.body, f"{block.where()}: commands belong in a console block"


@pytest.mark.parametrize("guide", GUIDES)
def test_every_command_parses_against_the_cli(guide: str) -> None:
    """Run or not, a documented command whose command or option is gone fails here."""
    for block in blocks(guide):
        if block.kind == "console":
            for args, _ in commands(block):
                try:
                    parse_only([placeholder_free(a) for a in args])
                except UsageError as error:
                    pytest.fail(f"{block.where()}: enclave {shlex.join(args)}: {error}")


@pytest.mark.parametrize("guide", GUIDES)
def test_python_that_is_not_run_compiles_and_names_the_client(guide: str) -> None:
    """``import enclave_client as enclave``, ``from enclave_client import runs``, ``db = connect()``:
    every attribute used on them exists."""
    owners = {
        "enclave": enclave_client,
        "enclave_client": enclave_client,
        "db": enclave_client.Connection,
        "runs": enclave_client.runs,
    }
    for block in blocks(guide):
        if block.kind != "python" or block.no_run is None:
            continue
        tree = ast.parse("\n".join(line for line in block.body.splitlines() if not line.startswith("%")))
        for node in ast.walk(tree):
            used = []
            if isinstance(node, ast.ImportFrom) and node.module == "enclave_client":
                used = [("enclave_client", alias.name) for alias in node.names]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                used = [(node.value.id, node.attr)] if node.value.id in owners else []
            for owner, name in used:
                assert hasattr(owners[owner], name), f"{block.where()}: {owner}.{name} does not exist"


def test_the_checks_catch_a_removed_command_and_a_missing_reason() -> None:
    """The checks above can fail: a command or option that does not exist, and a skip without a reason."""
    with pytest.raises(UsageError):
        parse_only(["export", "approve", "exp-0"])
    with pytest.raises(UsageError):
        parse_only(["export", "vote", "exp-0", "approve", "--user", "carol", "--blind"])
    with pytest.raises(UsageError):
        parse_only(["project", "suspend", "demo-cardio"])  # --reason is required
    parse_only(["project", "suspend", "demo-cardio", "--reason", "x"])
    (block,) = blocks("x", "```python no-run:\nimport x\n```\n")
    assert block.info.startswith("no-run") and not block.no_run
    assert output_matches("...exp-...", "request exp-0123 submitted")
    assert not output_matches("...exp-...", "request 0123 submitted")


@pytest.mark.parametrize("guide", GUIDES)
def test_the_guide_is_in_english_and_chinese_and_its_links_resolve(guide: str) -> None:
    text = (REPO / "docs" / f"{guide}.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)
    for section in sections:
        prose = FENCE.sub("", section)
        assert re.search(r"[\u4e00-\u9fff]", prose), f"{guide}: a section without Chinese: {section[:60]}"
        assert re.search(r"[A-Za-z]{4,} [a-z]{3,}", prose), f"{guide}: a section without English"
    for target, anchor in re.findall(r"\]\(((?:\.\./)?[\w./-]+\.md)(?:#([^)]+))?\)", text):
        path = (REPO / "docs" / target).resolve()
        assert path.is_file(), f"{guide}: broken link {target}"
        if anchor:
            slugs = {slug(line.lstrip("#")) for line in path.read_text(encoding="utf-8").splitlines()}
            assert anchor in slugs, f"{guide}: no heading #{anchor} in {target}"


def test_the_readme_links_the_guides() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for guide in GUIDES:
        assert f"](docs/{guide}.md)" in readme


def slug(heading: str) -> str:
    """GitHub's anchor for a heading (as ``enclave_client.guide.slug``)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def placeholder_free(arg: str) -> str:
    return {"REQUEST": "exp-0000000000000000", "APP": "app-0000000000000000"}.get(arg, arg)


# --- the examples, run on the demo ------------------------------------------------------------


def _demo_check() -> ModuleType:
    """``scripts/demo_check.py``, which builds the demo (shared with tests/test_demo_cli.py)."""
    if "demo_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("demo_check", REPO / "scripts" / "demo_check.py")
        assert spec and spec.loader
        sys.modules["demo_check"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["demo_check"]


demo_check = _demo_check()


@dataclass
class World:
    root: Path  # the working folder: data/ from the demo, files the guides name
    home: Path
    ran: list[str] = field(default_factory=list)

    def cli(self, *args: str) -> tuple[int, str]:
        result = runner.invoke(
            app, ["--home", str(self.home), *args], env={"ENCLAVE_DATABASE_URL": "", "COLUMNS": "200"}
        )
        return result.exit_code, result.output

    def cli_json(self, *args: str) -> object:
        code, output = self.cli(*args, "--json")
        assert code == 0, output
        return json.loads(output)

    def placeholders(self) -> dict[str, str]:
        requests = self.cli_json("export", "list", "--project", "demo-cardio")
        project = self.cli_json("project", "show", "demo-cardio")
        assert isinstance(requests, list) and isinstance(project, dict)
        newest = max(requests, key=lambda r: r["created_at"])["id"] if requests else "exp-none"
        return {"REQUEST": newest, "APP": project["application"]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("guides")
    try:
        home = demo_check.run_demo_setup(root, patients=600)
    except demo_check.CheckFailed as error:
        pytest.fail(str(error))
    world = World(root=root, home=home)
    # table1.csv, the table the analyst guide exports: written in the workspace from a query.
    code, output = world.cli(
        "query", "--project", "demo-cardio", "--user", "bob", "--json",
        "SELECT department, count(DISTINCT pid) AS patients FROM visits GROUP BY department ORDER BY 1",
    )  # fmt: skip
    assert code == 0, output
    answer = json.loads(output)
    with (root / "table1.csv").open("w", newline="") as out:
        csv.writer(out).writerows([answer["columns"], *answer["rows"]])
    return world


def run_guide(world: World, guide: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a guide's examples once (and those of the guides before it, whose state it uses)."""
    for earlier in GUIDES[: GUIDES.index(guide)]:
        if earlier not in world.ran:
            run_guide(world, earlier, monkeypatch)
    if guide in world.ran:
        return
    world.ran.append(guide)
    monkeypatch.chdir(world.root)
    twin = next((world.home / "vault" / "projects" / "demo-cardio").rglob(TWIN_DB))  # its built twin
    monkeypatch.setenv("ENCLAVE_TWIN_DB", str(twin))
    namespace: dict[str, object] = {}
    for block in blocks(guide):
        if block.no_run is not None or block.kind == "text":
            continue
        if block.kind == "python":
            exec(compile(block.body, block.where(), "exec"), namespace)  # the guide's own example
            continue
        for args, expected in commands(block):
            if {"REQUEST", "APP"} & set(args):
                values = world.placeholders()
                args = [values.get(arg, arg) for arg in args]
            code, output = world.cli(*args)
            shown = f"{block.where()}: enclave {shlex.join(args)} exited {code}:\n{output}"
            assert code == block.exit_code, shown
            for line in expected:
                assert output_matches(line, output), f"{shown}\nthe guide shows: {line}"


@pytest.mark.slow
@pytest.mark.parametrize("guide", GUIDES)
def test_the_guide_runs_on_the_demo(world: World, guide: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run_guide(world, guide, monkeypatch)
    assert guide in world.ran
