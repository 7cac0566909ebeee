"""deploy/single-host/install.sh on a fresh Debian in a container with no network (issue #13).

The container starts from the offline base image (enclave/base:bookworm) plus this host's Node.js;
Python packages come from wheels gathered on the host (as images/build.sh does), and
the state database is this host's PostgreSQL, reached through its Unix socket mounted into the
container, so ``--network none`` holds. The test runs the installer, starts the installed units with
run-foreground.sh (no systemd as PID 1 in a container), and checks files and modes, the units,
TLS on the proxy, the hub and its external services, and that no secret is in any unit or in any
process's environment or command line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = os.environ.get("BASE_IMAGE", "enclave/base:bookworm")
TEST_IMAGE = "enclave-test/single-host:latest"
WHEELS = REPO / "build" / "deploy-test" / "wheels"
PG_SOCKET_DIR = Path("/var/run/postgresql")
PORT = 8443
SERVICES = (
    "enclave-proxy",
    "enclave-hub",
    "enclave-gateway",
    "enclave-export-review",
    "enclave-console",
    "enclave-runs",
    "enclave-idle-culler",
)
UNITS = (*(f"{name}.service" for name in SERVICES), "enclave-sweep.service", "enclave-sweep.timer")


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (the installer creates accounts and runs Docker)"
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode:
        return "needs a running Docker (scripts/docker/start-dockerd.sh)"
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode:
        return f"needs the base image {BASE_IMAGE} (images/build-base.sh)"
    if shutil.which("node") is None or not (REPO / "node_modules" / "configurable-http-proxy").is_dir():
        return "needs node and configurable-http-proxy in node_modules (scripts/install-hub.sh)"
    if not (PG_SOCKET_DIR / ".s.PGSQL.5432").exists():
        return "needs the PostgreSQL server's socket in /var/run/postgresql (scripts/start-postgres.sh)"
    return None


def _run(*args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def _gather_wheels() -> Path:
    """Binary wheels of the package's dependencies (and setuptools to build it), gathered once."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = [*project["project"]["dependencies"], *project["build-system"]["requires"], "wheel"]
    stamp = hashlib.sha256("\n".join([sys.version, *wanted]).encode()).hexdigest()
    marker = WHEELS / ".inputs"
    if marker.exists() and marker.read_text() == stamp:
        return WHEELS
    shutil.rmtree(WHEELS, ignore_errors=True)
    WHEELS.mkdir(parents=True)
    _run(sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(WHEELS), *wanted)
    marker.write_text(stamp)
    return WHEELS


def _build_image(work: Path) -> None:
    """The base image plus this host's node binary (its libraries are all in the base)."""
    context = work / "image"
    context.mkdir()
    shutil.copy2(shutil.which("node") or "", context / "node")
    (context / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nCOPY node /usr/bin/node\n"
        "RUN node --version && python3 -m venv --help >/dev/null\n"
    )
    _run("docker", "build", "-q", "--network", "none", "-t", TEST_IMAGE, str(context))


@pytest.fixture(scope="module")
def database(postgres_admin_url: str) -> Iterator[dict[str, str]]:
    """A fresh role (with a password) and database on this host's PostgreSQL."""
    name = f"enclave_deploy_{uuid.uuid4().hex[:10]}"
    password = secrets.token_hex(16)
    try:
        admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
            conn.execute(text(f'CREATE DATABASE "{name}" OWNER {name}'))
    except Exception as error:  # any failure here means: no PostgreSQL to test with
        pytest.skip(f"PostgreSQL is not usable at {postgres_admin_url}: {type(error).__name__}")
    # Over the socket: the container has no network. The password is what a production URL has.
    url = f"postgresql+psycopg://{name}:{password}@/{name}?host={PG_SOCKET_DIR}"
    admin_db = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield {"name": name, "password": password, "url": url, "admin_url": admin_db}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f"DROP ROLE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, database: dict[str, str]) -> Iterator[str]:
    """A container where install.sh ran and run-foreground.sh started the services; its name."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("single-host")
    wheels = _gather_wheels()
    _build_image(work)
    inputs = work / "inputs"
    inputs.mkdir(mode=0o700)
    url_file = inputs / "database-url"
    url_file.write_text(database["url"] + "\n")
    url_file.chmod(0o600)
    # Not enclave-test-*: the end-to-end tests' session fixture removes every such container.
    name = f"enclave-deploy-test-{uuid.uuid4().hex[:8]}"
    _run(
        "docker", "run", "-d", "--pull", "never", "--network", "none", "--name", name,
        "-v", f"{REPO}:/src:ro", "-v", f"{wheels}:/wheels:ro", "-v", f"{inputs}:/inputs:ro",
        "-v", f"{PG_SOCKET_DIR}:{PG_SOCKET_DIR}",
        TEST_IMAGE, "sleep", "infinity",
    )  # fmt: skip
    try:
        install = _run(
            "docker", "exec", name, "/src/deploy/single-host/install.sh",
            "--database-url-file", "/inputs/database-url", "--wheels", "/wheels", "--no-apt",
            "--no-start", "--port", str(PORT), "--hostname", "enclave.test",
        )  # fmt: skip
        assert "Installed; nothing started" in install.stdout
        _run("docker", "exec", name, "/opt/enclave/libexec/run-foreground.sh", "start", timeout=180)
        yield name
    except BaseException:
        tail = "tail -n 40 /run/enclave-foreground/*.log"
        logs = _run("docker", "exec", name, "sh", "-c", tail, check=False)
        print(logs.stdout, logs.stderr)
        raise
    finally:
        _run("docker", "rm", "-f", name, check=False)


def _python(container: str, code: str) -> str:
    """Run Python in the installed venv inside the container; its stdout."""
    return _run("docker", "exec", container, "/opt/enclave/venv/bin/python", "-c", code).stdout


def test_files_accounts_and_modes(installed: str) -> None:
    found = json.loads(
        _python(
            installed,
            """
import json, os, pwd, stat
paths = ["/etc/enclave/secrets", "/etc/enclave/secrets/services", "/etc/enclave/secrets/database-url",
         "/etc/enclave/hub", "/etc/enclave/hub/cookie-secret", "/etc/enclave/proxy",
         "/etc/enclave/proxy/auth-token", "/etc/enclave/proxy/tls.key", "/etc/enclave/proxy/tls.crt",
         "/var/lib/enclave", "/var/lib/enclave-hub", "/opt/enclave/venv",
         *(f"/etc/enclave/secrets/services/{n}.token"
           for n in ("gateway", "export-review", "console", "runs", "idle-culler")),
         *(f"/etc/enclave/secrets/services/{n}.cookie-secret" for n in ("export-review", "console", "runs"))]
out = {}
for p in paths:
    s = os.stat(p)
    out[p] = [oct(stat.S_IMODE(s.st_mode)), pwd.getpwuid(s.st_uid).pw_name]
home_owners = {pwd.getpwuid(os.lstat(os.path.join(d, f)).st_uid).pw_name
               for d, ds, fs in os.walk("/var/lib/enclave") for f in ds + fs}
out["home_owners"] = sorted(home_owners)
out["shells"] = {u: pwd.getpwnam(u).pw_shell for u in ("enclave", "enclave-proxy")}
print(json.dumps(out))
""",
        )
    )
    for secret_file, owner in [
        ("/etc/enclave/secrets/database-url", "enclave"),
        ("/etc/enclave/secrets/services/gateway.token", "enclave"),
        ("/etc/enclave/secrets/services/export-review.token", "enclave"),
        ("/etc/enclave/secrets/services/console.token", "enclave"),
        ("/etc/enclave/secrets/services/export-review.cookie-secret", "enclave"),
        ("/etc/enclave/secrets/services/console.cookie-secret", "enclave"),
        ("/etc/enclave/secrets/services/runs.token", "enclave"),
        ("/etc/enclave/secrets/services/runs.cookie-secret", "enclave"),
        ("/etc/enclave/secrets/services/idle-culler.token", "enclave"),
        ("/etc/enclave/hub/cookie-secret", "root"),
        ("/etc/enclave/proxy/auth-token", "enclave-proxy"),
        ("/etc/enclave/proxy/tls.key", "enclave-proxy"),
    ]:
        assert found[secret_file] == ["0o600", owner], secret_file
    for folder, owner in [
        ("/etc/enclave/secrets", "enclave"),
        ("/etc/enclave/secrets/services", "enclave"),
        ("/etc/enclave/hub", "root"),
        ("/etc/enclave/proxy", "enclave-proxy"),
        ("/var/lib/enclave", "enclave"),
        ("/var/lib/enclave-hub", "root"),
    ]:
        assert found[folder] == ["0o700", owner], folder
    assert found["/etc/enclave/proxy/tls.crt"] == ["0o644", "root"]
    assert found["/opt/enclave/venv"][1] == "root"  # the services cannot change their own code
    assert found["home_owners"] == ["enclave"]  # everything in the home is the service account's
    assert set(found["shells"].values()) == {"/usr/sbin/nologin"}


def test_state_database_is_postgresql_and_migrated(installed: str, database: dict[str, str]) -> None:
    engine = create_engine(database["admin_url"])
    try:
        with engine.connect() as conn:
            query = text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            tables = set(conn.execute(query).scalars())
            assert "alembic_version" in tables
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    # The home has no SQLite state database: the file's URL was used.
    state_db = _run("docker", "exec", installed, "test", "-e", "/var/lib/enclave/state.db", check=False)
    assert state_db.returncode != 0


def test_units_are_valid(installed: str, tmp_path: Path) -> None:
    for unit in (*UNITS, "enclave-audit-verify.service", "enclave-audit-verify.timer"):
        _run("docker", "cp", f"{installed}:/etc/systemd/system/{unit}", str(tmp_path / unit))
    for unit in tmp_path.iterdir():
        body = unit.read_text()
        assert "@" not in body.replace("multi-user.target", ""), f"placeholder left in {unit.name}"
        sections = [line for line in body.splitlines() if line.startswith("[")]
        assert sections[0] == "[Unit]", unit.name
        assert ("[Service]" in sections) != ("[Timer]" in sections), unit.name
        if unit.suffix == ".service":
            user = [line for line in body.splitlines() if line.startswith("User=")]
            assert user, f"{unit.name} names no User="
            assert "UMask=0077" in body, unit.name
            # The hub and the runs service run as root: both start locked-down containers and keep
            # the project networks' firewall rules (hub_config/spawner.py, hub_config/batch.py).
            if unit.name in ("enclave-hub.service", "enclave-runs.service"):
                assert user == ["User=root"], unit.name
            else:
                assert user == [f"User={'enclave-proxy' if 'proxy' in unit.name else 'enclave'}"]
                assert "NoNewPrivileges=yes" in body and "ProtectSystem=strict" in body, unit.name
    if shutil.which("systemd-analyze"):
        # Verified on this host: the container has no systemd. Executables live in the container
        # only, so "not executable" is the one complaint allowed.
        done = _run("systemd-analyze", "verify", *(str(p) for p in sorted(tmp_path.iterdir())), check=False)
        problems = [
            line
            for line in (done.stdout + done.stderr).splitlines()
            if line.strip() and "is not executable" not in line and "No such file or directory" not in line
        ]
        assert not problems, "\n".join(problems)


def test_hub_answers_over_tls_with_the_generated_certificate(installed: str) -> None:
    answer = json.loads(
        _python(
            installed,
            f"""
import json, ssl, urllib.request
context = ssl.create_default_context(cafile="/etc/enclave/proxy/tls.crt")  # verifies chain and name
with urllib.request.urlopen("https://localhost:{PORT}/hub/api/", context=context, timeout=10) as r:
    print(json.dumps({{"status": r.status, "type": r.headers["Content-Type"], "body": json.load(r)}}))
""",
        )
    )
    assert answer["status"] == 200
    assert answer["type"].startswith("application/json")
    assert "version" in answer["body"]
    # Plain HTTP on the TLS port is refused: nothing is served unencrypted.
    plain = _python(
        installed,
        f"""
import urllib.request
try:
    urllib.request.urlopen("http://127.0.0.1:{PORT}/hub/api/", timeout=5)
    print("served")
except Exception as error:
    print(type(error).__name__)
""",
    )
    assert plain.strip() != "served"


def test_external_services_are_registered_and_routed(installed: str) -> None:
    result = json.loads(
        _python(
            installed,
            f"""
import json, ssl, urllib.error, urllib.request
token = open("/etc/enclave/secrets/services/gateway.token").read().strip()
request = urllib.request.Request("http://127.0.0.1:8081/hub/api/user",
                                 headers={{"Authorization": f"token {{token}}"}})
with urllib.request.urlopen(request, timeout=10) as r:
    me = json.load(r)
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
context = ssl.create_default_context(cafile="/etc/enclave/proxy/tls.crt")
opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=context))
import time
answers = {{}}
for service in ("export-review", "console", "runs"):
    # The hub listens before it has added the services' routes to the proxy (it reaches the external
    # services first): until then the proxy's default route sends /services/... to the hub itself.
    deadline = time.monotonic() + 90
    while True:
        try:
            opener.open(f"https://localhost:{PORT}/services/{{service}}/", timeout=10)
            answers[service] = [200, ""]
        except urllib.error.HTTPError as error:
            answers[service] = [error.code, error.headers.get("Location", "")]
        if not answers[service][1].startswith("/hub/services/") or time.monotonic() > deadline:
            break
        time.sleep(1)
print(json.dumps({{"me": me, "answers": answers}}))
""",
        )
    )
    # The hub took the service's token from its file: the gateway is a service of the hub.
    assert result["me"]["kind"] == "service" and result["me"]["name"] == "gateway"
    # The proxy routes /services/export-review/, /services/console/ and /services/runs/ to the running
    # services, which send a browser to the hub's OAuth login.
    for service in ("export-review", "console", "runs"):
        status, location = result["answers"][service]
        assert status == 302, service
        assert "/hub/api/oauth2/authorize" in location or "/hub/login" in location, service
        assert f"client_id=service-{service}" in location or "/hub/login" in location, service


def test_no_secret_in_units_environments_or_command_lines(installed: str, database: dict[str, str]) -> None:
    found = json.loads(
        _python(
            installed,
            """
import glob, json
files = ["/etc/enclave/secrets/database-url", "/etc/enclave/hub/cookie-secret",
         "/etc/enclave/proxy/auth-token", *glob.glob("/etc/enclave/secrets/services/*.token")]
secrets = {f: open(f).read().strip() for f in files}
units = {u: open(u).read() for u in glob.glob("/etc/systemd/system/enclave-*")}
print(json.dumps({"secrets": secrets, "units": units}))
""",
        )
    )
    # Every process of the container, read from this host (root in the container may not read
    # another account's /proc/<pid>/environ: it lacks CAP_SYS_PTRACE).
    pids = _run("docker", "top", installed, "-eo", "pid").stdout.split()[1:]
    found["processes"] = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):  # gone since: the docker exec of _python
            found["processes"][pid] = {
                "cmdline": Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"),
                "environ": Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace"),
            }
    values = [*found["secrets"].values(), database["password"]]
    assert all(len(value) >= 16 for value in found["secrets"].values())
    for unit, body in found["units"].items():
        for value in values:
            assert value not in body, f"a secret is in {unit}"
    commands = [process["cmdline"] for process in found["processes"].values()]
    for service, needle in [
        ("proxy", "proxy.js"),
        ("hub", "jupyterhub"),
        ("gateway", "gateway\0serve"),
        ("export review", "export\0serve"),
        ("console", "console\0serve"),
        ("runs service", "run\0serve"),
        ("idle culler", "idle_culler.py"),
    ]:
        assert any(needle in command for command in commands), f"the {service} is not running: {commands}"
    for pid, process in found["processes"].items():
        for value in values:
            assert value not in process["environ"], f"a secret is in the environment of pid {pid}"
            assert value not in process["cmdline"], f"a secret is on the command line of pid {pid}"
