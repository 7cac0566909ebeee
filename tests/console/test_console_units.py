"""The console without a hub: its registration in the hub config, its CLI entry, every label in both
languages for every value the domain modules can show, and the form parsing (no rule in it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from enclave.console import forms
from enclave.console.i18n import CHOICES, LABELS, ConsoleTranslator
from tests.hub_config.test_bind_config import load, managed_service

TEMPLATES = Path(__file__).resolve().parents[2] / "enclave" / "console" / "templates"


# ---- the hub registers the console as a managed service ----------------------------------------------


def test_the_hub_runs_the_console_on_loopback_with_oauth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load(tmp_path, monkeypatch, ENCLAVE_CONSOLE_PORT="9103", ENCLAVE_HOME=str(tmp_path / "home"))
    console = managed_service(c, "console", "9103", tmp_path / "home", "console")
    # After stopping a project's servers it clears the other services' token caches.
    urls = console["environment"]["ENCLAVE_SERVICE_URLS"].split(",")
    assert urls == [
        "http://127.0.0.1:8101/services/gateway/",
        "http://127.0.0.1:8102/services/export-review/",
        "http://127.0.0.1:8104/services/runs/",
    ]
    by_name = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert by_name["enclave-console"]["services"] == ["console"]
    assert set(by_name["enclave-console"]["scopes"]) == {"list:users", "read:servers", "delete:servers"}
    assert "console" in by_name["enclave-service"]["services"]
    assert "access:services!service=console" in by_name["user"]["scopes"]  # anyone may file an application


def test_the_console_is_left_out_when_not_wanted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = load(tmp_path, monkeypatch, ENCLAVE_HUB_SERVICES="gateway,export-review")
    assert "console" not in {s["name"] for s in c.JupyterHub.services}
    assert "enclave-console" not in {role["name"] for role in c.JupyterHub.load_roles}


def test_the_console_never_listens_on_a_wildcard_address() -> None:
    from enclave.console.app import ConsoleApp

    with pytest.raises(ValueError, match="every interface"):
        ConsoleApp(ip="0.0.0.0")
    assert ConsoleApp().ip == "127.0.0.1"


def test_the_cli_starts_the_console() -> None:
    from enclave.cli import app

    result = CliRunner().invoke(app, ["console", "serve", "--help"])
    assert result.exit_code == 0 and "--port" in result.output


# ---- every label, in both languages ------------------------------------------------------------------


def _keys_in_templates() -> set[str]:
    keys = set()
    for template in TEMPLATES.glob("*.html"):
        keys |= set(re.findall(r'(?<![\w.])t\("([a-z_]+)"\)', template.read_text()))
    return keys


def test_every_label_has_english_and_chinese() -> None:
    for key, (en, zh) in LABELS.items():
        assert en.strip() and zh.strip(), key
        assert re.search(r"[\u4e00-\u9fff]", zh) or key == "language", (key, zh)
    for group, values in CHOICES.items():
        for value, (en, zh) in values.items():
            assert en.strip() and re.search(r"[\u4e00-\u9fff]", zh), (group, value)


def test_every_label_the_pages_use_exists() -> None:
    from enclave import agreements
    from enclave.applications import office
    from enclave.applications.workflow import ApplicationState
    from enclave.console.handlers import auditor, base, steward
    from enclave.projects import ProjectState

    wanted = _keys_in_templates()
    wanted |= {f"state_{s.value}" for s in ApplicationState} | {
        f"state_help_{s.value}" for s in ApplicationState
    }
    wanted |= {f"state_{value}" for name, value in vars(ProjectState).items() if name.isupper()}
    wanted |= {f"step_{step}" for step in steward.LIFECYCLE_STEPS}
    wanted |= {f"dua_kind_{kind}" for kind in agreements.KINDS}
    wanted |= {f"event_review_{outcome}" for outcome in office.OUTCOMES}
    wanted |= {f"filter_{name}" for name in auditor.FILTERS}
    wanted |= {label for _, label, _, _ in base.NAV}
    wanted |= {"office_queue_title", "committee_queue_title"}
    assert wanted - set(LABELS) == set()


def test_every_value_of_the_domains_choices_has_a_label() -> None:
    from enclave.applications import form
    from enclave.specs import AccessMode, ColumnRole

    groups = {
        "purpose": form.PurposeCategory,
        "track": form.Track,
        "basis": form.LegalBasis,
        "access": AccessMode,
        "team": form.TeamRole,
        "column": ColumnRole,
    }
    for group, enum in groups.items():
        assert {v.value for v in enum} <= set(CHOICES[group]), group


def test_translator_falls_back_to_the_value_and_knows_the_roles() -> None:
    zh, en = ConsoleTranslator("zh"), ConsoleTranslator("en")
    assert zh.choice("track", "foreign") == "与境外单位合作的项目" and en.choice("track", "mars") == "mars"
    assert zh.role("steward") == "数据管理员" and en.role("security_auditor") == "security auditor"
    assert zh.pair({"en": "Legality", "zh": "合法性"}) == "合法性" and en.pair(("a", "甲")) == "a"


# ---- forms: parsing only ------------------------------------------------------------------------------


def _args(pairs: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    return lambda name: [v for k, v in pairs if k == name]


def test_the_application_form_is_read_as_typed() -> None:
    pairs = [
        ("title", " Study "),
        ("ds.patients.columns", "pid"),
        ("ds.patients.columns", "age"),
        ("ds.patients.start", "2020-01-01"),
        ("ds.visits.start", "2020-01-01"),  # no column ticked: not requested
        ("team_user", "pia"),
        ("team_role", "pi"),
        ("team_user", " "),
        ("team_role", "analyst"),
        ("team_user", "bob"),
        ("team_role", "analyst"),
        ("min_cell_count", "five"),
        ("cross_border", "yes"),
    ]
    values = forms.values_from_arguments(_args(pairs), ["patients", "visits"])
    assert values.title == "Study" and list(values.datasets) == ["patients"]
    assert values.team == [("pia", "pi"), ("bob", "analyst")]
    data = forms.form_data(values)
    assert data["datasets"] == {
        "patients": {"columns": ["pid", "age"], "time_range": {"start": "2020-01-01", "end": ""}}
    }
    assert data["min_cell_count"] == "five"  # the domain refuses it by name
    assert data["cross_border"] is True and "consent" not in data and "ethics_ref" not in data
    again = forms.values_from_form(data)
    assert again.datasets["patients"].columns == ["pid", "age"] and again.team == values.team


def test_a_narrowing_only_when_the_form_says_so() -> None:
    approved = {"patients": ["pid", "age"], "visits": ["pid", "cost"]}
    team = ["pia", "bob"]
    assert forms.narrowing(_args([]), approved, team) is None  # a script that sends no narrowing
    everything = [("narrowing", "yes"), ("analysts", "pia"), ("analysts", "bob")]
    everything += [("ds.patients.columns", c) for c in approved["patients"]]
    everything += [("ds.visits.columns", c) for c in approved["visits"]]
    assert forms.narrowing(_args(everything), approved, team) is None
    # Nothing ticked is nothing, not everything: the domain then refuses an empty project.
    assert forms.narrowing(_args([("narrowing", "yes")]), approved, team) == {"datasets": {}, "analysts": []}
    fewer = [p for p in everything if p not in (("ds.visits.columns", "cost"), ("analysts", "bob"))]
    assert forms.narrowing(_args(fewer), approved, team) == {
        "datasets": {"patients": ["pid", "age"], "visits": ["pid"]},
        "analysts": ["pia"],
    }


def test_checklist_scorecard_and_dates() -> None:
    from enclave.errors import BadInput

    args = _args([("check.a", "yes"), ("score.x", "4"), ("score.y", "high")])
    assert forms.checklist(args, ["a", "b"]) == {"a": True, "b": False}
    assert forms.scorecard(args, ["x", "y", "z"]) == {"x": 4, "y": "high"}
    assert str(forms.day("2026-11-01", "start")) == "2026-11-01"
    with pytest.raises(BadInput) as refused:
        forms.day("tomorrow", "start")
    assert refused.value.code == "date_invalid" and refused.value.message_zh
