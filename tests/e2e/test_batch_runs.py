"""Batch runs end to end (issue 12): real Docker, a real hub with its gateway, export-review and runs
services, the real analyst image.

Workspaces submit through the runs service's API with their server token (from inside the
container, through its firewall, as the client does); the service's own worker executes the runs
in fresh locked-down containers on the project's network. An export built from a run is
reproduced by a rerun the same worker executes, voted, released and downloaded with the CLI
against the same home. Egress is proven only with this machine's addresses (ARCHITECTURE §8).

The e2e home (``conftest.enclave_home``): alice (PI) and bob analysts of alpha, frank of beta; the
committee is carol, dave and erin (``tests.harness.factories.project_spec``). A project's PI may read its
runs (``enclave.runs.service.can_see``), so "another analyst's run" is checked with bob against a
run of alice's, and alice against bob's only for what a PI may not do (cancel).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from enclave.config import Paths
from tests.e2e.conftest import PROJECT_A, PROJECT_B, Hub, exec_python, free_port, launch_hub, sh
from tests.runs.factories import notebook

pytestmark = pytest.mark.slow

RUN_PREFIX = "enclave-test-run-"
NET_A = f"enclave-test-net-{PROJECT_A}"
NET_B = f"enclave-test-net-{PROJECT_B}"
OUTPUT = "sex_counts.csv"
RUN_TIMEOUT_S = 240
TERMINAL = {"succeeded", "failed", "timed_out", "cancelled"}

# bob's analysis: the real data through the gateway, one deterministic CSV.
SEX_COUNTS = notebook(
    "import socket\nprint('RUN ADDRESS', socket.gethostbyname(socket.gethostname()))",
    "import enclave_client\n"
    "df = enclave_client.connect().sql('SELECT sex, count(*) AS n FROM patients GROUP BY sex')\n"
    "df.sort_values('sex').to_csv(label + '.csv', index=False)",
    parameters="label = 'table'",
)

# alice's probe: what a run's token and a run's network may not do, each with a "can" beside it.
PROBE = notebook(
    """
import json, os, socket, urllib.error, urllib.request
import enclave_client
from enclave_client.errors import QueryError

token = os.environ['JUPYTERHUB_API_TOKEN']
gateway = os.environ['ENCLAVE_GATEWAY_URL'].split('/')[2].split(':')[0]
runs_url = os.environ['ENCLAVE_RUNS_URL']

def attempt(host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
        return 'OPEN'
    except ConnectionRefusedError:
        return 'REFUSED'
    except OSError as error:
        return f'BLOCKED {type(error).__name__} {error.errno}'

def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(runs_url + path, data=data, method=method)
    request.add_header('Authorization', 'token ' + token)
    if data is not None:
        request.add_header('Content-Type', 'application/json')
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return [response.status, json.loads(response.read() or b'null')]
    except urllib.error.HTTPError as error:
        return [error.code, json.loads(error.read() or b'null')]

def query(project=None):
    try:
        return ['OK', list(enclave_client.connect(project=project).tables())]
    except QueryError as error:
        return [error.status, error.code]

nb = {'nbformat': 4, 'nbformat_minor': 5, 'metadata': {}, 'cells': []}
result = {
    'token_kind': token.split('_')[0] + '_',
    'gateway': gateway,
    'own_project_query': query(),
    'other_project_query': query(other_project),
    'submit': call('POST', 'api/runs', {'notebook_name': 'x.ipynb', 'notebook': nb, 'parameters': {}}),
    'list': call('GET', 'api/runs'),
    'gateway_port': attempt(gateway, gateway_port),
    'proxy_port': attempt(gateway, proxy_port),
    'other_gateway': attempt(other_gateway, gateway_port),
    'other_gateway_proxy': attempt(other_gateway, proxy_port),
}
json.dump(result, open('probe.json', 'w'), indent=1)
""",
    parameters="gateway_port = 0\nproxy_port = 0\nother_gateway = ''\nother_project = ''",
)

CALL = r"""
import base64, json, os, urllib.error, urllib.request
url = os.environ["ENCLAVE_RUNS_URL"] + SPEC["path"]
data = None if SPEC.get("body") is None else json.dumps(SPEC["body"]).encode()
request = urllib.request.Request(url, data=data, method=SPEC["method"])
request.add_header("Authorization", "token " + os.environ["JUPYTERHUB_API_TOKEN"])
if data is not None:
    request.add_header("Content-Type", "application/json")
for name, value in SPEC.get("headers", {}).items():
    request.add_header(name, value)
try:
    with urllib.request.urlopen(request, timeout=60) as response:
        status, raw = response.status, response.read()
except urllib.error.HTTPError as error:
    status, raw = error.code, error.read()
print(json.dumps({"status": status, "body": base64.b64encode(raw).decode()}))
"""


@dataclass
class Answer:
    status: int
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.raw)

    def code(self) -> str:
        return str(self.json()["errors"][0]["code"])


def api(container: str, method: str, path: str, body: Any = None, **headers: str) -> Answer:
    """A call to the runs service from inside a workspace, with its own server token."""
    spec = {"method": method, "path": path, "body": body, "headers": headers}
    code = f"import json\nSPEC = json.loads({json.dumps(spec)!r})\n{CALL}"
    done = exec_python(container, code, timeout=90)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return Answer(answer["status"], base64.b64decode(answer["body"]))


@dataclass
class Observed:
    """A run as it ended, and what Docker showed while it ran."""

    run: dict[str, Any]
    container: str  # its name
    networks: list[str]


def run_containers(run_id: str) -> list[str]:
    listed = sh("docker", "ps", "-a", "--filter", f"label=org.enclave.run={run_id}", "--format", "{{.Names}}")
    return listed.stdout.split()


def wait_for_run(workspace: str, run_id: str, timeout: float = RUN_TIMEOUT_S) -> Observed:
    """Poll the run through the API until it ends, looking at its container while it exists."""
    name, networks = "", []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not name:
            found = run_containers(run_id)
            if found:
                info = sh("docker", "inspect", found[0], check=False)
                if info.returncode == 0:
                    name = found[0]
                    networks = sorted(json.loads(info.stdout)[0]["NetworkSettings"]["Networks"])
        answer = api(workspace, "GET", f"api/runs/{run_id}")
        assert answer.status == 200, answer.raw
        run = answer.json()
        if run["state"] in TERMINAL:
            return Observed(run, name, networks)
        time.sleep(1)
    log = api(workspace, "GET", f"api/runs/{run_id}/log").raw.decode(errors="replace")
    raise AssertionError(f"run {run_id} did not end within {timeout} s; its log:\n{log[-3000:]}")


def wait_gone(run_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while run_containers(run_id):
        assert time.monotonic() < deadline, f"the container of {run_id} is still there"
        time.sleep(0.5)


def enclave(paths: Paths, *args: str) -> Any:
    """The CLI against the e2e home, ``--json``; its parsed answer."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "enclave"), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ENCLAVE_HOME": str(paths.home)},
    )
    assert done.returncode == 0, f"enclave {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


def wait_for_reproduction(paths: Paths, request: str, timeout: float = RUN_TIMEOUT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = enclave(paths, "export", "show", request)
        if info["reproduction"] and info["reproduction"]["state"] != "pending":
            return info
        time.sleep(2)
    raise AssertionError(f"the reproduction of {request} did not end within {timeout} s: {info}")


def network_value(name: str, field: str) -> str:
    return sh(
        "docker", "network", "inspect", name, "--format", f"{{{{(index .IPAM.Config 0).{field}}}}}"
    ).stdout.strip()


# ---- fixtures -------------------------------------------------------------------------------------


@dataclass
class Site:
    hub: Hub
    paths: Paths
    gateway_port: int
    bob: str  # workspace container names
    alice: str
    frank: str


@pytest.fixture(scope="module")
def site(docker_ready: None, enclave_home: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    gateway_port = free_port()
    with launch_hub(
        enclave_home,
        tmp_path_factory.mktemp("runs-hub"),
        ENCLAVE_HUB_SERVICES="gateway,export-review,runs",
        ENCLAVE_GATEWAY_PORT=str(gateway_port),
        ENCLAVE_EXPORT_REVIEW_PORT=str(free_port()),
        ENCLAVE_RUNS_PORT=str(free_port()),
        # For the runs service only: the test config keeps the workspaces at 256M.
        ENCLAVE_WORKSPACE_MEMORY="768M",
    ) as hub:
        started = [("bob", PROJECT_A), ("alice", PROJECT_A), ("frank", PROJECT_B)]
        try:
            names = [hub.start(user, project) for user, project in started]
            yield Site(hub, enclave_home, gateway_port, *names)
        finally:
            for user, project in started:
                hub.stop(user, project)


@pytest.fixture(scope="module")
def bob_run(site: Site) -> Observed:
    """bob's run of SEX_COUNTS with a parameter, submitted from his workspace."""
    submitted = api(
        site.bob,
        "POST",
        "api/runs",
        {"notebook_name": "sex_counts.ipynb", "notebook": SEX_COUNTS, "parameters": {"label": "sex_counts"}},
    )
    assert submitted.status == 201, submitted.raw
    assert submitted.json()["user"] == "bob" and submitted.json()["project"] == PROJECT_A
    return wait_for_run(site.bob, submitted.json()["id"])


@pytest.fixture(scope="module")
def probe_run(site: Site) -> tuple[Observed, dict[str, Any]]:
    """alice's probe run and what it recorded in probe.json."""
    parameters = {
        "gateway_port": site.gateway_port,
        "proxy_port": urlsplit(site.hub.url).port,
        "other_gateway": network_value(NET_B, "Gateway"),  # frank's workspace made beta's network
        "other_project": PROJECT_B,
    }
    submitted = api(
        site.alice,
        "POST",
        "api/runs",
        {"notebook_name": "probe.ipynb", "notebook": PROBE, "parameters": parameters},
    )
    assert submitted.status == 201, submitted.raw
    observed = wait_for_run(site.alice, submitted.json()["id"])
    assert observed.run["state"] == "succeeded", observed.run
    probe = api(site.alice, "GET", f"api/runs/{observed.run['id']}/outputs/probe.json")
    assert probe.status == 200, probe.raw
    return observed, probe.json()


# ---- 1. a run through the gateway -------------------------------------------------------------------


def test_a_run_queries_the_real_data_through_the_gateway(site: Site, bob_run: Observed) -> None:
    run = bob_run.run
    log = api(site.bob, "GET", f"api/runs/{run['id']}/log").raw.decode()
    assert run["state"] == "succeeded", (run, log[-3000:])
    assert run["parameters"] == {"label": "sex_counts"} and run["kind"] == "run"
    assert run["image_digest"], run

    # The query went through the gateway with the run's identity and was recorded on the run.
    assert [(q["sql"], q["outcome"]) for q in run["queries"]] == [
        ("SELECT sex, count(*) AS n FROM patients GROUP BY sex", "allowed")
    ], run["queries"]

    # Its output is listed with the sha256 of the bytes the API serves; the table is the real one.
    (output,) = [o for o in run["outputs"] if o["name"] == OUTPUT]
    data = api(site.bob, "GET", f"api/runs/{run['id']}/outputs/{OUTPUT}")
    assert data.status == 200
    assert hashlib.sha256(data.raw).hexdigest() == output["sha256"] and len(data.raw) == output["size"]
    assert data.raw.decode().splitlines() == ["sex,n", "F,30", "M,30"]
    assert [o["name"] for o in run["outputs"]] == [OUTPUT]  # the executed notebook is not an output
    executed = api(site.bob, "GET", f"api/runs/{run['id']}/executed")
    assert executed.status == 200 and hashlib.sha256(executed.raw).hexdigest() == run["executed"]["sha256"]

    # The container was a test-named run container on the project's network only, and is gone.
    assert bob_run.container == f"{RUN_PREFIX}{run['id']}"
    assert bob_run.networks == [NET_A]
    address = log.split("RUN ADDRESS", 1)[1].split()[0]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(network_value(NET_A, "Subnet")), log
    wait_gone(run["id"])


# ---- 2. another user's run, another project, a run's own token ------------------------------------


def test_another_analysts_run_is_not_found(site: Site, bob_run: Observed, probe_run: tuple) -> None:
    alices = probe_run[0].run["id"]
    for method, path in [
        ("GET", f"api/runs/{alices}"),
        ("GET", f"api/runs/{alices}/log"),
        ("GET", f"api/runs/{alices}/outputs/probe.json"),
        ("GET", f"api/runs/{alices}/executed"),
        ("DELETE", f"api/runs/{alices}"),
    ]:
        answer = api(site.bob, method, path)
        assert (answer.status, answer.code()) == (404, "run_not_found"), (method, path, answer.raw)
    listed = api(site.bob, "GET", "api/runs").json()["runs"]
    assert bob_run.run["id"] in [r["id"] for r in listed] and alices not in [r["id"] for r in listed]
    # The PI may read her project's runs (oversight), but bob's run is his alone to cancel.
    bobs = bob_run.run["id"]
    assert api(site.alice, "GET", f"api/runs/{bobs}").status == 200
    refused = api(site.alice, "DELETE", f"api/runs/{bobs}")
    assert (refused.status, refused.code()) == (403, "run_not_own"), refused.raw
    # The list is the caller's own runs, even for the PI.
    assert [r["id"] for r in api(site.alice, "GET", "api/runs").json()["runs"]] == [alices]


def test_another_project_cannot_see_the_runs(site: Site, bob_run: Observed) -> None:
    bobs = bob_run.run["id"]
    for method, path in [
        ("GET", f"api/runs/{bobs}"),
        ("GET", f"api/runs/{bobs}/log"),
        ("GET", f"api/runs/{bobs}/outputs/{OUTPUT}"),
        ("DELETE", f"api/runs/{bobs}"),
    ]:
        answer = api(site.frank, method, path)
        assert (answer.status, answer.code()) == (404, "run_not_found"), (method, path, answer.raw)
    assert [r for r in api(site.frank, "GET", "api/runs").json()["runs"] if r["project"] == PROJECT_A] == []
    claimed = api(site.frank, "GET", "api/runs", **{"X-Enclave-Project": PROJECT_A})
    assert (claimed.status, claimed.code()) == (403, "project_mismatch"), claimed.raw


def test_a_runs_token_cannot_submit_nor_query_another_project(probe_run: tuple) -> None:
    _, probe = probe_run
    assert probe["token_kind"] == "encrun_"
    assert probe["own_project_query"][0] == "OK" and "patients" in probe["own_project_query"][1], probe
    assert probe["other_project_query"] == [403, "project_mismatch"], probe
    assert probe["submit"][0] == 403 and probe["submit"][1]["errors"][0]["code"] == "run_token_refused", probe
    assert probe["list"][0] == 403 and probe["list"][1]["errors"][0]["code"] == "run_token_refused", probe


# ---- 5. a run cannot reach the network ------------------------------------------------------------


def test_a_run_reaches_only_its_projects_services(site: Site, probe_run: tuple) -> None:
    observed, probe = probe_run
    assert observed.networks == [NET_A] and observed.container.startswith(RUN_PREFIX)
    assert probe["gateway"] == network_value(NET_A, "Gateway")
    assert probe["gateway_port"] == "OPEN", probe  # the allowed service port: the "can"
    for reached in ("proxy_port", "other_gateway", "other_gateway_proxy"):
        assert probe[reached].startswith(("REFUSED", "BLOCKED")), (reached, probe)
    wait_gone(observed.run["id"])


# ---- 3. an export from a run, reproduced and released --------------------------------------------


def test_an_export_from_a_run_is_reproduced_released_and_downloaded(
    site: Site, bob_run: Observed, tmp_path: Path
) -> None:
    run = bob_run.run
    submitted = enclave(
        site.paths,
        "export", "submit", "--project", PROJECT_A, "--user", "bob", "--run", run["id"],
        "--justification", "Counts by sex for the paper",
    )  # fmt: skip
    request = submitted["request"]
    info = wait_for_reproduction(site.paths, request)
    shown = info["reproduction"]
    assert shown["state"] == "reproduced", shown
    assert [(f["name"], f["status"]) for f in shown["result"]["files"]] == [(OUTPUT, "identical")]
    assert info["provenance"]["run"] == run["id"]

    # The rerun was the runs service's worker's: a succeeded rerun of bob's run, its container gone.
    rerun = api(site.bob, "GET", f"api/runs/{shown['rerun']}")
    assert rerun.status == 200, rerun.raw
    described = rerun.json()
    assert (described["kind"], described["rerun_of"], described["state"]) == ("rerun", run["id"], "succeeded")
    assert described["export_request"] == request and described["queries"][0]["outcome"] == "allowed"
    wait_gone(described["id"])

    for reviewer in ("carol", "dave", "erin"):
        voted = enclave(site.paths, "export", "vote", request, "approve", "--user", reviewer)
    assert voted["state"] == "approved", voted
    enclave(site.paths, "export", "release", request, "--user", "carol")
    out = tmp_path / "download"
    downloaded = enclave(site.paths, "export", "download", request, "--user", "bob", "--out", str(out))
    assert downloaded["request"] == request

    served = api(site.bob, "GET", f"api/runs/{run['id']}/outputs/{OUTPUT}").raw
    assert (out / "files" / OUTPUT).read_bytes() == served
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["provenance"]["run"] == run["id"]
    assert manifest["provenance"]["notebook"]["sha256"] == run["notebook"]["sha256"]
    assert manifest["reproduction"]["state"] == "reproduced"
    assert [f["sha256"] for f in manifest["files"]] == [hashlib.sha256(served).hexdigest()]


# ---- 4. a file edited after the run ---------------------------------------------------------------


def test_an_output_edited_after_the_run_is_not_reproduced(
    site: Site, bob_run: Observed, tmp_path: Path
) -> None:
    run = bob_run.run
    edited = tmp_path / OUTPUT
    edited.write_text("sex,n\nF,31\nM,29\n")
    submitted = enclave(
        site.paths,
        "export", "submit", "--project", PROJECT_A, "--user", "bob", "--run", run["id"],
        "--justification", "Counts by sex, tidied", str(edited),
    )  # fmt: skip
    info = wait_for_reproduction(site.paths, submitted["request"])
    shown = info["reproduction"]
    assert shown["state"] == "not_reproduced", shown
    statuses = {f["name"]: f["status"] for f in shown["result"]["files"]}
    assert statuses == {OUTPUT: "edited_after_run"}, shown
    origin = {f["name"]: f for f in info["provenance"]["files"]}
    assert origin[OUTPUT]["edited_after_run"] is True
    assert origin[OUTPUT]["sha256"] == hashlib.sha256(edited.read_bytes()).hexdigest()
