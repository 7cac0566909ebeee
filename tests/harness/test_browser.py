"""The browser harness: axe-core really runs inside a page served with the services' own strict
Content-Security-Policy (which stays in force), finds what is broken, passes what is not, fails loudly
when axe-core is missing; screenshots land under the artefacts folder."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from enclave.services.handlers import CSP
from tests.harness import browser as harness
from tests.harness.browser import accessibility_violations, browser, describe, save_screenshot  # noqa: F401

# An image without alt text, an input and a select without label, and an inline script the CSP blocks.
BAD = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bad</title></head>
<body><main><h1>Bad</h1><img src="/missing.png"><form><input name="q"><select name="s"><option>a</option>
</select></form><script>document.title = "the inline script ran";</script></main></body></html>"""
GOOD = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>good</title></head>
<body><main><h1>Good</h1><img src="/missing.png" alt="A chart"><form><label for="q">Search</label>
<input id="q" name="q"></form></main></body></html>"""
# The bad page inside a frame (here the CSP lets the two pages frame and be framed by their own origin).
FRAMED = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>framed</title></head>
<body><main><h1>Framed</h1><iframe src="/inner" title="The bad page"></iframe></main></body></html>"""
PAGES = {"/bad": BAD, "/good": GOOD, "/framed": FRAMED, "/inner": BAD}
FRAMING = {
    "/framed": f"{CSP}; frame-src 'self'",
    "/inner": CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'"),
}


class Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path, "").encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Security-Policy", FRAMING.get(self.path, CSP))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_axe_finds_the_broken_page_under_the_real_csp(site: str, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    page = browser.new_page()
    page.goto(f"{site}/bad")
    assert page.title() == "bad"  # the page's CSP is in force: its inline script did not run
    violations = accessibility_violations(page)
    found = {v["id"] for v in violations}
    assert {"image-alt", "label", "select-name"} <= found, describe(violations)
    assert all(v["impact"] in ("serious", "critical") for v in violations)
    image = next(v for v in violations if v["id"] == "image-alt")
    assert image["nodes"][0]["target"] == "img" and "missing.png" in image["nodes"][0]["html"]
    assert "[critical] image-alt" in describe(violations)
    assert accessibility_violations(page, impacts=()) == []  # the impact filter
    assert page.title() == "bad"
    page.close()


def test_axe_passes_the_good_page(site: str, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    page = browser.new_page()
    page.goto(f"{site}/good")
    violations = accessibility_violations(page, impacts=("minor", "moderate", "serious", "critical"))
    assert violations == [], describe(violations)
    page.close()


def test_axe_looks_inside_frames(site: str, browser) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    page = browser.new_page()
    page.goto(f"{site}/framed")
    page.frame_locator("iframe").locator("h1").wait_for()
    violations = accessibility_violations(page)
    image = next((v for v in violations if v["id"] == "image-alt"), None)
    assert image is not None, describe(violations)
    assert image["nodes"][0]["target"] == "iframe img"  # axe names the frame, then the element in it
    page.close()


def test_a_missing_axe_core_fails_and_says_how_to_install_it(
    site: str,
    browser,  # type: ignore[no-untyped-def]  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(harness, "AXE", tmp_path / "axe.min.js")
    page = browser.new_page()
    page.goto(f"{site}/bad")
    with pytest.raises(pytest.fail.Exception, match=r"axe-core is missing.*install-hub\.sh"):
        accessibility_violations(page)
    page.close()


def test_a_screenshot_is_a_full_page_png_under_the_artefacts(
    site: str,
    browser,  # type: ignore[no-untyped-def]  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(harness, "ARTEFACTS", tmp_path / "artefacts")
    page = browser.new_page()
    page.goto(f"{site}/good")
    path = save_screenshot(page, "harness", "good")
    assert path == tmp_path / "artefacts" / "harness" / "good.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    page.close()
