"""What "Request export" may send (``enclave_lockdown.export_files``), on a real folder: the POST's
fields, and only regular files inside the workspace, read from the disk, never one that climbs out,
hides, links out, is a folder, a fifo or too large. The module has no Jupyter import (the vault's
environment has no jupyter_server); it is loaded from its file, with the path checks it shares
(``enclave_lockdown.workspace_paths``). The handlers around it run in the
real analyst image in tests/e2e/test_export_from_lab.py."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "images/analyst/lockdown/enclave_lockdown"
CSV = b"dx,n\nI10,25\n"
CAP = 1024


def load(name: str) -> ModuleType:
    """``enclave_lockdown.<name>`` from its file, without the package (whose __init__ needs Jupyter)."""
    spec = importlib.util.spec_from_file_location(f"enclave_lockdown.{name}", PACKAGE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so that export_files' own import finds it
    spec.loader.exec_module(module)
    return module


load("workspace_paths")
files = load("export_files")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A workspace (home) with a results folder, next to files it must never give out."""
    home = tmp_path / "home"
    (home / "results" / "folder").mkdir(parents=True)
    (home / "results" / "table.csv").write_bytes(CSV)
    (home / ".secret.csv").write_bytes(b"secret")
    (home / ".cache").mkdir()
    (home / ".cache" / "t.csv").write_bytes(b"cached")
    (tmp_path / "outside.csv").write_bytes(b"outside")
    os.symlink(tmp_path / "outside.csv", home / "results" / "escape.csv")
    os.symlink(tmp_path, home / "results" / "up")
    os.symlink(home / ".secret.csv", home / "results" / "hidden-link.csv")
    os.symlink(home / "results" / "table.csv", home / "results" / "alias.csv")
    os.mkfifo(home / "results" / "pipe.csv")
    (home / "results" / "big.csv").write_bytes(b"x" * (CAP + 1))
    return home


def refused(call, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(files.ExportFileError) as caught:
        call()
    error = caught.value
    assert (error.status, error.code) == (status, code)
    assert error.en and error.zh


def test_a_file_of_the_workspace_is_read_from_the_disk(root: Path) -> None:
    assert files.read_file(str(root), "results/table.csv", CAP) == ("table.csv", CSV)
    assert files.read_file(str(root), "/results/table.csv", CAP) == ("table.csv", CSV)
    # A link inside the workspace is its target's bytes under the name the analyst chose.
    assert files.read_file(str(root), "results/alias.csv", CAP) == ("alias.csv", CSV)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("../outside.csv", 400, "export_path_outside_home"),
        ("results/../../outside.csv", 400, "export_path_outside_home"),
        ("results/./table.csv", 400, "export_path_outside_home"),
        ("results//table.csv", 400, "export_path_outside_home"),
        ("results\\..\\..\\outside.csv", 400, "export_path_outside_home"),
        ("results/table.csv\0.png", 400, "export_path_outside_home"),
        ("results/escape.csv", 403, "export_path_outside_home"),
        ("results/up/outside.csv", 403, "export_path_outside_home"),
        (".secret.csv", 403, "export_file_hidden"),
        (".cache/t.csv", 403, "export_file_hidden"),
        ("results/hidden-link.csv", 403, "export_file_hidden"),
        ("results/folder", 400, "export_not_a_file"),
        ("results", 400, "export_not_a_file"),
        ("results/pipe.csv", 400, "export_not_a_file"),
        ("results/missing.csv", 404, "export_file_not_found"),
        ("results/big.csv", 413, "export_file_too_large"),
        ("", 400, "export_path_invalid"),
        ("/", 400, "export_path_invalid"),
        (None, 400, "export_path_invalid"),
        (["results/table.csv"], 400, "export_path_invalid"),
    ],
)
def test_everything_else_is_refused(root: Path, path: object, status: int, code: str) -> None:
    refused(lambda: files.read_file(str(root), path, CAP), status, code)


def test_a_link_swapped_in_after_the_checks_is_not_followed(root: Path, tmp_path: Path) -> None:
    """``real_file`` resolved the path; a link put at the real path before ``open`` is refused."""
    real = files.real_file(str(root), "results/table.csv")
    os.unlink(real)
    os.symlink(tmp_path / "outside.csv", real)
    original = files.real_file
    try:
        files.real_file = lambda _root, _path: real  # the check ran before the swap
        refused(lambda: files.read_file(str(root), "results/table.csv", CAP), 403, "export_file_unreadable")
    finally:
        files.real_file = original


def test_the_root_itself_through_a_link_is_still_the_root(tmp_path: Path, root: Path) -> None:
    linked = tmp_path / "linked-home"
    os.symlink(root, linked)
    assert files.read_file(str(linked), "results/table.csv", CAP) == ("table.csv", CSV)
    refused(lambda: files.read_file(str(linked), "results/escape.csv", CAP), 403, "export_path_outside_home")


def test_the_posts_fields() -> None:
    body = {"path": "results/table.csv", "justification": "  Table 1  ", "revises": "exp-1", "abroad": True}
    assert files.check_body(body) == ("results/table.csv", "Table 1", "exp-1", True)
    assert files.check_body({"path": "a.csv", "justification": "x"}) == ("a.csv", "x", None, False)
    assert files.check_body({"path": "a.csv", "justification": "x", "revises": ""})[2] is None
    for bad, code in [
        (None, "export_request_invalid"),
        ([], "export_request_invalid"),
        ({"path": "a.csv"}, "export_justification_missing"),
        ({"path": "a.csv", "justification": " \n"}, "export_justification_missing"),
        ({"path": "a.csv", "justification": 3}, "export_justification_missing"),
        ({"path": "a.csv", "justification": "x" * 4001}, "export_justification_too_long"),
        ({"path": "a.csv", "justification": "x", "revises": 7}, "export_revises_invalid"),
        ({"path": "a.csv", "justification": "x", "abroad": "yes"}, "export_abroad_invalid"),
    ]:
        refused(lambda bad=bad: files.check_body(bad), 400, code)
