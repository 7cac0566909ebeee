"""Where a project's prepared Parquet lives: the vault folder (``storage: local``, the default) or an
S3 bucket (``storage: s3``, MinIO or any S3) for data at scale (issue #13 item 5).

``<home>/enclave.yaml``::

    storage: s3
    s3:
      bucket: enclave-data
      prefix: site-a                 # optional; this enclave's objects stay under it
      endpoint: minio.internal:9000  # host:port, no scheme
      secure: true                   # HTTPS
      region: us-east-1
      url_style: path                # path | vhost
      credentials_file: /srv/enclave/vault/s3-credentials.yaml         # default: <vault>/s3-credentials.yaml
      reader_credentials_file: /srv/enclave/vault/s3-reader.yaml       # the gateway's (read-only) key

A credentials file holds ``access_key: ...`` and ``secret_key: ...``; it must be mode 0600 (or 0400),
and credentials never come from the environment. Objects are named
``<prefix>/projects/<id>/builds/<build>/<dataset>.parquet``, the same build folder names as the
local layout, so a view's URL never changes after it is built. Only the prepared data goes to the
bucket: the views database, the synthetic twin and the report stay in the vault folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from enclave.config import Paths, read_secret_file
from enclave.deid.sql import quote_ident
from enclave.errors import BadInput, Reason
from enclave.files import check_project_id
from enclave.guard.lockdown import S3Access, load_httpfs, secret_sql
from enclave.prepare.layout import REPORT
from enclave.prepare.report import PreparationReport

BUCKET_PATTERN = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
PREFIX_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
ENDPOINT_PATTERN = r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9a-fA-F:]+\](:[0-9]{1,5})?"
UPLOAD_PART_BYTES = 64 * 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class S3Settings(_Strict):
    """The bucket that holds prepared data, and where its credentials are (never the keys)."""

    bucket: str
    prefix: str = ""
    endpoint: str
    secure: bool = True
    region: str = "us-east-1"
    url_style: Literal["path", "vhost"] = "path"
    credentials_file: Path | None = None
    reader_credentials_file: Path | None = None

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not re.fullmatch(BUCKET_PATTERN, value) or ".." in value:
            raise ValueError("bucket must be an S3 bucket name (3-63 of a-z, 0-9, '.', '-')")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix_segments(cls, value: str) -> str:
        value = value.strip("/")
        if value and not all(re.fullmatch(PREFIX_SEGMENT, part) for part in value.split("/")):
            raise ValueError("prefix must be '/'-separated names of A-Z, a-z, 0-9, '.', '_', '-'")
        return value

    @field_validator("endpoint")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if not re.fullmatch(ENDPOINT_PATTERN, value):
            raise ValueError("endpoint must be host[:port] without a scheme or a path")
        return value


class EnclaveSettings(_Strict):
    """``<home>/enclave.yaml``: where prepared data is stored."""

    storage: Literal["local", "s3"] = "local"
    s3: S3Settings | None = None

    @model_validator(mode="after")
    def _s3_needs_bucket(self) -> EnclaveSettings:
        if self.storage == "s3" and self.s3 is None:
            raise ValueError("storage: s3 needs an s3: section (bucket, endpoint, ...)")
        return self


def load_settings(paths: Paths) -> EnclaveSettings:
    """The deployment's settings, or the defaults (local storage) when the file does not exist."""
    source = paths.settings_file
    if not source.exists():
        return EnclaveSettings()
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        return EnclaveSettings.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError, TypeError) as error:
        raise BadInput(
            "enclave_settings_invalid",
            f"{source}: invalid enclave settings",
            f"{source}：enclave 设置无效",
            reasons=[Reason("enclave_settings_invalid", str(error)[:500], "设置校验失败")],
        ) from None


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str = field(repr=False)


def load_credentials(path: Path) -> S3Credentials:
    """``access_key`` and ``secret_key`` from a 0600 YAML file (``read_secret_file`` checks the mode)."""
    text = read_secret_file(path)
    try:
        data = yaml.safe_load(text)
        access, secret = data["access_key"], data["secret_key"]
    except (yaml.YAMLError, KeyError, TypeError):
        data = None
    if data is None or not isinstance(access, str) or not isinstance(secret, str) or not access or not secret:
        raise BadInput(
            "s3_credentials_invalid",
            f"{path} must hold `access_key: ...` and `secret_key: ...`",
            f"{path} 必须包含 `access_key: ...` 和 `secret_key: ...`",
        )
    return S3Credentials(access, secret)


class S3Store:
    """The bucket of prepared data, through the ``minio`` client (uploads, listing, deletion)."""

    def __init__(self, settings: S3Settings, credentials: S3Credentials, reader: S3Credentials) -> None:
        self.settings = settings
        self.credentials = credentials
        self.reader = reader
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from minio import Minio

            self._client = Minio(
                self.settings.endpoint,
                access_key=self.credentials.access_key,
                secret_key=self.credentials.secret_key,
                secure=self.settings.secure,
                region=self.settings.region,
            )
        return self._client

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.settings.prefix, *parts) if p)

    def project_key(self, project_id: str) -> str:
        """The key prefix of every object of the project (ends with '/')."""
        return self._key("projects", check_project_id(project_id)) + "/"

    def build_key(self, project_id: str, build: str) -> str:
        return f"{self.project_key(project_id)}builds/{build}/"

    def url(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{key}"

    def upload(self, source: Path, key: str) -> int:
        """Put ``source`` at ``key`` (multipart for large files) and check the stored size."""
        size = source.stat().st_size
        self.client.fput_object(self.settings.bucket, key, str(source), part_size=UPLOAD_PART_BYTES)
        stored = self.client.stat_object(self.settings.bucket, key).size
        if stored != size:
            raise OSError(f"{self.url(key)} holds {stored} bytes, expected {size}")
        return size

    def objects(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every object under ``prefix``."""
        listed = self.client.list_objects(self.settings.bucket, prefix=prefix, recursive=True)
        return sorted((o.object_name, o.size or 0) for o in listed)

    def delete(self, keys: Iterable[str]) -> None:
        from minio.deleteobjects import DeleteObject

        targets = [DeleteObject(key) for key in keys]
        if not targets:
            return
        errors = list(self.client.remove_objects(self.settings.bucket, targets))
        if errors:
            raise OSError(f"{len(errors)} objects could not be deleted ({errors[0].code})")

    def delete_prefix(self, prefix: str) -> list[tuple[str, int]]:
        """Delete every object under ``prefix``, check that none is left; the deleted (key, size)."""
        found = self.objects(prefix)
        self.delete(key for key, _ in found)
        left = self.objects(prefix)
        if left:
            raise OSError(f"{len(left)} objects are still under {self.url(prefix)}")
        return found

    def attach(self, con: duckdb.DuckDBPyConnection, project_id: str) -> None:
        """Let a preparation connection read the project's objects (to bind the views over them)."""
        load_httpfs(con)
        con.execute(secret_sql(self.access(project_id, self.credentials), "enclave_prepare"))

    def access(self, project_id: str, credentials: S3Credentials | None = None) -> S3Access:
        """Access scoped to the project's objects; the reader key unless ``credentials`` are given."""
        key = credentials or self.reader
        return S3Access(
            scope=self.url(self.project_key(project_id)),
            endpoint=self.settings.endpoint,
            key_id=key.access_key,
            secret=key.secret_key,
            region=self.settings.region,
            url_style=self.settings.url_style,
            use_ssl=self.settings.secure,
        )


def store_for(paths: Paths) -> S3Store | None:
    """The configured bucket, or ``None`` for local storage (then nothing else is read)."""
    settings = load_settings(paths)
    if settings.storage != "s3" or settings.s3 is None:
        return None
    s3 = settings.s3
    credentials = load_credentials(s3.credentials_file or paths.s3_credentials)
    reader = load_credentials(s3.reader_credentials_file) if s3.reader_credentials_file else credentials
    return S3Store(s3, credentials, reader)


def locked_access(paths: Paths, project_id: str) -> S3Access | None:
    """The S3 access the query connection of ``project_id`` gets, or ``None`` for local storage."""
    store = store_for(paths)
    return store.access(project_id) if store is not None else None


def prepared_object_values(paths: Paths, project_id: str, build: Path, dataset: str, column: str) -> set[str]:
    """The distinct non-null values of ``column`` in the bucket object of ``dataset`` in ``build``
    (named by its report); empty when the build keeps that dataset in the vault folder."""
    try:
        prepared = PreparationReport.load(build / REPORT).datasets.get(dataset)
    except (OSError, ValueError):
        return set()
    url = prepared.object if prepared is not None else None
    store = store_for(paths) if url is not None else None
    if store is None:
        return set()
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        store.attach(con, project_id)
        rows = con.execute(
            f"SELECT DISTINCT CAST({quote_ident(column)} AS VARCHAR) FROM read_parquet(?) "
            f"WHERE {quote_ident(column)} IS NOT NULL",
            [url],
        ).fetchall()
    finally:
        con.close()
    return {row[0] for row in rows}
