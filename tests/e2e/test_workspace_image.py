"""From inside a real workspace: the image carries no vault code, JupyterLab does not call home, and
every server start, stop and cull is audited (issue 14, items 11-13)."""

from __future__ import annotations

import json
import re
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from enclave import audit, db, projects
from enclave.config import Paths
from enclave.specs import parse_project_spec
from tests.e2e.conftest import PROJECT_A, Hub, exec_python, free_port, launch_hub, sh
from tests.harness import factories

pytestmark = pytest.mark.slow

# Server-side packages that must never be importable by an analyst. cryptography is not listed:
# jupyterhub-singleuser needs jupyterhub, whose certipy dependency pulls it in (checked below).
VAULT_DISTRIBUTIONS = {
    "enclave",
    "psycopg",
    "psycopg-binary",
    "psycopg2",
    "minio",
    "dockerspawner",
    "sqlglot",
    "jupyterhub-idle-culler",
    "openpyxl",
    "typer",
}
CULL_PROJECT = "e2e-delta"


@pytest.fixture(scope="module")
def alice(hub: Hub) -> str:
    return hub.start("alice", PROJECT_A)


def test_the_vault_is_not_installed_only_the_client(alice: str) -> None:
    done = exec_python(
        alice,
        "import importlib, importlib.metadata as md, json\n"
        "result = {}\n"
        "for name in ['enclave', 'enclave.prepare', 'enclave.audit', 'enclave_client']:\n"
        "    try:\n        importlib.import_module(name); result[name] = 'ok'\n"
        "    except ImportError as e:\n        result[name] = type(e).__name__\n"
        "dists = {d.metadata['Name'].lower().replace('_', '-'): d.requires or []\n"
        "         for d in md.distributions()}\n"
        "result['dists'] = sorted(dists)\n"
        "result['needs_cryptography'] = sorted(n for n, r in dists.items()"
        " if any(q.startswith('cryptography') and 'extra ==' not in q for q in r))\n"
        "import enclave_client\nresult['connect'] = callable(enclave_client.connect)\n"
        "print(json.dumps(result))\n",
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["enclave"] == "ModuleNotFoundError", result
    assert result["enclave.prepare"] == "ModuleNotFoundError", result
    assert result["enclave.audit"] == "ModuleNotFoundError", result
    assert result["enclave_client"] == "ok" and result["connect"] is True, result
    assert "enclave-client" in result["dists"] and "enclave-lockdown" in result["dists"]
    assert VAULT_DISTRIBUTIONS.isdisjoint(result["dists"]), VAULT_DISTRIBUTIONS & set(result["dists"])
    if "cryptography" in result["dists"]:  # only because jupyterhub needs it, never for our code
        assert result["needs_cryptography"] == ["certipy"], result["needs_cryptography"]
    pip = sh("docker", "exec", alice, "pip", "list", "--format", "json", check=False)
    names = {p["name"].lower() for p in json.loads(pip.stdout)}
    assert "enclave" not in names and "enclave-client" in names


def page_config(html: str) -> dict:
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
    assert found, html[:500]
    return json.loads(found.group(1))


def test_jupyterlab_does_not_call_home(alice: str, hub: Hub) -> None:
    base = f"/user/alice/{PROJECT_A}"
    status, body = hub.get_url(f"{base}/lab/api/news")
    assert status == 200 and json.loads(body) == {"news": []}, body
    status, body = hub.get_url(f"{base}/lab/api/update")
    assert status == 200 and json.loads(body) == {"notification": None}, body
    status, html = hub.get_url(f"{base}/lab")
    assert status == 200, html[:300]
    config = page_config(html)
    assert config["news"] == {"disabled": True}  # the server has no news URL: it fetches nothing
    for plugin in ("@jupyterlab/apputils-extension:announcements", "@jupyterlab/extensionmanager-extension"):
        assert plugin in config["disabledExtensions"], plugin
        assert plugin in config["lockedExtensions"], plugin
    assert config["extensionManager"]["can_install"] is False, config["extensionManager"]
    # The update check is server-side only: the effective configuration names the class that never checks.
    shown = sh("docker", "exec", alice, "jupyter", "lab", "--show-config", check=False)
    effective = shown.stdout.split("Loaded config files:", 1)[-1]
    assert "check_for_updates_class = 'jupyterlab.handlers.announcements.NeverCheckForUpdate'" in effective
    assert ".news_url = None" in effective and ".extension_manager = 'readonly'" in effective


# ---- the audit log of server starts, stops and culls -----------------------------------------------


def server_events(paths: Paths, project: str) -> list[dict]:
    with db.session_scope(db.connect(f"sqlite:///{paths.state_db}")) as session:
        events = audit.tail(session, limit=500, project=project)
        return [audit.event_to_dict(e) for e in events if e.action.startswith("server.")]


def image_id() -> str:
    return sh("docker", "image", "inspect", "--format", "{{.Id}}", "enclave/analyst:latest").stdout.strip()


def container_id(name: str) -> str:
    return sh("docker", "inspect", "--format", "{{.Id}}", name).stdout.strip()


def test_a_start_and_a_requested_stop_are_audited(hub: Hub) -> None:
    before = len(server_events(hub.paths, PROJECT_A))
    container = hub.start("bob", PROJECT_A)
    full_id = container_id(container)
    hub.stop("bob", PROJECT_A)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and hub.server("bob", PROJECT_A) is not None:
        time.sleep(0.5)
    events = [e for e in server_events(hub.paths, PROJECT_A)[before:] if e["details"].get("user") == "bob"]
    spawn, stop = events[-2], events[-1]
    assert spawn["action"] == "server.spawn" and spawn["outcome"] == "success", spawn
    assert stop["action"] == "server.stop" and stop["outcome"] == "success", stop
    for event in (spawn, stop):
        assert event["details"]["container_id"] == full_id
        assert event["details"]["container_name"] == container
        assert event["details"]["image_digest"] == image_id()
        assert event["details"]["image_digest"].startswith("sha256:")
        assert event["project"] == PROJECT_A and event["source"] == "hub"
    assert spawn["actor"] == stop["actor"] == "service:enclave-test-admin"
    assert stop["details"]["cause"] == "request"


def test_a_refused_start_is_audited(hub: Hub) -> None:
    hub.ensure_user("mallory")
    hub.call("POST", f"/users/mallory/servers/{PROJECT_A}")
    refused = [e for e in server_events(hub.paths, PROJECT_A) if e["details"].get("user") == "mallory"]
    assert refused and refused[-1]["action"] == "server.spawn", refused
    assert refused[-1]["outcome"] == "refused" and refused[-1]["details"]["code"] == "not_a_project_analyst"


@pytest.fixture(scope="module")
def cull_project(hub: Hub) -> str:
    """A fourth project, so the culling hub shares no network or container with the session hub."""
    period = {
        "start": (date.today() - timedelta(days=1)).isoformat(),
        "end": (date.today() + timedelta(days=30)).isoformat(),
    }
    spec = parse_project_spec(
        factories.project_spec(id=CULL_PROJECT, pi="dora", analysts=["dora"], period=period)
    )
    with db.session_scope(db.connect(f"sqlite:///{hub.paths.state_db}")) as session:
        projects.create_project(
            session, hub.paths, spec, actor="steward", without_application=factories.NO_APPLICATION
        )
    return CULL_PROJECT


def test_an_idle_server_is_culled_and_audited_as_a_cull(
    hub: Hub, cull_project: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir: Path = tmp_path_factory.mktemp("culling-hub")
    settings = {
        "ENCLAVE_HUB_SERVICES": "culler",
        "ENCLAVE_IDLE_TIMEOUT": "10",
        "ENCLAVE_TEST_PROXY_API_PORT": str(free_port()),
    }
    with launch_hub(hub.paths, workdir, **settings) as culling:
        container = culling.start("dora", cull_project)
        full_id = container_id(container)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and culling.server("dora", cull_project) is not None:
            time.sleep(1)
        assert culling.server("dora", cull_project) is None, culling.log.read_text()[-3000:]
    events = server_events(hub.paths, cull_project)
    assert [e["action"] for e in events] == ["server.spawn", "server.cull"], events
    cull = events[-1]
    assert cull["actor"] == "service:idle-culler" and cull["details"]["cause"] == "idle_cull"
    assert cull["details"]["container_id"] == full_id and cull["details"]["image_digest"] == image_id()


def wait_stopped(hub: Hub, user: str, project: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and hub.server(user, project) is not None:
        time.sleep(0.5)
    assert hub.server(user, project) is None, hub.log.read_text()[-3000:]


def test_a_config_written_in_the_home_cannot_undo_the_lockdown(hub: Hub) -> None:
    """The analyst can write to their home, which outlives the container; Jupyter's user config
    directory must not be there, or a config file would switch the lock-down off at the next start."""
    undo = (
        "c.ServerApp.jpserver_extensions = {'enclave_lockdown': False}\n"
        "c.ServerApp.contents_manager_class = 'jupyter_server.services.contents.largefilemanager."
        "LargeFileManager'\n"
        "c.ContentsManager.files_handler_class = 'jupyter_server.files.handlers.FilesHandler'\n"
    )
    container = hub.start("bob", PROJECT_A)
    written = exec_python(
        container,
        "import os, json\n"
        f"undo = {undo!r}\n"
        "home = '/home/analyst'\n"
        "for d in ['.jupyter', '.jupyter/jupyter_server_config.d', '.jupyter/labconfig']:\n"
        "    os.makedirs(os.path.join(home, d), exist_ok=True)\n"
        "for f in ['.jupyter/jupyter_server_config.py', 'jupyter_server_config.py',\n"
        "          '.jupyter/jupyterhub_singleuser_config.py']:\n"
        "    open(os.path.join(home, f), 'w').write(undo)\n"
        "json.dump({'ServerApp': {'jpserver_extensions': {'enclave_lockdown': False}}},\n"
        "          open(home + '/.jupyter/jupyter_server_config.d/undo.json', 'w'))\n"
        "json.dump({'disabledExtensions': {}, 'lockedExtensions': {}},\n"
        "          open(home + '/.jupyter/labconfig/page_config.json', 'w'))\n"
        "open(home + '/secret.csv', 'w').write('a,b\\n1,2\\n')\n",
    )
    assert written.returncode == 0, written.stderr
    hub.stop("bob", PROJECT_A)
    wait_stopped(hub, "bob", PROJECT_A)

    container = hub.start("bob", PROJECT_A)
    kept = sh(
        "docker",
        "exec",
        container,
        "test",
        "-f",
        "/home/analyst/.jupyter/jupyter_server_config.py",
        check=False,
    )
    assert kept.returncode == 0  # the home outlived the restart, so the attempt was real
    paths = json.loads(sh("docker", "exec", container, "jupyter", "--paths", "--json").stdout)
    assert not [p for p in paths["config"] if p.startswith("/home")], paths["config"]
    base = f"/user/bob/{PROJECT_A}"
    for path in ["/files/secret.csv", "/api/contents/secret.csv?content=1&format=base64"]:
        status, body = hub.get_url(base + path)
        assert status == 403, (path, status, body[:300])
    status, html = hub.get_url(f"{base}/lab")
    assert status == 200
    locked = page_config(html)
    assert "@jupyterlab/filebrowser-extension:download" in locked.get("disabledExtensions", []), locked
    saved = exec_python(
        container,
        "import os; d = os.environ['JUPYTERLAB_SETTINGS_DIR']; os.makedirs(d, exist_ok=True);"
        "print(d.startswith('/home/analyst/'))",
    )
    assert saved.stdout.strip() == "True", saved.stderr  # lab settings still save in the home
    hub.stop("bob", PROJECT_A)
    wait_stopped(hub, "bob", PROJECT_A)
