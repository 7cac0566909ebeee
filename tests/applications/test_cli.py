"""``enclave application`` as scripts use it: JSON shapes, the error shape and exit codes 0/2/4."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import enclave.applications
from enclave.cli import application
from tests.applications.conftest import AppEnv, form_data
from tests.conftest import write_yaml

Run = Callable[..., Any]


@pytest.fixture
def cli(env: AppEnv, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("ENCLAVE_HOME", str(env.paths.home))
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", database_url)
    runner = CliRunner()

    def run(*args: str, code: int = 0, as_json: bool = True) -> Any:
        result = runner.invoke(application.app, [*args, "--json"] if as_json else list(args))
        assert result.exit_code == code, result.output
        return json.loads(result.stdout) if as_json else result.output

    return run


def error_of(payload: dict[str, Any], code: str) -> dict[str, Any]:
    error = payload["error"]
    assert error["code"] == code and error["message"] and error["message_zh"]
    for reason in error.get("reasons", []):
        assert set(reason) >= {"code", "message", "message_zh"}
    return error


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "ethics.pdf").write_bytes(b"%PDF approval EC-2026-001")
    return {
        "form": write_yaml(tmp_path / "form.yaml", form_data()),
        "ethics": tmp_path / "ethics.pdf",
        "commercial": write_yaml(tmp_path / "sell.yaml", form_data(purpose_category="commercial")),
    }


def test_the_whole_flow(cli: Run, files: dict[str, Path]) -> None:
    filed = cli(
        "file", str(files["form"]), "--user", "alice", "--attach", f"ethics_approval={files['ethics']}"
    )
    app_id = filed["id"]
    assert (filed["state"], filed["digest"], filed["revision"]) == ("draft", None, 1)
    assert [a["id"] for a in cli("list", "--user", "alice")] == [app_id]
    assert cli("list", "--user", "zoe") == []
    submitted = cli("submit", app_id, "--user", "alice")
    assert submitted["state"] == "office_review" and len(submitted["digest"]) == 64

    shown = cli("show", app_id, "--user", "olga")
    assert {
        "id", "title", "applicant", "state", "track", "level", "cross_border", "revision", "digest", "form",
        "attachments", "reviews", "votes", "history",
    } <= set(shown)  # fmt: skip
    assert shown["digest"] == submitted["digest"] and shown["level"] == 3
    assert [(a["kind"], a["filename"], a["size"]) for a in shown["attachments"]] == [
        ("ethics_approval", "ethics.pdf", 25)
    ]
    assert shown["form"]["datasets"]["visits"]["time_range"] == {"start": "2020-01-01", "end": "2021-12-31"}

    incomplete = cli("review", app_id, "forward", "--user", "olga", "--check", "legality", code=2)
    assert error_of(incomplete, "checklist_incomplete")["details"]["unticked"][0] == "legitimacy"
    scores = [arg for dim in ("legality_legitimacy", "consistency_with_need", "data_value", "leakage_risk",
                              "provision_cost") for arg in ("--score", f"{dim}=4")]  # fmt: skip
    forwarded = cli("review", app_id, "forward", "--user", "olga", "--checklist-all", *scores)
    assert forwarded["state"] == "committee_review"
    assert cli("show", app_id, "--user", "alice")["reviews"][0]["outcome"] == "forward"
    assert cli("withdraw", app_id, "--user", "alice")["state"] == "withdrawn"
    error_of(cli("withdraw", app_id, "--user", "alice", code=4), "application_state_invalid")


def test_file_and_submit_is_all_or_nothing(cli: Run, files: dict[str, Path]) -> None:
    out = cli("file", str(files["form"]), "--user", "alice", "--submit", code=2)
    assert [r["details"]["kind"] for r in error_of(out, "application_incomplete")["reasons"]] == [
        "ethics_approval"
    ]
    assert cli("list", "--user", "alice") == []
    done = cli(
        "file",
        str(files["form"]),
        "--user",
        "alice",
        "--attach",
        f"ethics_approval={files['ethics']}",
        "--submit",
    )
    assert done["state"] == "office_review"


def test_bad_input_exits_2(cli: Run, files: dict[str, Path], tmp_path: Path) -> None:
    out = cli("file", str(files["commercial"]), "--user", "alice", code=2)
    assert [r["code"] for r in error_of(out, "application_form_invalid")["reasons"]] == [
        "purpose_not_allowed"
    ]
    error_of(cli("file", str(files["form"]), "--user", "bob", code=2), "applicant_not_pi")
    error_of(cli("file", str(tmp_path / "missing.yaml"), "--user", "alice", code=2), "spec_not_found")
    error_of(
        cli("file", str(files["form"]), "--user", "alice", "--attach", "ethics", code=2), "option_invalid"
    )
    missing = f"other={tmp_path / 'nope.pdf'}"
    error_of(
        cli("file", str(files["form"]), "--user", "alice", "--attach", missing, code=2),
        "attachment_unreadable",
    )
    error_of(cli("show", "app-nope", "--user", "olga", code=2), "application_not_found")
    app_id = cli("file", str(files["form"]), "--user", "alice")["id"]
    error_of(
        cli("attach", app_id, "selfie", str(files["ethics"]), "--user", "alice", code=2),
        "attachment_kind_unknown",
    )
    error_of(cli("submit", app_id, "--user", "alice", code=2), "application_incomplete")
    attached = cli("attach", app_id, "ethics_approval", str(files["ethics"]), "--user", "alice")
    assert len(attached["sha256"]) == 64 and attached["kind"] == "ethics_approval"
    cli("submit", app_id, "--user", "alice")
    bad_score = cli(
        "review", app_id, "forward", "--user", "olga", "--checklist-all", "--score", "data_value=x", code=2
    )
    error_of(bad_score, "option_invalid")
    error_of(cli("review", app_id, "return", "--user", "olga", code=2), "comment_required")


def test_forbidden_exits_4(cli: Run, files: dict[str, Path]) -> None:
    app_id = cli(
        "file", str(files["form"]), "--user", "alice", "--attach", f"ethics_approval={files['ethics']}"
    )["id"]
    error_of(cli("show", app_id, "--user", "zoe", code=4), "application_not_visible")
    error_of(cli("submit", app_id, "--user", "bob", code=4), "application_not_applicant")
    error_of(
        cli("review", app_id, "return", "--user", "olga", "--comment", "x", code=4),
        "application_state_invalid",
    )
    cli("submit", app_id, "--user", "alice")
    error_of(cli("review", app_id, "return", "--user", "carol", "--comment", "x", code=4), "role_required")
    error_of(
        cli("attach", app_id, "other", str(files["ethics"]), "--user", "alice", code=4), "application_locked"
    )
    error_of(cli("history", app_id, "--user", "zoe", code=4), "role_required")
    assert cli("history", app_id, "--user", "olga")["applications"] == []


def test_text_output_and_exit_codes_without_json(cli: Run, files: dict[str, Path]) -> None:
    out = cli("file", str(files["form"]), "--user", "alice", as_json=False)
    assert "application app-" in out and "draft" in out
    app_id = out.split()[1].rstrip(":")
    assert "missing: ethics_approval" in cli("show", app_id, "--user", "alice", as_json=False)
    assert "Only the applicant" in cli("withdraw", app_id, "--user", "bob", code=4, as_json=False)


def test_vote_and_countersign_call_the_committee_module(
    cli: Run, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, Any]] = []
    fake = types.ModuleType("enclave.applications.voting")
    fake.vote = lambda session, paths, app_id, **kw: (
        calls.append(("vote", (app_id, kw))) or {"voted": kw["choice"]}
    )  # type: ignore[attr-defined]
    fake.countersign = lambda session, paths, app_id, **kw: (
        calls.append(("countersign", (app_id, kw))) or {"ok": 1}
    )  # type: ignore[attr-defined]
    tally = {"approve": 1, "decision": None, "votes": [{"member": "carol", "choice": "approve"}]}
    fake.tally_of = lambda session, paths, app_id, viewer: {**tally, "viewer": viewer}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "enclave.applications.voting", fake)
    monkeypatch.setattr(enclave.applications, "voting", fake, raising=False)
    key = tmp_path / "me.key"
    assert cli("vote", "app-1", "approve", "--user", "carol", "--comment", "fine") == {"voted": "approve"}
    assert cli("countersign", "app-1", "--user", "carol", "--key", str(key)) == {"ok": 1}
    assert calls == [
        ("vote", ("app-1", {"member": "carol", "choice": "approve", "comment": "fine"})),
        ("countersign", ("app-1", {"member": "carol", "key_file": key})),
    ]
    app_id = cli("file", str(files["form"]), "--user", "alice")["id"]
    shown = cli("show", app_id, "--user", "alice")
    assert shown["tally"] == {**tally, "viewer": "alice"} and shown["votes"] == tally["votes"]


def test_vote_without_the_committee_module(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "enclave.applications.voting", None)  # import fails
    monkeypatch.delattr(enclave.applications, "voting", raising=False)
    error_of(cli("vote", "app-1", "approve", "--user", "carol", code=2), "committee_voting_unavailable")
