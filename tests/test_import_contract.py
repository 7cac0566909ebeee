"""Dependencies point one way (issue 15, ARCHITECTURE §1 and §7): a small AST check of every import.

Each rule names the files it covers, the packages they may not import, and the exceptions that are
still there, each with its reason. A new forbidden import fails here; removing an exception's
import without removing the exception fails too, so the list only shrinks.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Rule:
    name: str
    files: tuple[str, ...]  # globs under the repository
    forbidden: tuple[str, ...]  # module prefixes
    lazy_allowed_in: tuple[str, ...] = ()  # globs where an import inside a function is allowed
    exceptions: dict[str, str] = field(default_factory=dict)  # "file:module" -> why it is still there


COMPOSITION = ("enclave/cli/*.py", "enclave/runs/compose.py", "enclave/console/context.py")

RULES = [
    Rule(
        "the workspace image's code never imports the vault",
        ("images/analyst/**/*.py",),
        ("enclave", "export_review", "hub_config", "tests"),
    ),
    Rule(
        "the vault package reaches the hub's Docker and Kubernetes side only from composition roots",
        ("enclave/**/*.py",),
        ("hub_config",),
        lazy_allowed_in=COMPOSITION,
    ),
    Rule(
        "the vault package does not depend on the export-review service",
        ("enclave/**/*.py",),
        ("export_review",),
        lazy_allowed_in=(*COMPOSITION, "enclave/audit_checkpoints.py"),
    ),
    Rule(
        "the shared hub-service base knows no particular service",
        ("enclave/services/**/*.py",),
        (
            "enclave.gateway",
            "enclave.console",
            "enclave.runs.app",
            "enclave.runs.web",
            "export_review",
            "hub_config",
        ),
    ),
    Rule(
        "export review uses the shared service base, never the gateway's code",
        ("export_review/**/*.py",),
        ("enclave.gateway", "hub_config"),
    ),
    Rule(
        "the query service is the gateway's core, not a part of the gateway",
        ("enclave/query_service.py",),
        ("enclave.gateway",),
    ),
    Rule(
        "batch runs' domain modules do not know their service, Docker or export review",
        ("enclave/runs/*.py",),
        (
            "enclave.gateway",
            "enclave.console",
            "export_review",
            "hub_config",
            "enclave.runs.app",
            "enclave.runs.web",
        ),
        lazy_allowed_in=("enclave/runs/compose.py",),
        exceptions={"enclave/runs/app.py:enclave.runs.web": "the service assembles its own routes"},
    ),
    Rule(
        "the disclosure ledger does not import preparation (preparation records into the ledger)",
        ("enclave/ledger.py",),
        ("enclave.prepare", "enclave.deid.prepare"),
    ),
]


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at top level) for every absolute import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top))
            found += [(f"{node.module}.{alias.name}", id(node) in top) for alias in node.names]
    return found


def matches(module: str, prefixes: tuple[str, ...]) -> str | None:
    return next((p for p in prefixes if module == p or module.startswith(p + ".")), None)


def files_of(globs: tuple[str, ...]) -> list[Path]:
    return sorted({p for g in globs for p in REPO.glob(g) if "__pycache__" not in p.parts})


def violations(rule: Rule) -> set[str]:
    lazy_ok = set(files_of(rule.lazy_allowed_in))
    found = set()
    for path in files_of(rule.files):
        for module, top_level in imports(path):
            prefix = matches(module, rule.forbidden)
            if prefix is None or (not top_level and path in lazy_ok):
                continue
            found.add(f"{path.relative_to(REPO)}:{_exception_key(module, rule)}")
    return found


def _exception_key(module: str, rule: Rule) -> str:
    """The module as an exception names it (the longest named prefix), else the module itself."""
    named = [key.split(":", 1)[1] for key in rule.exceptions]
    return next(
        (n for n in sorted(named, key=len, reverse=True) if module == n or module.startswith(n + ".")), module
    )


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_no_forbidden_import(rule: Rule) -> None:
    found = violations(rule)
    assert found <= set(rule.exceptions), sorted(found - set(rule.exceptions))


@pytest.mark.parametrize("rule", [r for r in RULES if r.exceptions], ids=lambda r: r.name)
def test_every_exception_is_still_needed(rule: Rule) -> None:
    assert set(rule.exceptions) <= violations(rule), sorted(set(rule.exceptions) - violations(rule))


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The check itself: a top-level import is caught, an import inside a function is told apart."""
    module = tmp_path / "m.py"
    module.write_text("import hub_config.batch\n\ndef f():\n    from export_review import voting\n")
    assert imports(module) == [
        ("hub_config.batch", True),
        ("export_review", False),
        ("export_review.voting", False),
    ]
