"""The preview sanitisers under attack: SVGs and HTML that try to run script, load anything from
elsewhere, or read files through XML entities come out inert, or are refused."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from enclave.errors import BadInput
from export_review.web.sanitise import render_markdown, sanitise_html, sanitise_svg

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'width="40" height="20">{}</svg>'
)
ACTIVE = re.compile(
    r"<script|\son[a-z]+\s*=|javascript:|foreignObject|<iframe|<image|http:|https:|data:", re.I
)


def clean(body: str) -> str:
    out = sanitise_svg(SVG.format(body).encode()).decode()
    ET.fromstring(out.split("?>", 1)[1])  # still well-formed XML
    return out


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(document.cookie)</script>",
        '<script xlink:href="http://evil.example/x.js"/>',
        '<rect width="5" height="5" onload="alert(1)" onclick="alert(2)" ONMOUSEOVER="alert(3)"/>',
        '<a xlink:href="javascript:alert(1)"><rect width="5" height="5"/></a>',
        '<a href="javascript:alert(1)"><text>click</text></a>',
        '<use xlink:href="javascript:alert(1)"/>',
        '<use href="http://evil.example/sprites.svg#icon"/>',
        '<foreignObject width="10" height="10"><body xmlns="http://www.w3.org/1999/xhtml">'
        '<iframe src="http://evil.example"/></body></foreignObject>',
        '<image href="http://evil.example/beacon.png" width="1" height="1"/>',
        '<image xlink:href="data:image/svg+xml;base64,PHN2Zy8+" width="1" height="1"/>',
        '<rect width="5" height="5" fill="url(http://evil.example/p.svg#g)"/>',
        '<rect width="5" height="5" style="fill: url(\'https://evil.example/x\')"/>',
        "<style>@import url(http://evil.example/x.css); rect { fill: red }</style>",
        "<style>rect { background: url(http://evil.example/beacon) }</style>",
        '<animate attributeName="href" to="javascript:alert(1)"/>',
        '<set attributeName="onclick" to="alert(1)"/>',
        '<iframe xmlns="http://www.w3.org/1999/xhtml" src="http://evil.example"/>',
    ],
)
def test_active_or_external_svg_content_is_removed(attack: str) -> None:
    out = clean(attack + '<rect id="kept" width="1" height="1"/>').replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    assert not ACTIVE.search(out), out
    assert 'id="kept"' in out and "evil" not in out and "alert" not in out


def test_drawing_survives_sanitising() -> None:
    body = (
        '<defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient></defs>'
        "<style>rect { stroke: black }</style>"
        '<g transform="translate(1,1)"><rect width="5" height="5" fill="url(#g)"/>'
        '<path d="M0 0 L5 5" stroke="red"/><use xlink:href="#g"/></g>'
        '<text x="1" y="10" font-size="8">n = <tspan>25</tspan> & more</text>'
    )
    out = clean(body.replace("& more", "&amp; more"))
    for kept in (
        'fill="url(#g)"',
        'href="#g"',
        "<tspan>25</tspan>",
        "rect { stroke: black }",
        'd="M0 0 L5 5"',
    ):
        assert kept in out, out
    assert "&amp; more" in out


@pytest.mark.parametrize(
    "document",
    [
        # billion laughs
        '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><svg xmlns="http://www.w3.org/2000/svg"><text>&c;</text></svg>',
        # XXE: an external entity reading a local file
        '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>',
        # an external DTD
        '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://evil.example/svg11.dtd">'
        '<svg xmlns="http://www.w3.org/2000/svg"/>',
        "<svg xmlns='http://www.w3.org/2000/svg'><unclosed></svg>",
        '<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>',
        "<svg><text>no namespace: not an SVG a browser renders</text></svg>",
    ],
)
def test_entities_doctypes_and_non_svg_are_refused(document: str) -> None:
    with pytest.raises(BadInput) as refused:
        sanitise_svg(document.encode())
    assert refused.value.code == "export_svg_unsafe" and refused.value.message_zh


def test_too_many_elements_are_refused() -> None:
    with pytest.raises(BadInput):
        sanitise_svg(SVG.format("<g/>" * 30_000).encode())


@pytest.mark.parametrize(
    ("attack", "left"),
    [
        ("<p>hi<script>alert(1)</script></p>", "<p>hi</p>"),
        ('<img src="x" onerror="alert(1)">ok', "ok"),
        ('<a href="javascript:alert(1)">link</a>', "link"),
        ('<a href="http://evil.example/">out</a>', "out"),
        ('<iframe src="http://evil.example/">framed</iframe>after', "after"),
        ("<style>body { display: none }</style>after", "after"),
        (
            '<div style="background: url(http://evil.example/b)" class="error" id="vote-form">x</div>',
            "<div>x</div>",
        ),
        ('<object data="x.swf"></object><embed src="x"><svg><script>1</script></svg>z', "z"),
        ('<form action="http://evil.example"><input name="q"><button>go</button></form>', "go"),
        (
            '<table border="1" class="dataframe"><tr><td colspan="2">3</td></tr></table>',
            '<td colspan="2">3</td>',
        ),
        ("<!-- <script>alert(1)</script> -->c", "c"),
        (
            "<meta http-equiv='refresh' content='0;url=http://evil.example'><base href='http://evil.example/'>b",
            "b",
        ),
    ],
)
def test_html_is_reduced_to_inert_markup(attack: str, left: str) -> None:
    out = sanitise_html(attack)
    assert left in out, out
    assert not re.search(r"<(script|style|iframe|img|a|object|embed|form|input|meta|base|svg)\b", out), out
    assert not re.search(r"\s(on\w+|style|class|id|href|src)=", out), out
    assert "evil" not in out and "alert" not in out


def test_markdown_shows_raw_html_as_text_and_drops_links_and_images() -> None:
    out = render_markdown(
        "# Results\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
        "[click](javascript:alert(1)) [site](http://evil.example) ![beacon](http://evil.example/b.png)\n\n"
        "| dx | n |\n|----|---|\n| I10 | 25 |\n"
    )
    assert "<h1>Results</h1>" in out and "<td>I10</td>" in out
    assert "&lt;script&gt;" in out and "<script" not in out and "<img" not in out
    assert "href" not in out and "evil.example/b.png" not in out
