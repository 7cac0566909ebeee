"""The S3 outbox against a real S3-compatible server (moto) on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from enclave.errors import NotFound, Refused
from export_review import release as releasing
from export_review.outbox import S3Outbox, outbox_for
from export_review.policy import OutboxSettings
from export_review.workflow import ExportState
from tests.export_review.factories import GOOD_CSV, ExportEnv, make_request

pytest.importorskip("minio")
moto_server = pytest.importorskip("moto.server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_outbox(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, env: ExportEnv) -> S3Outbox:
    monkeypatch.setenv("ENCLAVE_S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("ENCLAVE_S3_SECRET_KEY", "testing-secret")
    settings = OutboxSettings(
        url="s3://enclave-outbox/site-a", endpoint=s3_endpoint, secure=False, region="us-east-1"
    )
    outbox = outbox_for(settings, env.paths)
    assert isinstance(outbox, S3Outbox)
    if not outbox.client.bucket_exists("enclave-outbox"):
        outbox.client.make_bucket("enclave-outbox")
    return outbox


def test_release_and_download_through_s3(
    env: ExportEnv, project: str, s3_outbox: S3Outbox, tmp_path: Path
) -> None:
    env.outbox = s3_outbox
    request_id = make_request(env, ExportState.RELEASED)
    info = env.request(request_id).release_json
    assert info and "s3://enclave-outbox/site-a/cardio-2026/" in info
    assert s3_outbox.get(f"cardio-2026/{request_id}/files/table.csv") == GOOD_CSV.encode()
    assert not env.paths.outbox.exists()  # nothing went to the local folder
    with env.session() as s:
        releasing.download(s, env.paths, request_id, user="bob", out_dir=tmp_path / "out", outbox=s3_outbox)
    assert (tmp_path / "out" / "files" / "table.csv").read_text() == GOOD_CSV


def test_tampering_in_the_bucket_is_caught(
    env: ExportEnv, project: str, s3_outbox: S3Outbox, tmp_path: Path
) -> None:
    env.outbox = s3_outbox
    request_id = make_request(env, ExportState.RELEASED)
    s3_outbox.put(f"cardio-2026/{request_id}/files/table.csv", b"dx,n\nI10,1\n")
    with env.session() as s, pytest.raises(Refused):
        releasing.download(s, env.paths, request_id, user="bob", out_dir=tmp_path / "out", outbox=s3_outbox)
    with pytest.raises(NotFound):
        s3_outbox.get("cardio-2026/nothing/manifest.json")
