"""The request page for reviewers, through the hub: table previews with the checks' cells marked,
sanitised SVG and notebook previews (for reviewers only, attacks included), the committee rule and
approvals still needed without breaking blind review, and two versions side by side."""

from __future__ import annotations

import base64
import json
import re

from tests.export_review.factories import cast, make_project, submit
from tests.export_review.web.conftest import Response, Stack, call

SMALL_CELL_CSV = b"dx,n\nI10,25\nE11,3\nJ18,15\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
# Passes the submission checks (no script, no handler), yet would load from elsewhere if served as is.
SNEAKY_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    b'width="40" height="20">'
    b'<foreignObject width="40" height="20"><div xmlns="http://www.w3.org/1999/xhtml">form</div></foreignObject>'
    b'<image href="http://evil.example/beacon.png" width="1" height="1"/>'
    b"<style>rect { fill: url(http://evil.example/fill.svg#p) }</style>"
    b'<rect width="10" height="10" fill="url(#g)"/><text x="1" y="15">Figure 1</text></svg>'
)
NOTEBOOK = json.dumps(
    {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# Method\n\n<script>alert('md')</script>"},
            {
                "cell_type": "code",
                "metadata": {},
                "source": "show()",
                "outputs": [
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {
                            "text/html": "<p>Result</p><script>alert('out')</script>"
                            "<img src=x onerror=alert(1)>"
                            '<a href="javascript:alert(2)">go</a><iframe src="http://evil.example"></iframe>'
                            "<style>main{display:none}</style>",
                            "text/plain": "<HTML>",
                        },
                    },
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"image/png": base64.b64encode(PNG).decode()},
                    },
                ],
            },
        ],
    }
).encode()


def page(stack: Stack, path: str, user: str, lang: str = "en") -> Response:
    separator = "&" if "?" in path else "?"
    return call("GET", f"{stack.service_url}{path}{separator}lang={lang}", stack.tokens[user])


def text(stack: Stack, path: str, user: str, lang: str = "en") -> str:
    response = page(stack, path, user, lang)
    assert response.status == 200, response.body[:2000]
    return response.body.decode()


def error_code(response: Response) -> str:
    match = re.search(r'<code class="error-code">([a-z0-9_]+)</code>', response.body.decode())
    assert match, response.body[:2000]
    return match[1]


def submitted(stack: Stack, files: list[tuple[str, bytes]], **fields: str) -> str:
    response = stack.submit("bob", files, **fields)
    assert response.status == 201, response.body
    assert response.json()["state"] == "in_review", response.json()
    return str(response.json()["request"])


def test_small_cells_are_marked_in_the_table_preview(stack: Stack) -> None:
    rows = "".join(f"X{i},{20 + i}\n" for i in range(30)).replace("X27,47", "X27,2")
    request_id = submitted(stack, [("t.csv", SMALL_CELL_CSV), ("long.csv", f"dx,n\n{rows}".encode())])
    html = text(stack, f"requests/{request_id}", "rev1")
    cell = re.search(
        r'<td class="below-k"[^>]*data-column="n"[^>]*>3<span class="visually-hidden"> \(below k=5\)', html
    )
    assert cell, html
    assert 'data-codes="small_cell"' in html and "a count of 3 is below k=5" in html  # the title says why
    # Row 28 of long.csv is past the first 20 rows: it is shown after a gap, marked.
    assert '<tr class="gap">' in html and '<tr data-row="28">' in html and ">2<span" in html
    assert '<tr data-row="25">' not in html
    chinese = text(stack, f"requests/{request_id}", "rev1", "zh")
    assert "(小于 k=5)" in chinese and "检查发现的单元格已标记" in chinese
    # The requester and the PI are not reviewers: no stored bytes reach them.
    for user in ("bob", "alice"):
        other = text(stack, f"requests/{request_id}", user)
        assert "preview-table" not in other and "below-k" not in other


def test_svg_is_sanitised_and_served_to_reviewers_only(stack: Stack) -> None:
    request_id = submitted(stack, [("figure.svg", SNEAKY_SVG)])
    html = text(stack, f"requests/{request_id}", "rev1")
    assert f'src="/services/enclave-export/requests/{request_id}/svg/figure.svg' in html
    assert 'class="preview preview-svg"' in html
    served = page(stack, f"requests/{request_id}/svg/figure.svg", "rev1")
    assert served.status == 200
    assert served.headers["content-type"] == "image/svg+xml"
    assert served.headers["content-security-policy"] == SVG_CSP
    assert served.headers["x-content-type-options"] == "nosniff"
    body = served.body.decode()
    assert "<text" in body and "Figure 1" in body and 'fill="url(#g)"' in body
    for gone in ("foreignObject", "<image", "evil.example", "<div"):
        assert gone not in body, body
    assert (
        error_code(page(stack, f"requests/{request_id}/svg/figure.svg", "bob")) == "export_preview_forbidden"
    )
    assert page(stack, f"requests/{request_id}/svg/figure.svg", "bob").status == 403
    assert (
        error_code(page(stack, f"requests/{request_id}/svg/figure.svg", "carol"))
        == "export_preview_forbidden"
    )
    assert page(stack, f"requests/{request_id}/svg/other.svg", "rev1").status == 404
    # A raster file is not served through the SVG route (never as image/svg+xml).
    raster_id = submitted(stack, [("plot.png", PNG)])
    assert page(stack, f"requests/{raster_id}/svg/plot.png", "rev1").status == 404


def test_a_script_svg_is_refused_at_submission_and_never_previewed(stack: Stack) -> None:
    attack = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
    response = stack.submit("bob", [("attack.svg", attack)])
    assert response.status != 201 or response.json()["state"] != "in_review"


def test_notebook_is_rendered_sanitised_for_reviewers(stack: Stack) -> None:
    request_id = submitted(stack, [("analysis.ipynb", NOTEBOOK)])
    html = text(stack, f"requests/{request_id}", "rev1")
    assert 'class="notebook"' in html and 'data-cell="2"' in html and "<h1>Method</h1>" in html
    assert "&lt;script&gt;alert('md')&lt;/script&gt;" in html  # markdown's raw HTML shown as text
    assert "<p>Result</p>" in html
    for active in ("<script", "onerror", "javascript:", "<iframe", "evil.example", "main{display:none}"):
        assert active not in html, active
    image = f"requests/{request_id}/notebook-images/analysis.ipynb/2-2"
    assert f'src="/services/enclave-export/{image}' in html
    served = page(stack, image, "rev1")
    assert served.status == 200 and served.body == PNG
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert error_code(page(stack, f"requests/{request_id}/notebook-images/analysis.ipynb/2-1", "rev1")) == (
        "export_image_not_found"
    )
    assert error_code(page(stack, image, "bob")) == "export_preview_forbidden"
    requester = text(stack, f"requests/{request_id}", "bob")
    assert (
        'class="notebook"' not in requester
        and "Result" not in requester
        and "notebook-images" not in requester
    )


def _votes_part(html: str, request_id: str) -> str:
    """The page from the votes on, with what differs between two requests anyway taken out."""
    part = html[html.index('id="votes-hidden"') :]
    part = part.replace(request_id, "REQUEST")
    return re.sub(r'name="_xsrf" value="[^"]*"', "", part)


def test_vote_form_shows_the_rule_and_keeps_review_blind(stack: Stack) -> None:
    project = make_project(stack.env, project_id="blind-2026", committee=5)
    approved = submit(stack.env, {"t.csv": "dx,n\nI10,25\n"}, project_id=project)
    rejected = submit(stack.env, {"t.csv": "dx,n\nI10,25\n"}, project_id=project)
    cast(stack.env, approved, "rev3", "approve")
    cast(stack.env, rejected, "rev3", "reject", comment="SECRET-REASON by rev3")
    pages = {rid: text(stack, f"requests/{rid}", "rev1") for rid in (approved, rejected)}
    for html in pages.values():
        form = html[html.index('<form id="vote-form"') : html.index("</form>")]
        assert 'id="committee-rule"' in form and 'id="approvals-needed"' in form
        assert "more than 2/3 of the 5 seated members: 4 approvals" in form
        assert 'data-blind="yes"' in form and 'data-voted="1"' in form and "1 / 5" in form
        assert "data-approvals" not in html and "still-needed" not in html and 'class="tally"' not in html
        assert "rev3" not in html and "SECRET-REASON" not in html
    # Whether rev3 approved or rejected changes nothing rev1 can read.
    assert _votes_part(pages[approved], approved) == _votes_part(pages[rejected], rejected)
    for rid in (approved, rejected):
        shown = stack.api("GET", f"requests/{rid}", "rev1").json()["request"]
        assert shown["committee"]["files"] == {"t.csv": {"voted": 1}} and shown["votes"] == []
    chinese = text(stack, f"requests/{approved}", "rev1", "zh")
    assert "超过 5 名在任委员的 2/3：需 4 票批准" in chinese and "已投票委员" in chinese
    # Once every member has voted, the counts are shown, with what is still needed.
    for reviewer in ("rev1", "rev2", "rev4"):
        cast(stack.env, approved, reviewer, "approve")
    html = text(stack, f"requests/{approved}", "rev2")
    assert 'data-blind="no"' in html and 'data-approvals="4"' in html and 'data-still-needed="0"' in html
    assert 'id="committee-rule"' in html  # shown outside the form once the viewer cannot vote


def _revision(stack: Stack) -> tuple[str, str]:
    first = submit(
        stack.env,
        {
            "table.csv": "dx,n\nI10,25\nE11,40\nJ18,15\n",
            "notes.txt": "first draft",
            "same.csv": "a,n\nx,30\n",
        },
        justification="Table 1, first try",
    )
    cast(stack.env, first, "rev1", "changes", comment="round E11")
    second = submit(
        stack.env,
        {"table.csv": "dx,n\nI10,25\nE11,41\nJ18,3\n", "same.csv": "a,n\nx,30\n", "new.csv": "b,n\ny,50\n"},
        justification="Table 1, rounded",
        revises=first,
    )
    return first, second


def test_two_versions_side_by_side(stack: Stack) -> None:
    first, second = _revision(stack)
    request = text(stack, f"requests/{second}", "rev2")
    assert f'id="compare-link" href="/services/enclave-export/requests/{second}/compare' in request
    assert 'id="compare-link"' not in text(stack, f"requests/{first}", "rev2")
    assert f'id="revised-by-link" href="/services/enclave-export/requests/{second}' in text(
        stack, f"requests/{first}", "rev2"
    )
    html = text(stack, f"requests/{second}/compare", "rev2")
    explicit = text(stack, f"requests/{second}/compare?with={first}", "rev2")
    assert html[html.index("<main") :] == explicit[explicit.index("<main") :]
    left = html[html.index('<div class="compare-left"') : html.index('<div class="compare-right"')]
    right = html[html.index('<div class="compare-right"') :]
    assert (
        f'data-request="{first}" data-version="1"' in left
        and f'data-request="{second}" data-version="2"' in right
    )
    assert '<span class="compare-version">1</span>' in left and first in left
    assert "Table 1, first try" in left and "Table 1, rounded" in right
    statuses = dict(re.findall(r'<tr class="file-change" data-file="([^"]+)" data-status="([a-z]+)"', html))
    assert statuses == {
        "table.csv": "changed",
        "notes.txt": "removed",
        "same.csv": "unchanged",
        "new.csv": "added",
    }
    # The changed cells are marked on both sides; a new small cell is marked below k as well.
    assert re.search(r'<td class="changed" data-column="n"[^>]*>40<', left)
    assert re.search(r'<td class="changed" data-column="n"[^>]*>41<', right)
    assert re.search(r'<td class="below-k changed" data-column="n"[^>]*>3<', right)
    assert not re.search(r'<td class="[^"]*changed[^"]*" data-column="n"[^>]*>25<', html)
    assert 'class="compare-justification changed"' in html
    # The other way round is the same comparison, older on the left.
    assert f'data-request="{first}" data-version="1"' in text(
        stack, f"requests/{first}/compare?with={second}", "rev2"
    )
    assert "两个版本对照" in text(stack, f"requests/{second}/compare", "rev2", "zh")


def test_comparison_rights_and_refusals(stack: Stack) -> None:
    first, second = _revision(stack)
    other = submitted(stack, [("t.csv", SMALL_CELL_CSV)])
    # The requester sees what changed, not the files' contents.
    mine = text(stack, f"requests/{second}/compare", "bob")
    assert (
        'id="compare-no-preview"' in mine and "preview-table" not in mine and 'data-status="changed"' in mine
    )
    stranger = page(stack, f"requests/{second}/compare", "carol")
    assert stranger.status == 403 and error_code(stranger) == "export_not_member"
    for foreign in (other, "exp-0000000000000000"):  # another chain, or none at all: the same answer
        refused = page(stack, f"requests/{second}/compare?with={foreign}", "rev1")
        assert refused.status == 400 and error_code(refused) == "export_compare_other_chain"
    assert error_code(page(stack, f"requests/{first}/compare", "rev1")) == "export_compare_no_previous"
    assert (
        error_code(page(stack, f"requests/{first}/compare?with={first}", "rev1"))
        == "export_compare_same_version"
    )
    chinese = page(stack, f"requests/{second}/compare?with={other}", "rev1", "zh").body.decode()
    assert "不是导出申请" in chinese
    assert (
        page(stack, f"requests/{second}/compare?with=%3Cscript%3E", "rev1").body.decode().count("<script")
        == 0
    )


def test_any_two_versions_of_a_chain_can_be_compared(stack: Stack) -> None:
    first, second = _revision(stack)
    cast(stack.env, second, "rev1", "changes", comment="still a small cell")
    third = submit(
        stack.env, {"table.csv": "dx,n\nI10,25\nE11,40\nJ18,15\n"}, justification="Table 1", revises=second
    )
    html = text(stack, f"requests/{third}/compare?with={first}", "rev2")
    assert (
        f'data-request="{first}" data-version="1"' in html
        and f'data-request="{third}" data-version="3"' in html
    )
    assert 'data-file="table.csv" data-status="unchanged"' in html  # the same bytes as version 1
    links = re.findall(r'class="version-link" data-request="([^"]+)" href="([^"]+)"', html)
    assert [rid for rid, _ in links] == [first, second]
    assert links[1][1] == f"/services/enclave-export/requests/{third}/compare?lang=en&amp;with={second}"
    assert text(stack, f"requests/{first}/compare?with={third}", "rev2").count('class="compare-left"') == 1
