"""Release and download recompute the decision from verified votes (issue #14 item 3), and released
files sit under ``files/`` so no file name can collide with the manifest (item 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, text

from enclave import signing
from enclave.committee_keys import keys_dir
from enclave.db.models import ExportVote
from enclave.errors import BadInput, EnclaveError, Refused
from export_review import release as releasing
from export_review.service import ExportService
from export_review.workflow import ExportState
from tests.export_review.factories import (
    GOOD_CSV,
    ExportEnv,
    cast,
    make_project,
    make_request,
    release,
    submit,
)

UNVERIFIED = "export_approval_unverified"


def service(env: ExportEnv) -> ExportService:
    return ExportService(env.sessions, env.paths)


def raw(env: ExportEnv, *statements: str, **params: object) -> None:
    """Write straight to the database, past the write-once triggers, as an intruder with SQL would."""
    with env.session() as s:
        dialect = s.get_bind().dialect.name
        if dialect == "sqlite":
            s.execute(text("DROP TRIGGER IF EXISTS export_votes_no_update"))
        else:
            s.execute(text("ALTER TABLE export_votes DISABLE TRIGGER export_votes_write_once"))
        for statement in statements:
            s.execute(text(statement), params)


def refused_codes(env: ExportEnv, request_id: str) -> list[tuple[str, str]]:
    from enclave import audit

    with env.session() as s:
        return [
            (e.action, json.loads(e.details_json)["code"])
            for e in audit.tail(s, limit=1000)
            if e.object == f"export:{request_id}" and e.outcome == "refused"
        ]


def forge_release(env: ExportEnv, request_id: str) -> None:
    """What a releaser that trusted the state column wrote: outbox objects and a signed manifest."""
    with env.session() as s:
        from export_review.repository import get_request
        from export_review.submission import file_store

        request = get_request(s, request_id)
        box = env.box()
        prefix = releasing.prefix_of(request)
        for f in request.files:
            box.put(f"{prefix}/files/{f.name}", file_store(env.paths).path_for(f.sha256).read_bytes())
        manifest = releasing.build_manifest(env.paths, request, released_by="rev1", released_at="now")
        data = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode()
        box.put(f"{prefix}/{releasing.MANIFEST}", data)
        info = json.dumps({"manifest_sha256": releasing._sha(data)})
    raw(env, "UPDATE export_requests SET state = 'released', release_json = :info", info=info)


def test_a_forged_state_is_neither_released_nor_downloaded(any_env: ExportEnv, tmp_path: Path) -> None:
    env = any_env
    make_project(env)
    request_id = submit(env)
    cast(env, request_id, "rev1")  # one genuine approval of the three needed
    raw(env, "UPDATE export_requests SET state = 'approved'")
    with pytest.raises(Refused) as info:
        service(env).release(request_id, user="rev1")
    assert info.value.code == UNVERIFIED and info.value.message_zh
    assert env.state(request_id) == "approved" and not env.paths.outbox.exists()
    assert refused_codes(env, request_id) == [("export.release", UNVERIFIED)]

    forge_release(env, request_id)
    with pytest.raises(Refused) as again:
        service(env).download(request_id, user="bob", out_dir=tmp_path / "out")
    assert again.value.code == UNVERIFIED
    assert not (tmp_path / "out").exists()
    assert refused_codes(env, request_id)[-1] == ("export.download", UNVERIFIED)


COPY_REV2_AS_REV3 = """INSERT INTO export_votes
    (request_id, file_id, reviewer, choice, comment, override_reason, public_key, signature, created_at)
    SELECT request_id, file_id, 'rev3', choice, comment, override_reason, public_key, signature, created_at
    FROM export_votes WHERE reviewer = 'rev2'"""


@pytest.mark.parametrize(
    ("third", "forgery"),
    [
        ("reject", "UPDATE export_votes SET choice = 'approve', comment = NULL WHERE reviewer = 'rev3'"),
        (None, COPY_REV2_AS_REV3),  # a vote in rev3's name with rev2's signature
    ],
)
def test_a_forged_vote_row_does_not_release(any_env: ExportEnv, third: str | None, forgery: str) -> None:
    env = any_env
    make_project(env)  # three seated: all three must approve
    request_id = submit(env)
    cast(env, request_id, "rev1")
    cast(env, request_id, "rev2")
    if third:
        cast(env, request_id, "rev3", third)
    raw(env, forgery, "UPDATE export_requests SET state = 'approved'")
    with pytest.raises(Refused) as info:
        service(env).release(request_id, user="rev1")
    assert info.value.code == UNVERIFIED
    assert refused_codes(env, request_id) == [("export.release", UNVERIFIED)]


def test_a_vote_with_a_valid_signature_by_the_wrong_key_does_not_count(env: ExportEnv) -> None:
    make_project(env)
    request_id = make_request(env, ExportState.APPROVED)
    intruder = signing.load_or_create_key(env.paths.home / "intruder", "rev3")
    with env.session() as s:
        vote = s.scalars(select(ExportVote).where(ExportVote.reviewer == "rev3")).one()
        from export_review.voting import _message

        signature = signing.sign(intruder, _message(vote.request, vote.file, vote))
    raw(
        env,
        "UPDATE export_votes SET public_key = :key, signature = :sig WHERE reviewer = 'rev3'",
        key=signing.public_key_hex(intruder),
        sig=signature,
    )
    with pytest.raises(Refused) as info:
        release(env, request_id)
    assert info.value.code == UNVERIFIED


@pytest.mark.parametrize(
    "forgery",
    [
        "UPDATE export_requests SET justification = 'something else'",  # the digest no longer matches
        "UPDATE export_requests SET digest = '" + "0" * 64 + "'",  # votes signed a different digest
        "UPDATE export_requests SET decision_json = NULL",  # no signed decision
    ],
)
def test_a_forged_request_row_does_not_release(env: ExportEnv, forgery: str) -> None:
    make_project(env)
    request_id = make_request(env, ExportState.APPROVED)
    raw(env, forgery)
    with pytest.raises(Refused) as info:
        release(env, request_id)
    assert info.value.code == UNVERIFIED


def test_a_weakened_recorded_rule_does_not_release(env: ExportEnv) -> None:
    """Rewriting the recorded committee (two members, so two approvals suffice) breaks its signature."""
    make_project(env)
    request_id = submit(env)
    cast(env, request_id, "rev1")
    cast(env, request_id, "rev2")
    cast(env, request_id, "rev3", "reject")
    assert env.state(request_id) == "rejected"
    decision = json.loads(env.request(request_id).decision_json or "{}")
    decision["committee"] = ["rev1", "rev2"]
    decision["state"] = "approved"
    raw(
        env,
        "UPDATE export_requests SET state = 'approved', decision_json = :d",
        d=json.dumps(decision),
    )
    with pytest.raises(Refused) as info:
        release(env, request_id)
    assert info.value.code == UNVERIFIED


def test_tampering_after_release_stops_the_download(env: ExportEnv, tmp_path: Path) -> None:
    make_project(env)
    request_id = make_request(env, ExportState.RELEASED)
    raw(env, "UPDATE export_votes SET comment = 'added later' WHERE reviewer = 'rev2'")
    with pytest.raises(Refused) as info:
        service(env).download(request_id, user="bob", out_dir=tmp_path / "out")
    assert info.value.code == UNVERIFIED
    assert refused_codes(env, request_id) == [("export.download", UNVERIFIED)]


def test_a_file_named_manifest_json_is_released_and_downloaded(env: ExportEnv, tmp_path: Path) -> None:
    make_project(env)
    files = {"manifest.json": '{"n": 25}', "table.csv": GOOD_CSV}
    request_id = make_request(env, ExportState.RELEASED, files=files)
    result = service(env).download(request_id, user="bob", out_dir=tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "files" / "manifest.json").read_text() == '{"n": 25}'
    assert (out / "files" / "table.csv").read_text() == GOOD_CSV
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["request"] == request_id and {f["name"] for f in manifest["files"]} == set(files)
    assert sorted(result["files"]) == sorted(str(out / "files" / n) for n in files)
    assert result["manifest"] == str(out / "manifest.json")


def test_the_web_zip_keeps_files_apart_from_the_manifest(env: ExportEnv) -> None:
    import io
    import zipfile

    from export_review.web import actions

    make_project(env)
    request_id = make_request(env, ExportState.RELEASED, files={"manifest.json": '{"n": 25}'})
    _name, data = actions.download_zip(service(env), request_id, user="bob")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["files/manifest.json", "manifest.json"]
        assert archive.read("files/manifest.json") == b'{"n": 25}'
        assert json.loads(archive.read("manifest.json"))["request"] == request_id


@pytest.mark.parametrize(
    ("names", "code"),
    [
        (["x.csv."], "export_file_name_invalid"),  # a trailing dot is dropped on Windows
        (["x.csv "], "export_file_name_invalid"),
        (["CON.csv"], "export_file_name_invalid"),  # a Windows device name
        (["..", "x.csv"], "export_file_name_invalid"),
        (["table.csv", "TABLE.CSV"], "export_file_name_repeated"),  # one file on a case-blind disk
    ],
)
def test_names_that_cannot_be_written_apart_are_refused_at_submission(
    env: ExportEnv, names: list[str], code: str
) -> None:
    make_project(env)
    paths = []
    for index, name in enumerate(names):
        folder = env.work / str(index)
        folder.mkdir()
        path = folder / name
        if name != "..":
            path.write_text(GOOD_CSV)
        paths.append(path)
    from export_review import submission

    with pytest.raises(BadInput) as info, env.session() as s:
        submission.submit(
            s,
            env.paths,
            project_id="cardio-2026",
            requester="bob",
            justification="T1",
            files=paths,
            settings=env.settings,
            key_space=lambda _p: env.key_space,
        )
    assert info.value.code == code and info.value.message_zh


def test_the_legitimate_flow_still_releases(any_env: ExportEnv, tmp_path: Path) -> None:
    make_project(any_env)
    request_id = make_request(any_env, ExportState.RELEASED)
    got = service(any_env).download(request_id, user="alice", out_dir=tmp_path / "out")
    assert Path(got["files"][0]).read_text() == GOOD_CSV
    assert isinstance(keys_dir(any_env.paths), Path)
    with pytest.raises(EnclaveError):
        release(any_env, request_id)  # released once
