"""Role names live in one module (issue 15): an AST check that no role name is written as a string
literal outside ``enclave/roles.py`` where it means an Enclave role.

A role name is a value of ``Role`` or ``ProjectRole``. The same words mean other things too: a URL
path (``"office"``), a field of a record (``info["steward"]``, ``{"pi": project.pi}``), an actor of a
workflow (``ApplicationActor.OFFICE``, ``RunActor.ANALYST``: who moves an application or a run, not
a role a person holds), a column name, a CLI table header, a label key. So the check flags a literal
only in a role context:

* compared with something about roles: ``"committee" in roles_of(...)``, ``member.role == "pi"``;
* passed as an argument named like a role (``role="pi"``), or to a role function (``has_role``,
  ``check_role``, ``grant``, ``Role(...)``...);
* assigned to, or annotated on, a name about roles (``REQUESTER_ROLES = {...}``, ``role: Literal[...]``),
  or a parameter about roles' default;
* inside ``Literal[...]``, or indexing something about roles (``ROLE_LABELS_ZH["steward"]``);
* a set, list or tuple of role names only (``{"analyst", "pi"}``, ``("security_admin",)``), a
  ``(user, role)`` pair (``(self.pi, "pi")``), a mapping keyed by role names only (two or more);
* a member of another role enum (a class named ``...Role...``).

Database migrations are left out: they are frozen history and must not import today's code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest

from enclave.roles import AccountProjectRole, ProjectRole, Role

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("enclave", "export_review", "hub_config")
HOME = "enclave/roles.py"
SKIPPED = ("enclave/db/migrations/",)  # frozen history (see above)
ROLE_NAMES = frozenset({r.value for r in Role} | {r.value for r in ProjectRole})
# Functions whose string arguments are roles.
ROLE_FUNCTIONS = frozenset(
    {
        "Role",
        "ProjectRole",
        "parse_role",
        "roles_of",
        "has_role",
        "holders",
        "check_role",
        "require",
        "grant",
        "revoke",
        "check_compatible",
        "check_project_member_allowed",
    }
)
# Deliberate exceptions, as "path:line" -> why the literal stays. None today.
EXCEPTIONS: dict[str, str] = {}


def _is_role(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ROLE_NAMES


def _name(node: ast.AST) -> str:
    """The identifier a node is named by: a name, an attribute, a called function."""
    if isinstance(node, ast.Call):
        return _name(node.func)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _about_roles(node: ast.AST) -> bool:
    """Whether an expression is about roles: it names something ``role``, e.g. ``roles_of(...)``,
    ``ProjectMember.role``, ``member.role``, ``REQUESTER_ROLES``."""
    return any("role" in _name(n).lower() for n in ast.walk(node))


def _roles_in(node: ast.AST) -> Iterator[ast.Constant]:
    """The role-name literals in an expression, at any depth."""
    for n in ast.walk(node):
        if _is_role(n):
            assert isinstance(n, ast.Constant)
            yield n


def _only_roles(elements: list[ast.expr | None]) -> bool:
    return bool(elements) and all(e is not None and _is_role(e) for e in elements)


def _flagged(tree: ast.AST) -> Iterator[ast.Constant]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for operand in operands:
                if _is_role(operand) and any(_about_roles(o) for o in operands if o is not operand):
                    yield from _roles_in(operand)
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg and "role" in kw.arg.lower():
                    yield from _roles_in(kw.value)
            if _name(node.func) in ROLE_FUNCTIONS:
                for arg in node.args:
                    yield from _roles_in(arg)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_about_roles(t) for t in targets):
                for part in (node.value, getattr(node, "annotation", None)):
                    if part is not None:
                        yield from _roles_in(part)
        elif isinstance(node, ast.arguments):
            params = [*node.posonlyargs, *node.args]
            pairs = [*zip(params[len(params) - len(node.defaults) :], node.defaults, strict=True)]
            pairs += [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True) if d is not None]
            for param, default in pairs:
                if "role" in param.arg.lower():
                    yield from _roles_in(default)
        elif isinstance(node, ast.Subscript):
            if _name(node.value) == "Literal" or _about_roles(node.value):
                yield from _roles_in(node.slice)
        elif isinstance(node, ast.Set | ast.List | ast.Tuple):
            if _only_roles(list(node.elts)):
                yield from _roles_in(node)
            elif isinstance(node, ast.Tuple) and len(node.elts) == 2 and _is_role(node.elts[1]):
                first = node.elts[0]
                if not (isinstance(first, ast.Constant) and first.value):  # (user, role), ("", role)
                    yield from _roles_in(node.elts[1])
        elif isinstance(node, ast.Dict):
            if len(node.keys) >= 2 and _only_roles(list(node.keys)):
                yield from (k for k in node.keys if isinstance(k, ast.Constant))
        elif isinstance(node, ast.ClassDef) and "role" in node.name.lower():
            for statement in node.body:
                if isinstance(statement, ast.Assign | ast.AnnAssign) and statement.value is not None:
                    yield from _roles_in(statement.value)


def role_literals(source: str, where: str) -> list[str]:
    """Every role-name literal of ``source`` in a role context, as ``where:line: 'name'``, sorted."""
    found = {(c.lineno, c.value) for c in _flagged(ast.parse(source))}
    return [f"{where}:{line}: {value!r}" for line, value in sorted(found)]


def package_files() -> list[Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel != HOME and not rel.startswith(SKIPPED) and "__pycache__" not in path.parts:
                files.append(path)
    return files


def findings() -> list[str]:
    out = []
    for path in package_files():
        out += role_literals(path.read_text(encoding="utf-8"), path.relative_to(REPO).as_posix())
    return out


def _key(finding: str) -> str:
    return finding.split(": ", 1)[0]


def test_no_role_name_literal_outside_the_roles_module() -> None:
    found = [f for f in findings() if _key(f) not in EXCEPTIONS]
    assert not found, "use enclave.roles.Role or ProjectRole:\n" + "\n".join(found)


def test_every_exception_is_still_needed() -> None:
    keys = {_key(f) for f in findings()}
    assert set(EXCEPTIONS) <= keys, sorted(set(EXCEPTIONS) - keys)


@pytest.mark.parametrize(
    "source",
    [
        'if "committee" not in roles_of(session, project, user): pass',
        'ok = member.role == "pi"',
        'query.where(ProjectMember.role == "committee")',
        'ProjectMember(project_id=p, username=u, role="analyst")',
        'has_role(session, user, "steward")',
        'grant(session, user, Role("office"), actor=a)',
        'REQUESTER_ROLES = frozenset({"analyst", "pi"})',
        'class Form:\n    role: Literal["pi", "analyst"]',
        'def add(user, role="analyst"): pass',
        'label = ROLE_LABELS_ZH["steward"]',
        'steps = {4: ("security_admin",)}',
        'pairs = [(self.pi, "pi")] + [(a, "analyst") for a in analysts]',
        'rows = [("", "analyst")]',
        'LABELS = {"pi": ("PI", "负责人"), "analyst": ("analyst", "分析人员")}',
        'class TeamRole(StrEnum):\n    PI = "pi"',
    ],
)
def test_the_check_sees_a_role_literal(source: str) -> None:
    assert role_literals(source, "m.py"), source


@pytest.mark.parametrize(
    "source",
    [
        '"""A steward provisions; the office pre-reviews; the committee votes."""',
        'self.see_other("office")',
        'NAV = (("nav-office", "nav_office", "office", PRE_REVIEW),)',
        'row = {"id": p.id, "pi": p.pi, "committee": members}',
        'who = info["steward"]',
        'table = Table("name", "level", "steward")',
        'class ApplicationActor(StrEnum):\n    OFFICE = "office"\n    COMMITTEE = "committee"',
        'class RunActor(StrEnum):\n    ANALYST = "analyst"',
        'if actor == "analyst": pass',
        'USER = "analyst"',
        'field_validator("analysts", "committee")',
        "ok = ProjectRole.COMMITTEE in roles_of(session, project, user)",
        'spec = {"steward": STEWARD}',
    ],
)
def test_the_check_leaves_other_words_alone(source: str) -> None:
    assert role_literals(source, "m.py") == [], source


def test_the_account_roles_literal_names_project_roles() -> None:
    """``AccountProjectRole`` is the one literal list of role names outside the enums (for pydantic's
    errors): it must stay the PI and analyst roles."""
    assert set(get_args(AccountProjectRole)) == {ProjectRole.PI, ProjectRole.ANALYST}
