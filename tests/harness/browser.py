"""Real headless Chromium for the browser tests (Debian's /usr/bin/chromium, never a downloaded one,
driven by Playwright), the screenshots they keep as test artefacts, and the accessibility check:
axe-core from the repository's node_modules/ (``scripts/install-hub.sh``) run inside the page.

axe is sent through the DevTools protocol (``page.evaluate``, into the page and each of its frames),
which the page's Content-Security-Policy does not govern: the page is checked as served, with its real
CSP (no inline script is injected and CSP is not bypassed)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTEFACTS = Path(os.environ.get("ENCLAVE_TEST_ARTEFACTS", "/tmp/enclave-test-artefacts"))
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
# Rules run: WCAG 2.0/2.1 A and AA and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
# axe.run's promise, its result cut down to what a test message needs.
RUN_AXE = """async (tags) => {
  const options = {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"], frameWaitTime: 10000};
  const result = await axe.run(document, options);
  return {
    engine: result.testEngine.name + " " + result.testEngine.version,
    ran: result.violations.length + result.passes.length + result.incomplete.length,
    violations: result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({target: n.target.join(" "), html: n.html.slice(0, 200)})),
    })),
  };
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, one per test module; fails (never skips) when it or Playwright is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright Python package is missing: pip install playwright")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


def hub_login(page: Any, url: str, user: str, password: str = "any password") -> None:
    """Open ``url``, sign in as ``user`` on the hub's login form it leads to, and wait to be sent back
    under ``url``."""
    page.goto(url)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("[type=submit]")
    page.wait_for_url(f"{url}**")


def save_screenshot(page: Any, group: str, name: str) -> Path:
    """A full-page PNG of ``page`` at ARTEFACTS/``group``/``name``.png (the folder made if missing)."""
    path = ARTEFACTS / group / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def accessibility_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """axe-core's violations on ``page`` as it is now whose impact is one of ``impacts``: each with its
    rule ``id``, ``impact``, ``help``, ``helpUrl`` and ``nodes`` (CSS ``target`` and ``html``)."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing ({AXE}): run scripts/install-hub.sh (or make setup)")
    source = AXE.read_text(encoding="utf-8")
    for frame in page.frames:  # axe checks a frame's content with the copy of axe inside that frame
        if frame.is_detached():
            continue
        if not frame.evaluate("() => typeof window.axe?.run === 'function'"):
            frame.evaluate(source)
    result = page.evaluate(RUN_AXE, AXE_TAGS)
    assert result["ran"] > 0, f"axe-core ran no rule on {page.url}: {result}"
    return [v for v in result["violations"] if v["impact"] in impacts]


def describe(violations: list[dict]) -> str:
    """The violations, one per line with the elements that break the rule: for an assertion message."""
    lines = []
    for violation in violations:
        targets = "; ".join(f"{node['target']} {node['html']}" for node in violation["nodes"][:5])
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']} -> {targets}")
    return "\n".join(lines)
