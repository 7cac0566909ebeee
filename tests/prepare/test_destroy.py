"""Destruction of a project's workspace data and its signed certificate (R-LIFE-2, R-LIFE-4)."""

from __future__ import annotations

import json

import pytest

from enclave import signing
from enclave.errors import BadInput, NotFound
from enclave.prepare.build import current_views_db, prepare_workspace
from enclave.prepare.certificate import DestroyedItem
from enclave.prepare.destroy import DestructionFailed, destroy_workspace, verify_certificate
from enclave.prepare.secrets import create_secrets, load_secrets, secrets_dir
from tests.harness.planted import project_spec


@pytest.fixture
def prepared(paths, source_files):
    first = prepare_workspace(paths, project_spec(), source_files, version=1)
    second = prepare_workspace(paths, project_spec(), source_files, version=2)
    return first, second


def test_destroy_deletes_everything_and_certifies_it(paths, prepared):
    first, second = prepared
    calls: list[str] = []

    def volumes(project_id: str) -> list:
        calls.append(project_id)
        return [DestroyedItem("volume", f"enclave-home-{project_id}-bob"), {"kind": "volume", "name": "v2"}]

    cert = destroy_workspace(paths, "cardio-2026", actor="steward", volume_destroyers=[volumes])
    assert calls == ["cardio-2026"]
    assert not paths.project_dir("cardio-2026").exists()
    assert not secrets_dir(paths, "cardio-2026").exists()
    with pytest.raises(NotFound):
        current_views_db(paths, "cardio-2026")
    with pytest.raises(NotFound):
        load_secrets(paths, "cardio-2026")

    assert cert.path == paths.home / "certificates" / "cardio-2026-destruction.json"
    assert verify_certificate(cert.path)
    public = signing.public_key_hex(signing.load_or_create_key(paths.vault / "keys"))
    assert verify_certificate(cert.path, expected_public_key=public)
    assert not verify_certificate(cert.path, expected_public_key="00" * 32)

    document = json.loads(cert.path.read_text())
    assert document["project"] == "cardio-2026" and document["actor"] == "steward"
    by_kind: dict[str, list[dict]] = {}
    for item in document["items"]:
        by_kind.setdefault(item["kind"], []).append(item)
    assert {i["name"] for i in by_kind["volume"]} == {"enclave-home-cardio-2026-bob", "v2"}
    assert len(by_kind["secret"]) == 1 and by_kind["secret"][0]["sha256"]
    hashes = {i["name"]: i["sha256"] for i in by_kind["file"]}
    for report in (first, second):  # both versions, with the hashes preparation reported
        for name in ("patients", "visits"):
            relative = str((report.prepared_dir / f"{name}.parquet").relative_to(paths.home))
            assert hashes[relative] == report.datasets[name].prepared_sha256
        assert str(report.twin_db.relative_to(paths.home)) in hashes
    assert all(i["destroyed_at"] for i in document["items"])
    assert cert.to_dict()["signature"] == document["signature"]


def test_tampered_certificate_fails_verification(paths, prepared, tmp_path):
    cert = destroy_workspace(paths, "cardio-2026", actor="steward")
    document = json.loads(cert.path.read_text())
    document["items"] = document["items"][1:]
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    assert not verify_certificate(forged)
    for junk in ("", "[]", "{}", '{"public_key": 1, "signature": 2}'):
        forged.write_text(junk)
        assert not verify_certificate(forged)
    assert not verify_certificate(tmp_path / "absent.json")


def test_unknown_project_is_not_found(paths):
    with pytest.raises(NotFound) as error:
        destroy_workspace(paths, "never-was", actor="steward")
    assert error.value.code == "workspace_not_found" and error.value.message_zh
    assert not (paths.home / "certificates").exists()
    with pytest.raises(BadInput):
        destroy_workspace(paths, "../vault", actor="steward")


def test_destroying_twice_is_not_found_and_keeps_the_certificate(paths, prepared):
    cert = destroy_workspace(paths, "cardio-2026", actor="steward")
    with pytest.raises(NotFound):
        destroy_workspace(paths, "cardio-2026", actor="steward")
    assert verify_certificate(cert.path)


def test_a_second_destruction_never_overwrites_the_first_certificate(paths, source_files):
    first = prepare_workspace(paths, project_spec(), source_files, version=1)
    assert first
    a = destroy_workspace(paths, "cardio-2026", actor="steward")
    prepare_workspace(paths, project_spec(), source_files, version=1)
    b = destroy_workspace(paths, "cardio-2026", actor="steward")
    assert a.path != b.path and verify_certificate(a.path) and verify_certificate(b.path)


def test_failing_volume_destroyer_deletes_nothing(paths, prepared):
    def broken(project_id: str) -> list:
        raise RuntimeError("docker is down")

    with pytest.raises(DestructionFailed) as error:
        destroy_workspace(paths, "cardio-2026", actor="steward", volume_destroyers=[broken])
    assert error.value.code == "destruction_failed" and error.value.message_zh
    assert current_views_db(paths, "cardio-2026").exists()
    assert load_secrets(paths, "cardio-2026")
    assert not (paths.home / "certificates" / "cardio-2026-destruction.json").exists()


def test_secrets_only_project_can_be_destroyed(paths):
    create_secrets(paths, "cardio-2026")
    cert = destroy_workspace(paths, "cardio-2026", actor="steward")
    assert [i.kind for i in cert.items] == ["secret", "directory"]


def test_destruction_reports_each_step_before_it_runs(paths, prepared):
    steps: list[tuple[str, int, int]] = []
    destroy_workspace(
        paths,
        "cardio-2026",
        actor="steward",
        volume_destroyers=[lambda _pid: []],
        database_destroyers=[lambda _pid: [], lambda _pid: []],
        progress=lambda *step: steps.append(step),
    )
    names = ["volumes", "objects", "files", "secrets", "records", "records", "certificate", "destroyed"]
    assert steps == [(name, done, 7) for done, name in enumerate(names)]
