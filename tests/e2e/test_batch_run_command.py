"""JupyterLab's "Run as batch job / 作为批处理作业运行" in the real analyst image and headless Chromium.

JupyterLab runs inside the analyst image (its own labextension and the lockdown server extension,
as installed there), on the host's loopback. The runs service behind the server extension is the
RECORDING STAND-IN of tests/runs/recording_service.py: these tests are about the browser -> server
extension -> client path (what is sent, and what is shown), not what the service decides, which is
tested against the real service elsewhere.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import exec_python
from tests.harness.browser import browser
from tests.harness.lab import LabServer, running_lab
from tests.runs.recording_service import Recorded, RecordingService, describe, recording_service

__all__ = ["browser"]  # the fixture: Chromium

pytestmark = pytest.mark.slow

PREFIX = "enclave-test-lab-"
RUNS_TOKEN = "the-servers-own-hub-token"
SCREENSHOT = Path("/tmp/enclave-batch-run-dialog.png")
NOTEBOOK = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "cells": [
        {
            "cell_type": "code",
            "id": "params",
            "metadata": {"tags": ["parameters"]},
            "source": "year = 2023\n",
            "outputs": [],
            "execution_count": None,
        },
        {
            "cell_type": "code",
            "id": "table",
            "metadata": {},
            "source": "print(year)\n",
            "outputs": [],
            "execution_count": None,
        },
    ],
}
MENU_ITEM = ".lm-Menu-item:has-text('Run as batch job')"
RUN_NUMBERS = itertools.count(1)


def answer(request: Recorded) -> tuple[int, Any]:
    """The stand-in's script: a queued run per submission; a refusal for a parameter named ``bad``."""
    if request.method == "GET":
        return 200, {"runs": [describe("run-00000000000a", "succeeded")]}
    body = request.body or {}
    if "bad" in body.get("parameters", {}):
        errors = [
            {
                "code": "run_parameter_name_invalid",
                "message": {"en": "'bad' is not allowed here", "zh": "此处不允许 'bad'"},
            }
        ]
        return 400, {"errors": errors}
    return 201, describe(
        f"run-{next(RUN_NUMBERS):012x}",
        "queued",
        notebook={"name": body.get("notebook_name"), "sha256": "0" * 64},
        parameters=body.get("parameters", {}),
    )


@dataclass
class Lab(LabServer):
    service: RecordingService

    def posts(self) -> list[Recorded]:
        return self.service.of("POST")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with recording_service(answer) as service:
        env = {
            "ENCLAVE_RUNS_URL": service.url,
            "JUPYTERHUB_API_TOKEN": RUNS_TOKEN,
            "ENCLAVE_PROJECT": "cardio",
        }
        setup = (
            "import json, os\n"
            "os.makedirs('/home/analyst/analysis', exist_ok=True)\n"
            f"nb = {json.dumps(NOTEBOOK)!r}\n"
            "open('/home/analyst/analysis/table1.ipynb', 'w').write(nb)\n"
            "open('/home/analyst/analysis/notes.txt', 'w').write('not a notebook')\n"
            "open('/tmp/outside.ipynb', 'w').write(nb)\n"
            "os.symlink('/tmp/outside.ipynb', '/home/analyst/analysis/escape.ipynb')\n"
            "os.symlink('/tmp', '/home/analyst/analysis/tmpdir')\n"
        )
        with running_lab(PREFIX, env, setup) as server:
            yield Lab(server.url, server.token, server.container, service)


def open_notebook(browser: Any, lab: Lab) -> Any:
    page = browser.new_page()
    page.goto(f"{lab.url}lab/tree/analysis/table1.ipynb?token={lab.token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_selector(".jp-DirListing-item[data-file-type='notebook']", timeout=30_000)
    return page


def submit_dialog(page: Any, parameters: str) -> str:
    page.wait_for_selector("#enclave-runs-dialog")
    page.fill("#enclave-runs-parameters", parameters)
    page.click("#enclave-runs-submit")
    page.wait_for_selector(
        "#enclave-runs-status[data-state=submitted], #enclave-runs-status[data-state=failed]"
    )
    return page.inner_text("#enclave-runs-status")


def test_the_extension_is_installed_and_enabled_in_the_image(lab: Lab) -> None:
    text = lab.labextensions()
    assert "enclave-runs" in text and "enabled" in text.split("enclave-runs", 1)[1].splitlines()[0], text
    page = urllib.request.urlopen(f"{lab.url}lab?token={lab.token}", timeout=30).read().decode()
    config = json.loads(
        page.split('id="jupyter-config-data" type="application/json">', 1)[1].split("</script>")[0]
    )
    assert "enclave-runs" in [e["name"] for e in config["federated_extensions"]]
    assert not [x for x in config.get("disabledExtensions", []) if x.startswith("enclave-runs")]


def test_the_notebook_context_menu_submits_the_saved_notebook(browser: Any, lab: Lab) -> None:
    page = open_notebook(browser, lab)
    before = len(lab.posts())
    page.click(".jp-Notebook .jp-Cell >> nth=1", button="right")
    page.wait_for_selector(MENU_ITEM)
    page.click(MENU_ITEM)
    status = submit_dialog(page, '{"year": 2024, "sites": ["a", "b"]}')
    page.screenshot(path=str(SCREENSHOT))
    assert "queued / 排队中" in status and "table1.ipynb" in status, status
    run_ids = page.get_attribute("#enclave-runs-status", "data-run-ids")
    assert run_ids and run_ids.startswith("run-")
    (sent,) = lab.posts()[before:]
    assert sent.path == "/services/runs/api/runs"
    assert sent.headers["Authorization"] == f"token {RUNS_TOKEN}"  # the server's identity, not the browser's
    assert sent.body["notebook_name"] == "table1.ipynb"
    assert sent.body["parameters"] == {"year": 2024, "sites": ["a", "b"]}
    on_disk = exec_python(lab.container, "print(open('/home/analyst/analysis/table1.ipynb').read(), end='')")
    assert sent.body["notebook"] == on_disk.stdout  # the saved file's text, byte for byte
    cells = json.loads(sent.body["notebook"])["cells"]
    assert ["".join(c["source"]) for c in cells] == ["year = 2023\n", "print(year)\n"]
    page.click("#enclave-runs-cancel")
    assert page.locator("#enclave-runs-dialog").count() == 0
    page.close()


def test_the_file_browser_menu_offers_it_for_notebooks_only(browser: Any, lab: Lab) -> None:
    page = open_notebook(browser, lab)
    page.click(".jp-DirListing-item[data-file-type='text'] >> text=notes.txt", button="right")
    page.wait_for_selector(".lm-Menu")
    assert "Run as batch job" not in page.inner_text(".lm-Menu")
    page.keyboard.press("Escape")
    before = len(lab.posts())
    page.click(".jp-DirListing-item[data-file-type='notebook'] >> text=table1.ipynb", button="right")
    page.click(MENU_ITEM)
    assert "analysis/table1.ipynb" in page.inner_text("#enclave-runs-dialog")
    status = submit_dialog(page, "")  # an empty box means no parameters
    assert "queued" in status, status
    (sent,) = lab.posts()[before:]
    assert sent.body["parameters"] == {} and sent.body["notebook_name"] == "table1.ipynb"
    page.close()


def test_the_keyboard_shortcut_opens_the_dialog(browser: Any, lab: Lab) -> None:
    page = open_notebook(browser, lab)
    page.click(".jp-Notebook .jp-Cell .jp-InputPrompt >> nth=0")  # command mode, focus in the notebook
    page.keyboard.press("Control+Alt+B")
    page.wait_for_selector("#enclave-runs-dialog")
    assert "analysis/table1.ipynb" in page.inner_text("#enclave-runs-dialog")
    page.keyboard.press("Escape")
    assert page.locator("#enclave-runs-dialog").count() == 0
    page.close()


def test_a_refusal_and_bad_json_are_shown_in_both_languages(browser: Any, lab: Lab) -> None:
    page = open_notebook(browser, lab)
    page.click(".jp-Notebook .jp-Cell >> nth=0", button="right")
    page.click(MENU_ITEM)
    page.wait_for_selector("#enclave-runs-dialog")
    before = len(lab.posts())
    page.fill("#enclave-runs-parameters", "[1, 2]")
    page.click("#enclave-runs-submit")
    page.wait_for_selector("#enclave-runs-status[data-state=invalid]")
    assert "参数必须是 JSON 对象" in page.inner_text("#enclave-runs-status")
    assert len(lab.posts()) == before  # nothing was sent
    status = submit_dialog(page, '{"bad": "<b>x</b>"}')
    assert "run_parameter_name_invalid" in status and "此处不允许 'bad'" in status, status
    assert page.get_attribute("#enclave-runs-status", "data-state") == "failed"
    assert page.locator("#enclave-runs-status b").count() == 0
    page.close()


def test_a_cookie_request_without_the_xsrf_token_is_refused(browser: Any, lab: Lab) -> None:
    page = open_notebook(browser, lab)
    before = len(lab.posts())
    statuses = page.evaluate(
        """async () => {
            const body = JSON.stringify({path: 'analysis/table1.ipynb', parameters: {}});
            const bare = await fetch('/enclave/runs', {method: 'POST', body, credentials: 'same-origin'});
            const xsrf = document.cookie.split('; ').find(c => c.startsWith('_xsrf=')).slice(6);
            const good = await fetch('/enclave/runs', {method: 'POST', body, credentials: 'same-origin',
                headers: {'X-XSRFToken': decodeURIComponent(xsrf)}});
            return [bare.status, good.status];
        }"""
    )
    assert statuses == [403, 201]
    assert len(lab.posts()) == before + 1
    page.close()


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("../../etc/passwd.ipynb", 400, "run_path_outside_home"),
        ("analysis/../../tmp/outside.ipynb", 400, "run_path_outside_home"),
        ("analysis/escape.ipynb", 403, "run_path_outside_home"),
        ("analysis/tmpdir/outside.ipynb", 403, "run_path_outside_home"),
        ("analysis/notes.txt", 400, "run_notebook_not_a_notebook"),
        ("analysis/missing.ipynb", 404, "run_notebook_not_found"),
        ("", 400, "run_path_invalid"),
    ],
)
def test_the_server_extension_reads_only_notebooks_inside_the_root(
    lab: Lab, path: str, status: int, code: str
) -> None:
    before = len(lab.posts())
    got, body = lab.api("POST", "enclave/runs", {"path": path, "parameters": {}})
    assert got == status, body
    assert body["errors"][0]["code"] == code and body["errors"][0]["message"]["zh"], body
    assert len(lab.posts()) == before


def test_the_server_extension_needs_a_login_and_lists_runs(lab: Lab) -> None:
    assert lab.status_without_login("enclave/runs") in (401, 403)
    status, body = lab.api("GET", "enclave/runs")
    assert status == 200 and [r["id"] for r in body["runs"]] == ["run-00000000000a"]
    assert lab.service.requests[-1].headers["Authorization"] == f"token {RUNS_TOKEN}"
