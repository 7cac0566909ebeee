"""Where released files go: a local folder by default, an S3 bucket (MinIO or any S3) in production.

Each object is written whole or not at all (a local file goes to a temporary name, is synced and
renamed; an S3 PUT is atomic), and writes are idempotent (same key, same bytes). A release is
published only after its commit, files first and the manifest last, so a manifest in the outbox
means a complete, recorded release (``export_review.release``). Keys are built by the service from
validated names, never from user paths.
"""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import Protocol

from enclave.config import OUTBOX_MODE, Paths, read_secret_file
from enclave.errors import BadInput, NotFound
from export_review.policy import OutboxSettings


class Outbox(Protocol):
    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def location(self, key: str) -> str: ...


def _missing(key: str) -> NotFound:
    return NotFound("outbox_object_missing", f"{key} is not in the outbox", f"发件箱中没有 {key}")


def _safe_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise BadInput("outbox_key_invalid", f"Invalid outbox key {key!r}", f"发件箱键无效：{key!r}")
    return key


class LocalOutbox:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        # Explicit modes: the services run with umask 077, which would cut these to 0700/0600.
        for folder in reversed(path.relative_to(self.root).parents):  # the outbox itself first
            target = self.root / folder
            if not target.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, OUTBOX_MODE)
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        os.fchmod(fd, 0o640)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise _missing(key)
        return path.read_bytes()

    def location(self, key: str) -> str:
        return str(self._path(key))


class S3Outbox:
    """An S3 bucket through the ``minio`` client; ``prefix`` keeps this enclave's objects apart."""

    def __init__(self, client, bucket: str, prefix: str = "") -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        key = _safe_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(self.bucket, self._key(key), io.BytesIO(data), len(data))

    def get(self, key: str) -> bytes:
        from minio.error import S3Error

        try:
            response = self.client.get_object(self.bucket, self._key(key))
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                raise _missing(key) from None
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def _credentials_from_file(path: str) -> tuple[str | None, str | None]:
    """``access_key`` and ``secret_key`` from a 0600 YAML file (``read_secret_file`` checks it)."""
    import yaml

    try:
        data = yaml.safe_load(read_secret_file(path))
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        raise BadInput(
            "outbox_credentials_invalid",
            f"{path} must be YAML with access_key and secret_key",
            f"{path} 必须是包含 access_key 和 secret_key 的 YAML",
        )
    access, secret = data.get("access_key"), data.get("secret_key")
    return (str(access) if access else None, str(secret) if secret else None)


def outbox_for(settings: OutboxSettings, paths: Paths) -> Outbox:
    """The configured outbox: the home's outbox folder unless an ``s3://`` URL is set."""
    if settings.url is None:
        return LocalOutbox(paths.outbox)
    from urllib.parse import urlsplit

    from minio import Minio

    if not settings.endpoint:
        raise BadInput(
            "outbox_endpoint_missing", "An S3 outbox needs an endpoint", "S3 发件箱需要配置 endpoint"
        )
    if settings.credentials_file:
        access, secret = _credentials_from_file(settings.credentials_file)
    else:
        access, secret = os.environ.get(settings.access_key_env), os.environ.get(settings.secret_key_env)
    if not access or not secret:
        raise BadInput(
            "outbox_credentials_missing",
            f"Set ${settings.access_key_env} and ${settings.secret_key_env} for the S3 outbox",
            f"请为 S3 发件箱设置 ${settings.access_key_env} 和 ${settings.secret_key_env}",
        )
    parts = urlsplit(settings.url)
    client = Minio(
        settings.endpoint,
        access_key=access,
        secret_key=secret,
        secure=settings.secure,
        region=settings.region,
    )
    return S3Outbox(client, parts.netloc, parts.path)
