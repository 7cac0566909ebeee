"""Sanitisers for what a reviewer previews: SVG images and the HTML of notebooks (default deny).

An SVG is parsed with no DTD and no entities at all (``defusedxml``: no external entities, no billion
laughs) and rebuilt from an allowlist of SVG elements and attributes: no script, no foreignObject,
no event handlers, no links or references except to fragments of the image itself (``#id``), no
``<image>`` (it would load something), and no style that loads anything. HTML goes through ``nh3``
with an allowlist of plain text and table tags and no attributes that load or link anything.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # only builds and writes the rebuilt tree; parsing is defusedxml's

import nh3
from defusedxml import ElementTree as SafeET
from markdown_it import MarkdownIt

from enclave.errors import BadInput

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
MAX_SVG_ELEMENTS = 20_000

SVG_ELEMENTS = frozenset(
    {
        "svg", "g", "defs", "title", "desc", "metadata", "symbol", "use", "style",
        "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
        "text", "tspan", "textPath",
        "linearGradient", "radialGradient", "stop", "clipPath", "mask", "pattern", "marker",
    }
)  # fmt: skip
UNWRAPPED = frozenset({"a", "switch"})  # dropped, their children kept
SVG_ATTRIBUTES = frozenset(
    {
        "id", "class", "style", "version", "viewBox", "preserveAspectRatio", "width", "height",
        "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "fx", "fy", "d", "points",
        "dx", "dy", "rotate", "textLength", "lengthAdjust", "transform", "offset",
        "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity",
        "stroke-linecap", "stroke-linejoin", "stroke-dasharray", "stroke-dashoffset",
        "stroke-miterlimit", "opacity", "color", "stop-color", "stop-opacity", "clip-path",
        "clip-rule", "mask", "marker-start", "marker-mid", "marker-end", "markerWidth",
        "markerHeight", "markerUnits", "refX", "refY", "orient", "gradientUnits",
        "gradientTransform", "spreadMethod", "patternUnits", "patternContentUnits",
        "patternTransform", "clipPathUnits", "maskUnits", "maskContentUnits", "font-family",
        "font-size", "font-style", "font-weight", "font-variant", "text-anchor",
        "dominant-baseline", "alignment-baseline", "baseline-shift", "letter-spacing",
        "word-spacing", "text-decoration", "writing-mode", "display", "visibility", "overflow",
        "vector-effect", "shape-rendering", "text-rendering", "image-rendering", "startOffset",
        "href", "type", "media",
    }
)  # fmt: skip
HREF_ELEMENTS = frozenset({"use", "textPath", "linearGradient", "radialGradient", "pattern"})
FRAGMENT = re.compile(r"#[A-Za-z_][A-Za-z0-9_.:-]{0,200}")
URL = re.compile(r"url\s*\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)
# Anything in a value or a stylesheet that could load, run or hide something.
UNSAFE_VALUE = re.compile(r"javascript:|vbscript:|data:|expression\s*\(|@import|\\|<|behavio(u)?r\s*:", re.I)

HTML_TAGS = frozenset(
    {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "b", "i", "u", "s", "strong", "em",
        "code", "pre", "kbd", "samp", "var", "blockquote", "ul", "ol", "li", "dl", "dt", "dd",
        "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption", "span", "div", "sub", "sup",
        "del", "ins", "small", "abbr", "q", "cite",
    }
)  # fmt: skip
HTML_ATTRIBUTES = {"th": {"colspan", "rowspan"}, "td": {"colspan", "rowspan"}}
# Removed with everything inside them (their text is code or another document, not content).
HTML_DROPPED = frozenset(
    {
        "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "noscript",
        "template", "svg", "math", "textarea", "select", "title", "head", "link", "meta", "base",
    }
)  # fmt: skip
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def unsafe_svg(message: str, message_zh: str) -> BadInput:
    return BadInput("export_svg_unsafe", message, message_zh)


def _local(tag: object) -> str | None:
    """The SVG element's local name, ``None`` for anything outside the SVG namespace (or a comment)."""
    if not isinstance(tag, str) or not tag.startswith(f"{{{SVG_NS}}}"):
        return None
    return tag.removeprefix(f"{{{SVG_NS}}}")


def _safe_value(value: str) -> bool:
    """A value that loads nothing: no scheme, no escapes, and ``url()`` only to a fragment of the image."""
    if UNSAFE_VALUE.search(value):
        return False
    return all(FRAGMENT.fullmatch(match.group(2).strip()) for match in URL.finditer(value))


def _attribute(name: str) -> str | None:
    """The attribute's name in the rebuilt image, ``None`` to drop it (``xlink:href`` becomes ``href``)."""
    if name == f"{{{XLINK_NS}}}href":
        return "href"
    if name.startswith("{"):
        return None  # other namespaces (xml:base, foreign attributes): dropped
    return name if name in SVG_ATTRIBUTES else None


def _copy(source: ET.Element, local: str) -> ET.Element:
    out = ET.Element(local)  # un-namespaced here; the root declares the SVG namespace
    for raw_name, value in source.attrib.items():
        name = _attribute(raw_name)
        if name is None or not _safe_value(value):
            continue
        if name == "href" and (local not in HREF_ELEMENTS or not FRAGMENT.fullmatch(value.strip())):
            continue
        out.set(name, value)
    if local == "style":
        css = source.text or ""
        out.text = css if _safe_value(css) and not URL.search(css) else ""
    else:
        out.text = source.text
    return out


def _rebuild(source: ET.Element, target: ET.Element, budget: list[int]) -> None:
    for child in source:
        budget[0] -= 1
        if budget[0] < 0:
            raise unsafe_svg("The SVG has too many elements to preview", "SVG 元素过多，无法预览")
        local = _local(child.tag)
        if local in SVG_ELEMENTS:
            copy = _copy(child, local)
            if local != "style":
                _rebuild(child, copy, budget)
            target.append(copy)
        elif local in UNWRAPPED:
            _add_text(target, child.text)
            _rebuild(child, target, budget)
        # anything else (script, foreignObject, image, elements of other namespaces) is dropped whole
        _add_text(target, child.tail)


def _add_text(target: ET.Element, text: str | None) -> None:
    """Text after the last child kept in ``target`` (the text around a dropped element stays)."""
    if not text:
        return
    if len(target):
        target[-1].tail = (target[-1].tail or "") + text
    else:
        target.text = (target.text or "") + text


def sanitise_svg(data: bytes) -> bytes:
    """The SVG rebuilt from the allowlist; ``export_svg_unsafe`` when it cannot be parsed safely."""
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except Exception:  # a DTD, an entity, or not XML: never previewed
        raise unsafe_svg(
            "The SVG cannot be previewed: it is not plain XML (a DTD, entities or a syntax error)",
            "无法预览该 SVG：它不是简单的 XML（含 DTD、实体或语法错误）",
        ) from None
    if _local(root.tag) != "svg":
        raise unsafe_svg("The file is not an SVG image", "该文件不是 SVG 图像")
    out = _copy(root, "svg")
    out.set("xmlns", SVG_NS)
    _rebuild(root, out, [MAX_SVG_ELEMENTS])
    return ET.tostring(out, encoding="utf-8", xml_declaration=True)


def sanitise_html(html: str) -> str:
    """HTML with only text, lists and tables left: no script, style, frames, images, links or
    attributes (other than a cell's span), so it loads and runs nothing and cannot restyle the page."""
    return nh3.clean(
        html,
        tags=set(HTML_TAGS),
        clean_content_tags=set(HTML_DROPPED),
        attributes={tag: set(names) for tag, names in HTML_ATTRIBUTES.items()},
        url_schemes=set(),
        link_rel=None,
        strip_comments=True,
    )


def render_markdown(text: str) -> str:
    """Markdown as sanitised HTML; raw HTML in it is shown as text, never passed through."""
    return sanitise_html(MARKDOWN.render(text))
