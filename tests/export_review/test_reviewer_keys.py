"""Reviewer-held keys (issue #14 item 4): a reviewer registers their own public key, and from then on
only votes signed with it count; the enclave's copy of a key can no longer sign for them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from enclave import audit, committee_keys, signing
from enclave.cli import export
from enclave.db.models import ExportVote, ReviewerKey
from enclave.errors import EnclaveError, Forbidden, Refused
from export_review import voting
from export_review.service import ExportService
from export_review.web import actions
from tests.export_review.factories import GOOD_CSV, ExportEnv, cast, make_project, release, submit


def service(env: ExportEnv) -> ExportService:
    return ExportService(env.sessions, env.paths)


def own_key(env: ExportEnv, reviewer: str, name: str = "key") -> signing.Ed25519PrivateKey:
    key = signing.generate_key_file(env.work / f"{reviewer}-{name}.pem")
    service(env).register_key(reviewer=reviewer, public_key=signing.public_key_hex(key), user=reviewer)
    return key


def vote_with(env: ExportEnv, request_id: str, user: str, key: signing.Ed25519PrivateKey | None) -> dict:
    return service(env).vote(request_id, user=user, choice="approve", private_key=key)


def forge_vote(
    s: Session, genuine: ExportVote, reviewer: str, key: signing.Ed25519PrivateKey, *, created_at: str
) -> None:
    """What someone who reads the vault and writes the database does: a vote in ``reviewer``'s name on
    ``genuine``'s file, signed with ``key`` and dated ``created_at``."""
    forged = ExportVote(
        request_id=genuine.request_id,
        file_id=genuine.file_id,
        reviewer=reviewer,
        choice="approve",
        public_key=signing.public_key_hex(key),
        signature="",
        created_at=created_at,
    )
    forged.file = genuine.file
    forged.signature = signing.sign(key, voting._message(genuine.request, genuine.file, forged))
    s.add(forged)


@pytest.fixture
def cli(env: ExportEnv, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    make_project(env)
    monkeypatch.setenv("ENCLAVE_HOME", str(env.paths.home))
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", str(env.sessions.kw["bind"].url))
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> dict:
        result = runner.invoke(export.app, [*args, "--json"])
        assert result.exit_code == code, result.output
        return json.loads(result.stdout)

    return run


def test_a_reviewer_signs_with_their_own_key_from_the_cli(cli, env: ExportEnv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key_file = tmp_path / "rev1.pem"
    made = cli("key", "generate", "--out", str(key_file))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert signing.parse_public_key(Path(made["public_key_file"]).read_bytes()) == made["public_key"]
    assert cli("key", "generate", "--out", str(key_file), code=2)["error"]["code"] == "key_file_exists"
    registered = cli(
        "key", "register", "--reviewer", "rev1", "--public-key", made["public_key_file"], "--user", "rev1"
    )
    assert registered["fingerprint"] == made["fingerprint"] == signing.fingerprint(made["public_key"])

    request_id = cli(
        "submit", "--project", "cardio-2026", "--user", "bob", "--justification", "T1",
        str(env.write("table.csv", GOOD_CSV)),
    )["request"]  # fmt: skip
    ok = ("--override", "read by hand")
    refused = cli("vote", request_id, "approve", "--user", "rev1", *ok, code=4)
    assert refused["error"]["code"] == "export_vote_key_required" and refused["error"]["message_zh"]
    cli("vote", request_id, "approve", "--user", "rev1", *ok, "--key", str(key_file))
    other = tmp_path / "rev2.pem"
    cli("key", "generate", "--out", str(other))
    unregistered = cli("vote", request_id, "approve", "--user", "rev2", *ok, "--key", str(other), code=4)
    assert unregistered["error"]["code"] == "export_key_not_registered"
    cli("vote", request_id, "approve", "--user", "rev2", *ok)  # server-held, the default
    assert cli("vote", request_id, "approve", "--user", "rev3", *ok)["state"] == "approved"
    cli("release", request_id, "--user", "rev2")
    cli("download", request_id, "--user", "bob", "--out", str(tmp_path / "out"))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    kinds = {v["reviewer"]: (v["key_kind"], v["key_fingerprint"]) for v in manifest["files"][0]["votes"]}
    assert kinds["rev1"] == ("reviewer-held", made["fingerprint"])
    assert kinds["rev2"][0] == kinds["rev3"][0] == "server-held"
    assert all(v["signature_valid"] for v in manifest["files"][0]["votes"])
    with env.session() as s:
        events = [e for e in audit.tail(s, limit=1000) if e.action == "export.key_register"]
    assert [(e.actor, e.object, e.outcome) for e in events] == [("rev1", "reviewer:rev1", "success")]


def test_a_key_file_others_can_read_is_refused(env: ExportEnv) -> None:
    path = env.work / "loose.pem"
    signing.generate_key_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(EnclaveError) as info:
        signing.load_key_file(path)
    assert info.value.code == "key_file_permissions"
    with pytest.raises(EnclaveError) as bad:
        signing.parse_public_key(b"not a key")
    assert bad.value.code == "public_key_invalid"


def test_the_server_held_key_cannot_sign_for_a_reviewer_with_their_own(any_env: ExportEnv) -> None:
    """Someone who reads the vault signs in rev1's name with the vault key: the vote does not count."""
    env = any_env
    make_project(env)
    request_id = submit(env)
    cast(env, request_id, "rev1")  # cast with the server-held key, before rev1 had their own
    own_key(env, "rev1")
    cast(env, request_id, "rev2")
    vault = signing.load_or_create_key(committee_keys.keys_dir(env.paths), "rev3")
    own_key(env, "rev3")
    with pytest.raises(Forbidden) as web:  # what the web UI does: no key of the reviewer's own
        service(env).vote(request_id, user="rev3", choice="approve")
    assert web.value.code == "export_vote_key_required"
    with env.session() as s:
        genuine = s.scalars(select(ExportVote).where(ExportVote.reviewer == "rev2")).one()
        forge_vote(s, genuine, "rev3", vault, created_at=audit.now_iso())  # after rev3's registration
        s.flush()
        s.execute(text("UPDATE export_requests SET state = 'approved'"))
        checks = {v.reviewer: voting.check_vote(s, env.paths, v.request, v) for v in genuine.request.votes}
    assert checks["rev1"].valid and checks["rev1"].key_kind == "server-held"  # cast while it was in force
    assert checks["rev2"].valid
    assert not checks["rev3"].valid and checks["rev3"].key_kind == "reviewer-held"
    with pytest.raises(Refused) as info:
        service(env).release(request_id, user="rev1")
    assert info.value.code == "export_approval_unverified"


def test_rotation_keeps_earlier_votes_and_retires_the_old_key(env: ExportEnv) -> None:
    make_project(env)
    first = submit(env)
    old = own_key(env, "rev1", "old")
    vote_with(env, first, "rev1", old)
    new = own_key(env, "rev1", "new")
    for reviewer in ("rev2", "rev3"):
        cast(env, first, reviewer)
    assert env.state(first) == "approved"
    assert release(env, first)["state"] == "released"  # the vote signed with the old key still counts

    second = submit(env, {"other.csv": GOOD_CSV})
    with pytest.raises(Forbidden) as info:
        vote_with(env, second, "rev1", old)
    assert info.value.code == "export_vote_key_mismatch"
    assert vote_with(env, second, "rev1", new)["voted"] == ["other.csv"]
    with env.session() as s:
        fingerprints = [r.fingerprint for r in voting.registrations(s, "rev1")]
        replaced = [e for e in s.execute(text("SELECT details_json FROM audit_events"))]
    assert fingerprints == [signing.fingerprint(signing.public_key_hex(k)) for k in (old, new)]
    assert any(json.loads(d[0]).get("replaces") == fingerprints[0] for d in replaced)


def test_a_key_row_written_into_the_database_is_not_trusted(any_env: ExportEnv) -> None:
    """Registrations are trusted from the vault's registry only: a row added to the database's
    mirror names no key that counts, and deleting the mirror does not bring the server-held key back."""
    env = any_env
    make_project(env)
    request_id = submit(env)
    intruder = signing.generate_key_file(env.work / "intruder.pem")
    public = signing.public_key_hex(intruder)
    with env.session() as s:
        s.add(
            ReviewerKey(
                reviewer="rev1",
                public_key=public,
                fingerprint=signing.fingerprint(public),
                registered_at="2000-01-01T00:00:00+00:00",
                registered_by="rev1",
                signature="00" * 64,
            )
        )
    with pytest.raises(Forbidden) as info:
        vote_with(env, request_id, "rev1", intruder)
    assert info.value.code == "export_key_not_registered"
    with pytest.raises(DBAPIError), env.session() as s:  # the mirror is write-once too
        s.execute(text("DELETE FROM export_reviewer_keys"))

    own_key(env, "rev2")
    with env.session() as s:  # an intruder with write access drops the trigger and empties the mirror
        if s.get_bind().dialect.name == "sqlite":
            s.execute(text("DROP TRIGGER export_reviewer_keys_no_delete"))
        else:
            s.execute(text("DROP TRIGGER export_reviewer_keys_write_once ON export_reviewer_keys"))
        s.execute(text("DELETE FROM export_reviewer_keys"))
    with pytest.raises(Forbidden) as fallback:  # the registry in the vault still says rev2 holds a key
        vote_with(env, request_id, "rev2", None)
    assert fallback.value.code == "export_vote_key_required"


def test_a_backdated_server_held_vote_does_not_count(any_env: ExportEnv) -> None:
    """Someone who reads the vault and writes the database signs in rev1's name with the vault key and
    dates the vote before rev1 registered their own: it is not one of the votes the registry kept."""
    env = any_env
    make_project(env)
    request_id = submit(env)
    cast(env, request_id, "rev2")  # before rev2 registers: kept by the registration
    own_key(env, "rev1")
    own_key(env, "rev2")
    vault = signing.load_or_create_key(committee_keys.keys_dir(env.paths), "rev1")
    with env.session() as s:
        genuine = s.scalars(select(ExportVote).where(ExportVote.reviewer == "rev2")).one()
        forge_vote(s, genuine, "rev1", vault, created_at="2000-01-01T00:00:00+00:00")  # long before rev1's
        s.flush()
        checks = {v.reviewer: voting.check_vote(s, env.paths, v.request, v) for v in genuine.request.votes}
    assert checks["rev2"].valid and checks["rev2"].key_kind == "server-held"  # kept by the registry
    assert not checks["rev1"].valid


def test_who_may_register_a_key(env: ExportEnv) -> None:
    make_project(env)
    public = signing.public_key_hex(signing.generate_key_file(env.work / "k.pem"))
    with pytest.raises(Forbidden) as info:
        service(env).register_key(reviewer="rev1", public_key=public, user="rev2")
    assert info.value.code == "export_key_register_forbidden"
    (env.paths.home / "export-review.yaml").write_text("stewards: [steward]\n")
    assert service(env).register_key(reviewer="rev1", public_key=public, user="steward")["replaces"] is None
    with pytest.raises(EnclaveError) as again:
        service(env).register_key(reviewer="rev1", public_key=public, user="rev1")
    assert again.value.code == "export_key_already_registered"


def test_the_web_page_does_not_offer_to_sign_for_a_reviewer_with_their_own_key(env: ExportEnv) -> None:
    make_project(env)
    request_id = submit(env)
    assert not actions.abilities(service(env), request_id, "rev1").own_key
    own_key(env, "rev1")
    can = actions.abilities(service(env), request_id, "rev1")
    assert can.vote and can.own_key
    from export_review.web.i18n import Translator

    assert "命令行" in Translator("zh")("vote_own_key") and "command line" in Translator("en")("vote_own_key")


def test_the_registry_lives_in_the_vault_and_fails_closed(env: ExportEnv) -> None:
    make_project(env)
    request_id = submit(env)
    own_key(env, "rev1")
    registry = committee_keys.registry_path(env.paths)
    assert stat.S_IMODE(registry.stat().st_mode) == 0o600
    assert [json.loads(line)["reviewer"] for line in registry.read_text().splitlines()] == ["rev1"]
    # A line that does not verify names the reviewer but no key: nothing signs for them any more.
    with registry.open("a") as out:
        out.write(json.dumps({"reviewer": "rev3", "public_key": "ab" * 32, "signature": "00" * 64}) + "\n")
    assert committee_keys.anchored_registrations(env.paths, "rev3")[0].public_key == ""
    with pytest.raises(Forbidden) as info:
        vote_with(env, request_id, "rev3", None)
    assert info.value.code == "export_vote_key_required"
