"""Release and download: the outbox, the signed manifest, tampering, crashes, who may download."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from enclave.errors import BadInput, Forbidden, Refused
from export_review import release as releasing
from export_review.outbox import LocalOutbox, Outbox
from export_review.submission import file_store
from export_review.workflow import ExportState
from tests.export_review.factories import GOOD_CSV, ExportEnv, make_project, make_request, release


def download(env: ExportEnv, request_id: str, user: str, out: Path, outbox: Outbox | None = None) -> dict:
    with env.session() as s:
        return releasing.download(
            s, env.paths, request_id, user=user, out_dir=out, outbox=outbox or env.box()
        )


def test_release_then_download_by_requester_and_pi(env: ExportEnv, project: str, tmp_path: Path) -> None:
    request_id = make_request(env, ExportState.RELEASED)
    result = download(env, request_id, "bob", tmp_path / "bob")
    data = (tmp_path / "bob" / "files" / "table.csv").read_bytes()
    assert data == GOOD_CSV.encode()
    manifest = json.loads((tmp_path / "bob" / "manifest.json").read_text())
    assert manifest["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert [v["reviewer"] for v in manifest["files"][0]["votes"]] == ["rev1", "rev2", "rev3"]
    assert all(v["signature_valid"] for v in manifest["files"][0]["votes"])
    assert (
        manifest["decision"]["state"] == "approved" and manifest["digest"] == env.request(request_id).digest
    )
    public = manifest["signature"]["public_key"]
    assert releasing.manifest_valid(manifest, public)
    assert not releasing.manifest_valid({**manifest, "requester": "eve"}, public)
    assert result["manifest"].endswith("manifest.json")
    download(env, request_id, "alice", tmp_path / "alice")
    assert env.audit_actions(request_id)[-2:] == ["export.download", "export.download"]
    with pytest.raises(BadInput):
        download(env, request_id, "bob", tmp_path / "bob")  # never overwrites


@pytest.mark.parametrize("user", ["rev1", "mallory", "carl"])
def test_nobody_else_downloads(env: ExportEnv, user: str, tmp_path: Path) -> None:
    make_project(env, extra_members=[("carl", "analyst")])
    request_id = make_request(env, ExportState.RELEASED)
    with pytest.raises(Forbidden) as info:
        download(env, request_id, user, tmp_path / "out")
    assert info.value.code == "export_not_recipient"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("state", [ExportState.IN_REVIEW, ExportState.APPROVED, ExportState.REJECTED])
def test_nothing_is_downloaded_before_release(
    env: ExportEnv, project: str, state: ExportState, tmp_path: Path
) -> None:
    request_id = make_request(env, state)
    with pytest.raises(Forbidden) as info:
        download(env, request_id, "bob", tmp_path / "out")
    assert info.value.code == "export_not_released"


def test_release_is_by_a_reviewer_or_steward_never_the_requester(env: ExportEnv, project: str) -> None:
    request_id = make_request(env, ExportState.APPROVED)
    for user, code in (("bob", "export_self_review"), ("alice", "export_not_releaser")):
        with pytest.raises(Forbidden) as info:
            release(env, request_id, user)
        assert info.value.code == code
    env.settings = env.settings.model_copy(update={"stewards": ("steward",)})
    assert release(env, request_id, "steward")["state"] == "released"
    with pytest.raises(Forbidden) as again:
        release(env, request_id, "rev1")
    assert again.value.code == "export_state_invalid"


def test_release_needs_an_approved_request(env: ExportEnv, project: str) -> None:
    request_id = make_request(env, ExportState.IN_REVIEW)
    with pytest.raises(Forbidden) as info:
        release(env, request_id)
    assert info.value.code == "export_state_invalid"


def test_a_file_tampered_with_after_approval_is_never_released(env: ExportEnv, project: str) -> None:
    request_id = make_request(env, ExportState.APPROVED)
    with env.session() as s:
        from export_review.repository import get_request

        stored = file_store(env.paths).path_for(get_request(s, request_id).files[0].sha256)
    os.chmod(stored, 0o640)
    stored.write_text("dx,n\nI10,1\n")
    with pytest.raises(Refused) as info:
        release(env, request_id)
    assert info.value.code == "export_file_tampered"
    assert env.state(request_id) == "approved"
    assert not env.paths.outbox.exists() or not any(env.paths.outbox.rglob("*.csv"))


def test_a_file_tampered_with_in_the_outbox_is_never_downloaded(
    env: ExportEnv, project: str, tmp_path: Path
) -> None:
    request_id = make_request(env, ExportState.RELEASED)
    [copy] = env.paths.outbox.rglob("table.csv")
    copy.write_text("dx,n\nI10,1\n")
    with pytest.raises(Refused) as info:
        download(env, request_id, "bob", tmp_path / "out")
    assert info.value.code == "export_file_tampered"
    assert not (tmp_path / "out" / "files" / "table.csv").exists()
    assert "export.download" not in env.audit_actions(request_id)


class CrashingOutbox(LocalOutbox):
    """Fails after ``puts`` writes, like an outbox that went away in the middle of publishing."""

    def __init__(self, root: Path, puts: int) -> None:
        super().__init__(root)
        self.left = puts

    def put(self, key: str, data: bytes) -> None:
        if self.left == 0:
            raise OSError("crash")
        self.left -= 1
        super().put(key, data)


@pytest.mark.parametrize("puts", [0, 1, 2])  # two files and the manifest
def test_a_crash_in_the_middle_of_publishing(env: ExportEnv, project: str, puts: int, tmp_path: Path) -> None:
    """Publishing follows the commit: the release stands, and its outbox copy is completed later."""
    request_id = make_request(
        env, ExportState.APPROVED, files={"a.csv": GOOD_CSV, "b.csv": GOOD_CSV + "X,50\n"}
    )
    release(env, request_id, outbox=CrashingOutbox(env.paths.outbox, puts))
    assert env.state(request_id) == "released"
    assert env.audit_actions(request_id).count("export.release") == 1
    request = env.request(request_id)
    assert not (env.paths.outbox / releasing.prefix_of(request) / releasing.MANIFEST).exists()
    with env.session() as s:  # what the service does when it starts
        assert releasing.complete_releases(s, env.paths, env.box()) == [request_id]
        assert releasing.complete_releases(s, env.paths, env.box()) == []
    download(env, request_id, "bob", tmp_path / "out")
    got = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    assert got == ["files", "files/a.csv", "files/b.csv", "manifest.json"]
    assert env.audit_actions(request_id).count("export.release") == 1


def test_a_download_completes_an_unfinished_outbox_copy(env: ExportEnv, project: str, tmp_path: Path) -> None:
    request_id = make_request(env, ExportState.APPROVED, files={"a.csv": GOOD_CSV})
    release(env, request_id, outbox=CrashingOutbox(env.paths.outbox, 1))
    download(env, request_id, "bob", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["a.csv", "files", "manifest.json"]


def test_a_crash_before_commit_leaves_the_outbox_untouched(env: ExportEnv, project: str, monkeypatch) -> None:
    request_id = make_request(env, ExportState.APPROVED)

    def die(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt("crash before commit")

    monkeypatch.setattr(releasing, "set_state", die)
    with pytest.raises(KeyboardInterrupt):
        release(env, request_id)
    monkeypatch.undo()
    assert env.state(request_id) == "approved"
    assert not (env.paths.outbox / releasing.prefix_of(env.request(request_id))).exists()
    release(env, request_id)
    assert env.audit_actions(request_id).count("export.release") == 1


def test_downloads_are_refused_while_the_project_is_suspended(
    env: ExportEnv, project: str, tmp_path: Path
) -> None:
    from sqlalchemy import update

    from enclave.db.models import Project

    request_id = make_request(env, ExportState.RELEASED)
    with env.session() as s:
        s.execute(update(Project).values(state="suspended"))
    with pytest.raises(Forbidden) as info:
        download(env, request_id, "bob", tmp_path / "out")
    assert info.value.code == "export_frozen"
