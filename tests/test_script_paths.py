"""Every shell script or make fragment the repository names by path exists (issue 15: the image
builds moved from scripts/docker to images/; only start-dockerd.sh stayed there)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NAMED = re.compile(r"\b(?:scripts|images)/[A-Za-z0-9_./-]+\.(?:sh|mk)\b")
SOURCES = ("Makefile", "*.md", "docs/*.md", "images/**/*", "scripts/**/*", "tests/**/*.py", "bench/*.py")


def naming_files() -> list[Path]:
    found = {p for pattern in SOURCES for p in REPO.glob(pattern) if p.is_file()}
    skipped = ("node_modules", "__pycache__", "build")

    def kept(path: Path) -> bool:
        parts = path.relative_to(REPO).parts
        return not any(part in skipped or part.endswith(".egg-info") for part in parts)

    return sorted(filter(kept, found))


def test_every_named_script_exists() -> None:
    missing = {
        f"{path.relative_to(REPO)} names {name}"
        for path in naming_files()
        for name in NAMED.findall(path.read_text(encoding="utf-8", errors="replace"))
        if not (REPO / name).is_file()
    }
    assert missing == set()


def test_the_image_builds_live_under_images() -> None:
    assert sorted(p.name for p in (REPO / "scripts" / "docker").iterdir()) == ["start-dockerd.sh"]
    for name in ("build-base.sh", "build.sh", "images.mk"):
        assert (REPO / "images" / name).is_file()
    assert "include images/images.mk" in (REPO / "Makefile").read_text()
