"""What the services share lives once in ``enclave.services`` (issue 15): the API's catch-all 404, the
upload slot a large body holds, the console look's page errors, and the prefixed labels of a translator."""

from __future__ import annotations

from typing import ClassVar

import pytest

from enclave.console.handlers import api as console_api
from enclave.console.handlers.base import ConsolePage
from enclave.errors import BadInput
from enclave.runs.web import api as runs_api
from enclave.runs.web.i18n import RunsTranslator
from enclave.runs.web.pages import RunsPage
from enclave.services import handlers
from enclave.services.i18n import Labels, Translator
from export_review.web.handlers import api as export_api


@pytest.mark.parametrize("module", [console_api, runs_api, export_api], ids=lambda m: m.__name__)
def test_every_api_answers_unknown_paths_with_the_shared_handler(module) -> None:
    pattern, handler = module.default_handlers("/services/x/")[-1]
    assert pattern.endswith("api/.*")
    assert handler is handlers.NotFoundApi


@pytest.mark.parametrize("handler", [handlers.UploadHandler, runs_api.RunsApi], ids=lambda h: h.__name__)
def test_slot_holders_release_through_the_shared_handler(handler: type) -> None:
    """One release path: a handler that holds a slot defines no release of its own."""
    for name in ("_release_slot", "on_finish", "on_connection_close"):
        assert getattr(handler, name) is getattr(handlers.ServiceHandler, name)


def test_a_held_slot_is_given_back_once() -> None:
    slots = handlers.UploadSlots(limit=1)
    holder = handlers.ServiceHandler.__new__(handlers.ServiceHandler)
    holder.hold_slot(slots, "alice")
    with pytest.raises(BadInput, match="uploads in progress"):
        slots.acquire("alice")
    holder._release_slot()
    holder._release_slot()  # on_finish after on_connection_close: nothing more to give back
    assert slots.active == {}
    slots.acquire("alice")


@pytest.mark.parametrize("page", [ConsolePage, RunsPage], ids=lambda p: p.__name__)
def test_console_look_pages_share_one_policy_and_error_page(page: type) -> None:
    assert page.csp == handlers.STYLESHEET_CSP and "unsafe-inline" not in page.csp
    assert page.write_error is handlers.StylesheetPage.write_error


class _Labels(Translator):
    labels: ClassVar[Labels] = {"state_open": ("open", "开放"), "kind_template": ("template", "模板")}


@pytest.mark.parametrize(("lang", "expected"), [("en", "template"), ("zh", "模板")])
def test_labelled_is_the_prefixed_label_or_the_value(lang: str, expected: str) -> None:
    t = _Labels(lang)
    assert t.labelled("kind", "template") == expected
    assert t.labelled("kind", "notebookx") == "notebookx"
    assert t.state("open") == ("开放" if lang == "zh" else "open")


def test_runs_translator_uses_the_shared_lookup() -> None:
    t = RunsTranslator("en")
    assert t.kind("no-such-kind") == "no-such-kind"
    assert t.outcome("allowed") == "allowed"
    assert RunsTranslator("zh").outcome("allowed") == "允许"
