"""The test folders mirror the code folders (issue 15 item 6): the tests of ``enclave/guard/`` are in
``tests/guard/``, those of ``export_review/`` in ``tests/export_review/``, and so on. The only other
folders are the ones that test no single folder: the shared harness, the Docker end-to-end tests and
the soak test."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"

# Code roots whose folders the test folders mirror, and where each one's tests go.
CODE_ROOTS = {"enclave": TESTS, "export_review": TESTS / "export_review", "hub_config": TESTS / "hub_config"}
OTHER_MIRRORED = ("deploy", "images")  # top-level folders mirrored as tests/deploy, tests/images
CROSS_CUTTING = {"harness", "e2e", "soak"}
TEST_DATA = {"fixtures", "redteam"}  # folders of test data, not of tests
SKIPPED = {"__pycache__", "node_modules"}


def folders(root: Path, skip: set[str] = SKIPPED) -> set[str]:
    """The sub-folders of ``root`` (relative paths), at any depth, without ``skip``."""
    found = set()
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.is_dir() and not set(relative.parts) & skip:
            found.add(relative.as_posix())
    return found


def code_folders() -> set[str]:
    """Every folder a test folder may be named after, as the test folder's path under tests/."""
    mirrored = {
        (test_root.relative_to(TESTS) / sub).as_posix().lstrip("./")
        for code_root, test_root in CODE_ROOTS.items()
        for sub in folders(REPO / code_root) | {"."}
    }
    for top in OTHER_MIRRORED:
        mirrored |= {top} | {f"{top}/{sub}" for sub in folders(REPO / top)}
    return {m for m in mirrored if m}


def test_every_test_folder_is_named_after_a_code_folder() -> None:
    test_folders = {f for f in folders(TESTS, SKIPPED | TEST_DATA) if f.split("/")[0] not in CROSS_CUTTING}
    strays = test_folders - code_folders()
    assert not strays, f"test folders with no code folder of the same name: {sorted(strays)}"


def test_the_layout_check_would_find_a_stray_folder() -> None:
    mirrored = code_folders()
    assert "deid" in mirrored and "export_review/web" in mirrored and "deploy/k8s" in mirrored
    assert "k8s" not in mirrored and "export_review/web_ui" not in mirrored


def test_every_data_file_of_the_packages_is_installed() -> None:
    """A template or static file that no package-data glob names is missing from an installed wheel."""
    import tomllib

    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    missing = []
    for package, patterns in globs.items():
        for path in (REPO / package).rglob("*"):
            if path.is_dir() or path.suffix in {".py", ".pyc"} or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(REPO / package)
            if not any(relative.match(pattern) for pattern in patterns):
                missing.append(f"{package}/{relative}")
    assert set(globs) == {"enclave", "export_review", "hub_config"}
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
