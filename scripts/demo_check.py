"""The headless demo check (``make demo-check``): the whole story through the hub and its services.

0. the project was provisioned from the demo's data-use application (``scripts/demo.sh``): the
   application is approved (the committee's and the chain's countersigned votes), its data-use
   agreement is recorded and verifies, and the security auditor's search of the audit log shows the
   trail from filing to provisioning;
1. the analyst's named server starts (hub REST API, with the check's service token);
2. the notebook ``examples/table1.ipynb`` is put into the workspace (Jupyter contents API) and its code
   cells run in a kernel over the kernel websocket, through the hub's proxy, with the analyst's token:
   ``db = enclave.connect(); df = db.sql(...)`` queries the real data through the gateway and writes
   ``outputs/table1.csv`` into the home volume;
3. the analyst requests its export as JupyterLab's "Request export" does (``POST /enclave/exports`` on
   the workspace's server): the workspace reads the file from its home volume and submits it to the
   export review with its own server token; the service then holds exactly the bytes the notebook
   wrote (the check reads them through the contents API to compare);
4. the three committee members vote approve, the steward releases, the analyst downloads the zip;
5. ``enclave audit verify`` checks the hash chain.

User tokens are minted by the check's service for one hour each (users cannot mint their own).
Against a running demo hub (``make demo``) it uses ``demo/hub/check-token``; otherwise it starts
the demo hub itself and stops it afterwards. Exit status 0 only when every step passed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "examples" / "table1.ipynb"
OUTPUT = "outputs/table1.csv"
JUSTIFICATION = "Table 1: patients and mean cost by department"
TEMPLATE = "patients-by-group"  # the approved template scripts/demo.sh adds
RESULT_MARKER = "\nbatch-run-result: "


class CheckFailed(Exception):
    """A step of the story did not do what it should."""


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict:
        try:
            return json.loads(self.body or b"{}")
        except ValueError as error:
            raise CheckFailed(f"expected JSON, got {self.status}: {self.body[:300]!r}") from error


def http(
    method: str,
    url: str,
    token: str,
    *,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 120,
) -> Response:
    """One HTTP request with ``Authorization: token``; errors are responses, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Authorization", f"token {token}")
    if body is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Response(answer.status, answer.read(), dict(answer.headers))
    except urllib.error.HTTPError as error:
        return Response(error.code, error.read(), dict(error.headers))


def expect(response: Response, *statuses: int, what: str) -> Response:
    if response.status not in statuses:
        raise CheckFailed(f"{what}: HTTP {response.status}: {response.body[:800].decode(errors='replace')}")
    return response


@dataclass
class Story:
    """Who plays which part, and where the hub is."""

    hub_url: str  # the proxy, e.g. http://127.0.0.1:8000
    admin_token: str  # a service token with admin:users, admin:servers
    home: Path  # the enclave home the hub's services use
    project: str = "demo-cardio"
    analyst: str = "bob"
    reviewers: tuple[str, ...] = ("carol", "dave", "erin")
    releaser: str = "sam"
    auditor: str = "audrey"  # the security auditor of scripts/demo.sh, who may search the audit log
    start_timeout: float = 180
    say: Callable[[str], None] = print
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return self.hub_url.rstrip("/") + "/hub/api"

    @property
    def server_url(self) -> str:
        return f"{self.hub_url.rstrip('/')}/user/{quote(self.analyst)}/{quote(self.project)}"

    @property
    def export_api(self) -> str:
        return self.hub_url.rstrip("/") + "/services/export-review/api"

    def admin(self, method: str, path: str, payload: dict | None = None) -> Response:
        body = None if payload is None else json.dumps(payload).encode()
        return http(method, self.api + path, self.admin_token, body=body)

    def token_of(self, user: str) -> str:
        """A one-hour token for ``user`` with the user's own permissions, minted by the check."""
        if user not in self.tokens:
            expect(self.admin("POST", f"/users/{user}"), 201, 409, what=f"create hub user {user}")
            answer = self.admin("POST", f"/users/{user}/tokens", {"note": "demo check", "expires_in": 3600})
            self.tokens[user] = expect(answer, 200, 201, what=f"token for {user}").json()["token"]
        return self.tokens[user]


def start_server(story: Story) -> dict:
    """Start the analyst's named server and wait until the hub says it is ready."""
    story.token_of(story.analyst)
    path = f"/users/{story.analyst}/servers/{story.project}"
    started = story.admin("POST", path)
    if started.status not in (201, 202, 400):  # 400: already running
        expect(started, 201, what="start the server")
    deadline = time.monotonic() + story.start_timeout
    while time.monotonic() < deadline:
        model = expect(story.admin("GET", f"/users/{story.analyst}"), 200, what="read the user").json()
        server = (model.get("servers") or {}).get(story.project)
        if server and server.get("ready"):
            return server
        if server is None and started.status != 400:
            raise CheckFailed("the server stopped while starting (see the hub log)")
        time.sleep(0.5)
    raise CheckFailed(f"the server was not ready after {story.start_timeout:.0f} s")


def put_notebook(story: Story, notebook: Path = NOTEBOOK) -> dict:
    """Copy the notebook into the workspace's home through the contents API."""
    model = {"type": "notebook", "format": "json", "content": json.loads(notebook.read_text())}
    answer = http(
        "PUT",
        f"{story.server_url}/api/contents/{quote(notebook.name)}",
        story.token_of(story.analyst),
        body=json.dumps(model).encode(),
    )
    return expect(answer, 200, 201, what="upload the notebook").json()


def _execute_request(code: str, session: str) -> tuple[str, str]:
    msg_id = uuid.uuid4().hex
    message = {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "session": session,
            "username": "demo-check",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }
    return msg_id, json.dumps(message)


async def _run_cells(ws_url: str, token: str, cells: list[str], timeout: float) -> list[str]:
    """Run each cell in the kernel; returns the text each printed. Raises on the first error."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    connection = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}))
    session = uuid.uuid4().hex
    outputs: list[str] = []
    try:
        for code in cells:
            msg_id, message = _execute_request(code, session)
            await connection.write_message(message)
            text, replied, idle = [], None, False
            while replied is None or not idle:
                raw = await asyncio.wait_for(connection.read_message(), timeout)
                if raw is None:
                    raise CheckFailed("the kernel websocket closed")
                if isinstance(raw, bytes):
                    continue
                reply = json.loads(raw)
                if reply.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = reply.get("msg_type"), reply.get("content", {})
                if kind == "stream":
                    text.append(content.get("text", ""))
                elif kind in ("execute_result", "display_data"):
                    text.append(content.get("data", {}).get("text/plain", ""))
                elif kind == "error":
                    trace = "\n".join(content.get("traceback", []))
                    raise CheckFailed(
                        f"the cell failed: {content.get('ename')}: {content.get('evalue')}\n{trace}"
                    )
                elif kind == "execute_reply":
                    replied = content.get("status")
                elif kind == "status" and content.get("execution_state") == "idle":
                    idle = True
            if replied != "ok":
                raise CheckFailed(f"the cell ended with status {replied}")
            outputs.append("".join(text))
    finally:
        connection.close()
    return outputs


def run_notebook(story: Story, notebook: Path = NOTEBOOK, timeout: float = 120) -> list[str]:
    """Start a kernel in the workspace and run the notebook's code cells in order over the websocket."""
    cells = [
        "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for cell in json.loads(notebook.read_text())["cells"]
        if cell["cell_type"] == "code"
    ]
    return _run_in_kernel(story, cells, timeout)


def _run_in_kernel(story: Story, cells: list[str], timeout: float) -> list[str]:
    """Start a kernel in the analyst's workspace, run ``cells`` in it over the websocket (what each
    printed), and shut it down."""
    token = story.token_of(story.analyst)
    kernel = expect(
        http("POST", f"{story.server_url}/api/kernels", token, body=json.dumps({"name": "python3"}).encode()),
        201,
        what="start a kernel",
    ).json()
    ws_url = story.server_url.replace("http", "ws", 1) + f"/api/kernels/{kernel['id']}/channels"
    try:
        return asyncio.run(_run_cells(ws_url, token, cells, timeout))
    finally:
        http("DELETE", f"{story.server_url}/api/kernels/{kernel['id']}", token)


def fetch_output(story: Story, path: str = OUTPUT) -> bytes:
    """The file the notebook wrote, read from the home volume through the contents API as the analyst."""
    answer = http(
        "GET",
        f"{story.server_url}/api/contents/{path}?type=file&format=text&content=1",
        story.token_of(story.analyst),
    )
    return expect(answer, 200, what=f"read {path}").json()["content"].encode()


def submit_export(story: Story, path: str = OUTPUT) -> str:
    """JupyterLab's "Request export" (``POST /enclave/exports`` of the workspace's server extension): the
    workspace reads the file from its home volume and submits it with its own server token."""
    answer = http(
        "POST",
        f"{story.server_url}/enclave/exports",
        story.token_of(story.analyst),
        body=json.dumps({"path": path, "justification": JUSTIFICATION}).encode(),
    )
    return expect(answer, 201, what="request the export from the workspace").json()["request"]


def submitted_sha256(story: Story, request_id: str) -> list[str]:
    """The sha256 of each file the export service holds for the request, as the requester sees them."""
    answer = http("GET", f"{story.export_api}/requests/{request_id}", story.token_of(story.analyst))
    return [f["sha256"] for f in expect(answer, 200, what="read the request").json()["request"]["files"]]


def vote(story: Story, request_id: str, reviewer: str, choice: str = "approve") -> Response:
    return http(
        "POST",
        f"{story.export_api}/requests/{request_id}/votes",
        story.token_of(reviewer),
        body=json.dumps({"choice": choice, "comment": "demo check"}).encode(),
    )


def release(story: Story, request_id: str, user: str) -> Response:
    return http("POST", f"{story.export_api}/requests/{request_id}/release", story.token_of(user), body=b"")


def download(story: Story, request_id: str, user: str) -> Response:
    return http("GET", f"{story.export_api}/requests/{request_id}/download", story.token_of(user))


def run_demo_setup(demo_dir: Path, *, patients: int = 2000, timeout: float = 1800) -> Path:
    """``scripts/demo.sh`` up to the provisioned project (``DEMO_SETUP_ONLY=1``) in ``demo_dir``: demo
    data, roles, the application from filing to approval, the DUA, the project. Returns the home."""
    home = demo_dir / "home"
    env = {
        **os.environ,
        "ENCLAVE_HOME": str(home),
        "DEMO_DIR": str(demo_dir),
        "DEMO_PATIENTS": str(patients),
        "DEMO_SETUP_ONLY": "1",
        "VENV": str(Path(sys.executable).parent.parent),
    }
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh")], capture_output=True, text=True, env=env, timeout=timeout
    )
    if done.returncode != 0:
        raise CheckFailed(
            f"scripts/demo.sh failed ({done.returncode}):\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
        )
    return home


def enclave_cli(story: Story, *args: str, enclave: Path | None = None) -> str:
    """Run ``enclave ARGS`` on the demo's home; its output, or ``CheckFailed``."""
    command = [str(enclave or Path(sys.executable).parent / "enclave"), *args]
    env = {**os.environ, "ENCLAVE_HOME": str(story.home)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    if done.returncode != 0:
        raise CheckFailed(f"enclave {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout.strip()


def verify_audit(story: Story, enclave: Path | None = None) -> str:
    return enclave_cli(story, "audit", "verify", enclave=enclave)


# The application's way to the project, in the order the audit log must show it.
GOVERNANCE_TRAIL = (
    "application.file",
    "application.submit",
    "application.forward",
    "application.countersign",
    "application.decide",
    "dua.record",
)


def check_governance(story: Story) -> dict:
    """The project came from an approved application with a recorded, verifying DUA (issue 11)."""
    project = json.loads(enclave_cli(story, "project", "show", story.project, "--json"))
    app_id = project.get("application")
    if not app_id or (project.get("spec") or {}).get("application") != app_id:
        raise CheckFailed(f"project {story.project} was not provisioned from an application: {app_id!r}")
    app = json.loads(enclave_cli(story, "application", "show", app_id, "--user", story.auditor, "--json"))
    tally = app.get("tally") or {}
    if app.get("state") != "approved" or tally.get("decision") != "approved":
        raise CheckFailed(f"application {app_id} is {app.get('state')!r}, not approved: {tally}")
    if not all((tally.get("chain") or {}).values()):
        raise CheckFailed(f"application {app_id}: the approval chain is not satisfied: {tally.get('chain')}")
    dua = json.loads(enclave_cli(story, "agreement", "show", app_id, "--json")).get("current")
    if not dua or not dua.get("verified"):
        raise CheckFailed(f"application {app_id} has no verifying data-use agreement: {dua}")
    records = json.loads(
        enclave_cli(story, "audit", "search", "--user", story.auditor, "--limit", "10000", "--json")
    )
    mine = [r for r in reversed(records) if r["object"] == f"application:{app_id}"]
    actions = [r["action"] for r in mine]
    positions = [actions.index(a) if a in actions else -1 for a in GOVERNANCE_TRAIL]
    if -1 in positions or positions != sorted(positions):
        raise CheckFailed(f"the audit trail of {app_id} is not {GOVERNANCE_TRAIL}: {actions}")
    created = [r for r in records if r["action"] == "project.create" and r["project"] == story.project]
    if not created:
        raise CheckFailed(f"no project.create record for {story.project}")
    return {
        "application": app_id,
        "approvers": tally.get("countersigned"),
        "dua": f"{dua['kind']} by {dua['signer']}, {dua['start']} to {dua['end']}",
        "trail": actions,
    }


def table_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


def run_story(story: Story) -> dict:
    """Every step in order; prints each and raises ``CheckFailed`` at the first that fails."""
    step = story.say
    governance = check_governance(story)
    step(
        f"[ok] {story.project} was provisioned from application {governance['application']}: approved "
        f"({governance['approvers']} countersigned), DUA {governance['dua']}, "
        f"{len(governance['trail'])} audit records found by the auditor {story.auditor}"
    )
    server = start_server(story)
    step(f"[ok] {story.analyst}'s server {story.project} is ready ({server.get('url')})")
    put_notebook(story)
    outputs = run_notebook(story)
    step(f"[ok] the notebook {NOTEBOOK.name} ran in the workspace: {outputs[-1].strip()}")
    data = fetch_output(story)
    rows = table_rows(data)
    if len(rows) < 2 or rows[0] != ["department", "patients", "mean_cost"]:
        raise CheckFailed(f"{OUTPUT} is not the expected table: {rows[:3]}")
    if any(int(float(row[1])) < 5 for row in rows[1:] if row[1]):
        raise CheckFailed(f"a cell below the minimum count came out of the gateway: {rows}")
    step(f"[ok] {OUTPUT}: {len(rows) - 1} departments, read through the contents API")
    request_id = submit_export(story)
    if submitted_sha256(story, request_id) != [hashlib.sha256(data).hexdigest()]:
        raise CheckFailed(f"the export service does not hold {OUTPUT} as the workspace has it")
    step(f"[ok] export request {request_id} submitted from the workspace by {story.analyst}")
    own = vote(story, request_id, story.analyst)
    if own.status != 403:
        raise CheckFailed(f"the requester's own vote was not refused: HTTP {own.status}")
    step(f"[ok] {story.analyst}'s vote on their own request is refused (HTTP 403)")
    state = ""
    for reviewer in story.reviewers:
        state = (
            expect(vote(story, request_id, reviewer), 200, what=f"{reviewer} votes").json().get("state", "")
        )
        step(f"[ok] {reviewer} approves; request {state}")
    if state != "approved":
        raise CheckFailed(f"after all votes the request is {state!r}, not approved")
    early = download(story, request_id, story.analyst)
    released = expect(release(story, request_id, story.releaser), 200, what="release").json()
    if "location" in released:  # a server path is for operators, never in a web answer
        raise CheckFailed(f"the release answer shows a server path: {released['location']!r}")
    step(f"[ok] {story.releaser} releases it (state {released.get('state')}, outbox path not shown)")
    if early.status != 403:
        raise CheckFailed(f"a download before the release was not refused: HTTP {early.status}")
    got = expect(download(story, request_id, story.analyst), 200, what="download")
    with zipfile.ZipFile(io.BytesIO(got.body)) as archive:
        names = archive.namelist()
        inside = [n for n in names if n.endswith("table1.csv")]
        if not inside or table_rows(archive.read(inside[0])) != rows:
            raise CheckFailed(f"the downloaded zip does not hold the submitted table: {names}")
    step(f"[ok] {story.analyst} downloads {len(got.body)} bytes: {', '.join(names)}")
    batch = run_template(story)
    step(
        f"[ok] the approved template {TEMPLATE} ran as batch job {batch['id']}: {batch['state']}, "
        f"outputs {', '.join(o['name'] for o in batch['outputs'])}"
    )
    verified = verify_audit(story)
    step(f"[ok] audit: {verified.splitlines()[-1] if verified else 'verified'}")
    return {"request": request_id, "rows": rows, "files": names, "governance": governance, "batch": batch}


def run_template(story: Story, timeout: float = 300) -> dict:
    """From a kernel in the analyst's workspace, run the project's approved template as a batch job
    (``enclave_client.runs``) and wait for it: it runs in a fresh locked-down container of its own."""
    code = (
        "import json\nfrom enclave_client import runs\n"
        f"run = runs.submit(None, {{'group': 'sex'}}, template={TEMPLATE!r}, wait=True)\n"
        f"print({RESULT_MARKER!r} + json.dumps(runs.status(run.id).data))"
    )
    [printed] = _run_in_kernel(story, [code], timeout)
    # The kernel's stdout and stderr (the progress line) arrive together: the result follows a marker.
    marker = printed.rfind(RESULT_MARKER)
    if marker < 0:
        raise CheckFailed(f"the batch run printed no result: {printed[-500:]!r}")
    batch = json.loads(printed[marker + len(RESULT_MARKER) :].splitlines()[0])
    if batch.get("state") != "succeeded" or not batch.get("outputs"):
        raise CheckFailed(f"the batch run of {TEMPLATE} ended {batch.get('state')}: {batch.get('error')}")
    return batch


def _hub_running(state: Path) -> bool:
    pid_file = state / "jupyterhub.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", type=Path, default=REPO / "demo")
    parser.add_argument("--hub-url", default=f"http://127.0.0.1:{os.environ.get('ENCLAVE_HUB_PORT', '8000')}")
    parser.add_argument("--keep", action="store_true", help="leave a hub this check started running")
    args = parser.parse_args(argv)
    state = args.demo_dir / "hub"
    started_here = False
    if not _hub_running(state):
        print("== no demo hub running: starting one (scripts/demo-hub.sh)", flush=True)
        if subprocess.run(["bash", str(REPO / "scripts/demo-hub.sh")], check=False).returncode != 0:
            print("[FAIL] the demo hub did not start", file=sys.stderr)
            return 1
        started_here = True
    story = Story(
        hub_url=args.hub_url,
        admin_token=(state / "check-token").read_text().strip(),
        home=args.demo_dir / "home",
        say=lambda line: print(line, flush=True),
    )
    print(f"== the demo story through the hub at {story.hub_url}", flush=True)
    try:
        run_story(story)
    except (CheckFailed, OSError, TimeoutError) as error:
        print(f"[FAIL] {error}", file=sys.stderr)
        return 1
    finally:
        if started_here and not args.keep:
            subprocess.run(["bash", str(REPO / "scripts/demo-hub.sh"), "stop"], check=False)
    print("== demo check passed / 演示检查通过", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
