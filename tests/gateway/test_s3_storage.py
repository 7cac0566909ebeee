"""``storage: s3`` (issue #13 item 5) against a real S3-compatible server (moto) on 127.0.0.1.

The same demo data is provisioned twice through the CLI, once in the vault folder and once in a
bucket; the guarded queries must give the same answers, the locked DuckDB connection must read
nothing but the project's own objects, and destruction must delete the objects and say so.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from enclave.cli import app
from enclave.cli.common import EnclaveContext
from enclave.config import Paths, database_url
from enclave.demo_data import generate
from enclave.errors import BadInput
from enclave.guard.lockdown import S3Access, open_locked
from enclave.prepare import layout, storage
from enclave.prepare.build import prepare_workspace
from enclave.prepare.destroy import DestructionFailed, destroy_workspace, verify_certificate
from enclave.specs import parse_project_spec
from export_review.keyspace import prepared_key_space
from tests.harness.factories import NO_APPLICATION_ARGS

pytest.importorskip("minio")
pytest.importorskip("duckdb_extension_httpfs")
moto_server = pytest.importorskip("moto.server")

REPO = Path(__file__).resolve().parents[2]
PROJECT = "demo-cardio"
BUCKET = "enclave-data"
PREFIX = "site-a"
ACCESS_KEY, SECRET_KEY = "enclave-test", "enclave-test-secret"
OTHER_KEY = f"{PREFIX}/projects/other-2026/builds/v1-00000000/patients.parquet"
STRAY_KEY = "other-project/patients.parquet"
runner = CliRunner()

# Guarded queries that do not depend on the project's secrets (no dates, no pseudonyms), so the
# two homes, with different keys, must agree exactly.
SAME_QUERIES = [
    "SELECT sex, count(*) AS n FROM patients GROUP BY sex ORDER BY sex",
    "SELECT age, count(DISTINCT pid) AS persons FROM patients GROUP BY age ORDER BY age",
    "SELECT dx, count(DISTINCT pid) AS persons FROM visits GROUP BY dx ORDER BY dx",
    "SELECT department, count(*) AS visits, sum(cost) AS cost FROM visits GROUP BY department ORDER BY 1",
    "SELECT p.sex, count(DISTINCT v.pid) AS persons FROM visits v JOIN patients p ON v.pid = p.pid "
    "WHERE v.visit_type = 'inpatient' GROUP BY p.sex ORDER BY 1",
]
REFUSED_QUERIES = [
    "SELECT * FROM patients",
    f"SELECT count(*) FROM read_parquet('s3://{BUCKET}/{OTHER_KEY}')",
    f"SELECT count(*) FROM 's3://{BUCKET}/{STRAY_KEY}'",
    "SELECT count(*) FROM read_parquet('http://127.0.0.1:9/x.parquet')",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(home: Path, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, ["--home", str(home), *args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def query(home: Path, sql: str, code: int = 0) -> Any:
    return run(home, "query", "--project", PROJECT, "--user", "bob", sql, code=code)


@dataclass
class S3Server:
    endpoint: str
    client: Any

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.client.list_objects(BUCKET, prefix=prefix, recursive=True)
        return sorted(o.object_name for o in listed)


@dataclass
class Homes:
    local: Path
    s3: Path
    server: S3Server


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    from minio import Minio

    port = free_port()
    moto = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    endpoint = f"127.0.0.1:{port}"
    client = Minio(endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region="us-east-1")
    client.make_bucket(BUCKET)
    for key in (OTHER_KEY, STRAY_KEY):  # objects that are not this project's
        data = parquet_bytes(pa.table({"pid": ["someone-else"], "secret": [42]}))
        client.put_object(BUCKET, key, io.BytesIO(data), len(data))
    yield S3Server(endpoint, client)
    moto.stop()


def configure_s3(home: Path, endpoint: str, *, mode: int = 0o600) -> Path:
    paths = Paths(home)
    settings = {
        "storage": "s3",
        "s3": {"bucket": BUCKET, "prefix": PREFIX, "endpoint": endpoint, "secure": False},
    }
    paths.settings_file.write_text(yaml.safe_dump(settings))
    credentials = paths.s3_credentials
    credentials.write_text(yaml.safe_dump({"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}))
    os.chmod(credentials, mode)
    return credentials


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory, server: S3Server) -> Homes:
    root = tmp_path_factory.mktemp("s3-storage")
    data = root / "data"
    generate(data, 600, 7)
    result = Homes(root / "local", root / "s3", server)
    for home in (result.local, result.s3):
        run(home, "init")
        if home == result.s3:
            configure_s3(home, server.endpoint)
        for name in ("patients", "visits", "labs", "prescriptions"):
            run(home, "dataset", "register", str(data / f"{name}.yaml"))
        created = run(
            home, "project", "create", str(REPO / "examples" / "demo-project.yaml"), *NO_APPLICATION_ARGS
        )
        assert created["state"] == "active"
    return result


def test_prepared_parquet_lives_in_the_bucket(homes: Homes) -> None:
    paths = Paths(homes.s3)
    build = layout.current_prepared_dir(paths, PROJECT)
    objects = homes.server.keys(f"{PREFIX}/projects/{PROJECT}/")
    datasets = ("labs", "patients", "prescriptions", "visits")
    assert objects == [f"{PREFIX}/projects/{PROJECT}/builds/{build.name}/{d}.parquet" for d in datasets]
    assert not any((build / f"{d}.parquet").exists() for d in datasets), "no prepared copy in the vault"
    assert (build / layout.TWIN_DIR / "patients.parquet").is_file(), "the twin stays in the vault"
    report = json.loads((build / layout.REPORT).read_text())
    assert report["storage"] == "s3"
    assert report["datasets"]["patients"]["object"] == f"s3://{BUCKET}/{objects[1]}"
    con = duckdb.connect(str(build / layout.VIEWS_DB), read_only=True)
    try:
        definitions = [
            r[0] for r in con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall()
        ]
    finally:
        con.close()
    assert all(f"'s3://{BUCKET}/{PREFIX}/projects/{PROJECT}/" in d for d in definitions)
    assert not any(SECRET_KEY in d or ACCESS_KEY in d for d in definitions), "no secret in the views file"
    for name in (layout.REPORT, layout.VIEWS_DB, layout.TWIN_DB):
        assert SECRET_KEY.encode() not in (build / name).read_bytes(), name
    local = layout.current_prepared_dir(Paths(homes.local), PROJECT)
    assert (local / "patients.parquet").is_file(), "local storage is unchanged"


def test_same_guard_same_results(homes: Homes) -> None:
    for sql in SAME_QUERIES:
        local, remote = query(homes.local, sql), query(homes.s3, sql)
        assert remote == local, sql
        assert remote["rows"], sql
    assert sum(n for _, n in query(homes.s3, SAME_QUERIES[0])["rows"]) == 600
    for sql in REFUSED_QUERIES:
        local, remote = query(homes.local, sql, code=3), query(homes.s3, sql, code=3)
        assert remote == local, sql
        assert remote["error"]["code"] == "query_rejected"


@pytest.fixture
def locked(homes: Homes) -> duckdb.DuckDBPyConnection:
    paths = Paths(homes.s3)
    database = layout.current_views_db(paths, PROJECT)
    return open_locked(database, s3=storage.locked_access(paths, PROJECT))


def test_locked_connection_reads_only_the_projects_objects(homes: Homes, locked: Any) -> None:
    """Below the guard: the connection itself cannot read other objects, URLs or files."""
    endpoint = homes.server.endpoint
    own = query(homes.s3, SAME_QUERIES[0])  # the views read the bucket
    assert own["rows"]
    assert locked.execute("SELECT count(*) FROM patients").fetchone() == (600,)
    build = layout.current_prepared_dir(Paths(homes.s3), PROJECT).name
    own_dir = f"s3://{BUCKET}/{PREFIX}/projects/{PROJECT}/builds/{build}/"
    outside = [
        f"read_parquet('s3://{BUCKET}/{OTHER_KEY}')",
        f"read_parquet('s3://{BUCKET}/{STRAY_KEY}')",
        f"read_parquet('{own_dir}../../../other-2026/builds/v1-00000000/patients.parquet')",
        f"read_parquet('{own_dir}patients.parquet/../../../../other-2026/builds/v1-00000000/patients.parquet')",
        f"read_parquet('{own_dir}*.parquet')",
        f"glob('s3://{BUCKET}/*')",
        f"read_parquet('http://{endpoint}/{BUCKET}/{STRAY_KEY}')",
        f"read_parquet('s3a://{BUCKET}/{STRAY_KEY}')",
        "read_csv('/etc/passwd')",
    ]
    for relation in outside:
        with pytest.raises(duckdb.Error) as caught:
            locked.execute(f"SELECT * FROM {relation}").fetchall()
        assert isinstance(caught.value, duckdb.PermissionException), (relation, caught.value)
    for statement in (
        "SET enable_external_access = true",
        "SET allowed_directories = ['s3://']",
        f"SET allowed_paths = ['s3://{BUCKET}/{STRAY_KEY}']",
    ):
        with pytest.raises(duckdb.Error, match="locked"):
            locked.execute(statement)
    # a new secret (which the guard refuses anyway) opens nothing either
    locked.execute(
        f"CREATE TEMPORARY SECRET widened (TYPE s3, KEY_ID '{ACCESS_KEY}', SECRET '{SECRET_KEY}', "
        f"ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false, SCOPE 's3://{BUCKET}/')"
    )
    try:
        with pytest.raises(duckdb.PermissionException):
            locked.execute(f"SELECT * FROM read_parquet('s3://{BUCKET}/{STRAY_KEY}')").fetchall()
    finally:
        locked.execute("DROP SECRET widened")
    assert locked.execute("SELECT count(*) FROM patients").fetchone() == (600,)


def test_views_outside_the_scope_or_without_access_do_not_open(homes: Homes, tmp_path: Path) -> None:
    paths = Paths(homes.s3)
    copy = tmp_path / "views.duckdb"  # a fresh file: a locked instance is cached per file
    shutil.copy(layout.current_views_db(paths, PROJECT), copy)
    with pytest.raises(BadInput) as missing:
        open_locked(copy)
    assert missing.value.code == "storage_access_missing"
    other = storage.locked_access(paths, "other-2026")
    assert isinstance(other, S3Access)
    with pytest.raises(BadInput) as outside:
        open_locked(copy, s3=other)
    assert outside.value.code == "view_source_outside_scope"


def test_credentials_come_from_a_private_file_only(homes: Homes, tmp_path: Path) -> None:
    home = tmp_path / "home"
    run(home, "init")
    credentials = configure_s3(home, homes.server.endpoint, mode=0o644)
    with pytest.raises(BadInput) as loose:
        storage.store_for(Paths(home))
    assert loose.value.code == "secret_file_permissions"
    os.chmod(credentials, 0o600)
    store = storage.store_for(Paths(home))
    assert store is not None and SECRET_KEY not in repr(store.credentials)
    Paths(home).settings_file.write_text("storage: s3\n")
    with pytest.raises(BadInput) as invalid:
        storage.store_for(Paths(home))
    assert invalid.value.code == "enclave_settings_invalid"
    Paths(home).settings_file.unlink()
    assert storage.store_for(Paths(home)) is None, "local storage is the default"


def test_rows_projects_need_local_storage(homes: Homes) -> None:
    data = yaml.safe_load((REPO / "examples" / "demo-project.yaml").read_text())
    spec = parse_project_spec({**data, "id": "rows-2026", "access": "rows"})
    with pytest.raises(BadInput) as refused:
        prepare_workspace(Paths(homes.s3), spec, {}, version=1)
    assert refused.value.code == "storage_rows_unsupported"
    assert not Paths(homes.s3).project_dir("rows-2026").exists()


def test_a_new_version_keeps_linked_objects_and_sweeps_stray_builds(homes: Homes) -> None:
    paths = Paths(homes.s3)
    first = layout.current_prepared_dir(paths, PROJECT).name
    builds = f"{PREFIX}/projects/{PROJECT}/builds/"
    stray = f"{builds}v9-deadbeef/patients.parquet"  # left by an interrupted run
    homes.server.client.put_object(BUCKET, stray, io.BytesIO(b"x"), 1)
    before = query(homes.s3, SAME_QUERIES[0])
    run(homes.s3, "project", "prepare", PROJECT)
    second = layout.current_prepared_dir(paths, PROJECT).name
    assert second != first
    names = {key[len(builds) :].split("/")[0] for key in homes.server.keys(builds)}
    assert names == {first, second}, "v1 stays (its link is kept); the stray build is gone"
    assert query(homes.s3, SAME_QUERIES[0]) == before


def test_export_review_reads_the_key_space_from_the_bucket(homes: Homes) -> None:
    """The person-key check of exports still knows the project's pseudonyms (it fails closed without)."""
    spaces = []
    for home in (homes.local, homes.s3):
        context = EnclaveContext(home, database_url(home))
        with context.session() as session:
            spaces.append(prepared_key_space(session, context.paths)(PROJECT))
    local, remote = spaces
    assert local and remote and len(remote) == len(local) == 600
    assert all(key.startswith("p_") for key in remote)


def test_destroy_deletes_the_objects_and_the_certificate_says_so(homes: Homes) -> None:
    paths = Paths(homes.s3)
    build = layout.current_prepared_dir(paths, PROJECT)
    report = json.loads((build / layout.REPORT).read_text())
    project_objects = homes.server.keys(f"{PREFIX}/projects/{PROJECT}/")
    assert project_objects
    assert run(homes.s3, "project", "expire", PROJECT)["state"] == "expired"
    settings = paths.settings_file.read_text()
    paths.settings_file.unlink()  # the objects' bucket is no longer configured: refuse, delete nothing
    with pytest.raises(DestructionFailed) as unconfigured:
        destroy_workspace(paths, PROJECT, actor="steward")
    assert unconfigured.value.code == "storage_not_configured"
    assert homes.server.keys(f"{PREFIX}/projects/{PROJECT}/") == project_objects
    assert layout.current_prepared_dir(paths, PROJECT).is_dir()
    paths.settings_file.write_text(settings)
    destroyed = run(homes.s3, "project", "destroy", PROJECT)
    assert homes.server.keys(f"{PREFIX}/projects/{PROJECT}/") == []
    assert homes.server.keys() == sorted([OTHER_KEY, STRAY_KEY]), "other objects are kept"
    assert not paths.project_dir(PROJECT).exists()
    items = destroyed["certificate"]["items"]
    objects = {i["name"]: i for i in items if i["kind"] == "object"}
    assert sorted(objects) == [f"s3://{BUCKET}/{key}" for key in project_objects]
    patients = objects[report["datasets"]["patients"]["object"]]
    assert patients["sha256"] == report["datasets"]["patients"]["prepared_sha256"]
    assert patients["bytes"] > 0
    prefixes = [i["name"] for i in items if i["kind"] == "object_prefix"]
    assert prefixes == [f"s3://{BUCKET}/{PREFIX}/projects/{PROJECT}/"]
    assert verify_certificate(Path(destroyed["certificate"]["path"]))
    assert run(homes.s3, "audit", "verify")["ok"] is True
