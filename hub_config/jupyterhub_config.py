"""JupyterHub configuration of the enclave (issue 7): locked-down Docker workspaces, one per analyst
and project.

Run:  jupyterhub -f hub_config/jupyterhub_config.py   (as root: the spawner manages Docker networks
and the host firewall). Settings come from the environment so the same file serves the demo, the
tests and a deployment:

  ENCLAVE_HOME                 the enclave home (state DB, vault); required for real use
  ENCLAVE_HUB_IP / _PORT       where the proxy listens for browsers (default 127.0.0.1:8000)
  ENCLAVE_HUB_API_PORT         the hub API port; workspaces reach it on their network gateway (8081)
  ENCLAVE_GATEWAY_PORT         the query gateway service port (8101)
  ENCLAVE_EXPORT_REVIEW_PORT   the export-review service port (8102)
  ENCLAVE_EXPORT_REVIEW_COMMAND  replaces the export-review service command line (`enclave export serve`)
  ENCLAVE_HUB_SERVICES         "all" (default), or a comma list of: gateway, export-review, culler;
                               "none" starts no managed service
  ENCLAVE_IDLE_TIMEOUT         idle server and kernel timeout in seconds (600, the standard's example)
  ENCLAVE_ANALYST_IMAGE        the workspace image (enclave/analyst:latest)

Authentication. The embedded default is EnclaveAuthenticator (hub_config/auth.py): local accounts
made with `enclave user add NAME` (password from stdin), scrypt-hashed in the state database, locked
for ENCLAVE_LOCKOUT_SECONDS (900) after ENCLAVE_MAX_FAILED_LOGINS (5) failures, with a TOTP code once
`enclave user totp NAME` enabled it; every attempt is in the audit log. There is no sign-up.
To use an organisation's identity provider instead, set ENCLAVE_HUB_AUTHENTICATOR and configure it
in a site config loaded after this file (`load_subconfig`); secrets come from files, never from here:
  - OAuth / OIDC:  pip install oauthenticator; ENCLAVE_HUB_AUTHENTICATOR=generic-oauth, then
      c.GenericOAuthenticator.client_id = "enclave"
      c.GenericOAuthenticator.client_secret = Path("/run/secrets/oidc").read_text().strip()
      c.GenericOAuthenticator.oauth_callback_url = "https://enclave.example/hub/oauth_callback"
      c.GenericOAuthenticator.authorize_url / token_url / userdata_url = the provider's endpoints
      c.GenericOAuthenticator.username_claim = "preferred_username"
    (require the provider's second factor: R-SEC-1 asks two factors for remote access);
  - LDAP:  pip install jupyterhub-ldapauthenticator;
    ENCLAVE_HUB_AUTHENTICATOR=ldapauthenticator.LDAPAuthenticator, then
      c.LDAPAuthenticator.server_address = "ldap.example"; c.LDAPAuthenticator.use_ssl = True
      c.LDAPAuthenticator.bind_dn_template = ["uid={username},ou=people,dc=example,dc=org"]
User names must match the names in project specs (lower case); lockout and TOTP are then the
identity provider's job.
Whatever the authenticator, a user reaches a workspace only as an analyst of an active project:
the spawner checks the state database on every start and poll.
"""

import os
import shutil
import sys
from pathlib import Path

from hub_config import roles
from hub_config.auth import EnclaveAuthenticator
from hub_config.spawner import EnclaveSpawner

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

REPO = Path(__file__).resolve().parent.parent
env = os.environ.get

idle_timeout = int(env("ENCLAVE_IDLE_TIMEOUT", str(roles.DEFAULT_IDLE_TIMEOUT_SECONDS)))
hub_api_port = int(env("ENCLAVE_HUB_API_PORT", "8081"))
gateway_port = int(env("ENCLAVE_GATEWAY_PORT", "8101"))
export_port = int(env("ENCLAVE_EXPORT_REVIEW_PORT", "8102"))

# ---- the hub and its proxy ----------------------------------------------------------------------
c.JupyterHub.ip = env("ENCLAVE_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(env("ENCLAVE_HUB_PORT", "8000"))
# The hub API listens on every interface so each project's network reaches it on its own gateway
# address; the firewall (hub_config/firewall.py) limits what workspaces reach on the host.
c.JupyterHub.hub_bind_url = f"http://0.0.0.0:{hub_api_port}"
c.JupyterHub.cleanup_servers = True
state_dir = Path(env("ENCLAVE_HUB_STATE", str(Path(env("ENCLAVE_HOME", "~/.enclave")).expanduser() / "hub")))
state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
c.JupyterHub.db_url = f"sqlite:///{state_dir / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state_dir / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(state_dir / "proxy.pid")
chp = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = [
    str(chp) if chp.exists() else shutil.which("configurable-http-proxy") or str(chp)
]

# ---- workspaces: one named server per project ---------------------------------------------------
c.JupyterHub.spawner_class = EnclaveSpawner
c.JupyterHub.allow_named_servers = True
c.JupyterHub.named_server_limit_per_user = 0  # one per project the user belongs to; the spawner checks
c.JupyterHub.default_url = "/hub/home"
c.EnclaveSpawner.image = env("ENCLAVE_ANALYST_IMAGE", "enclave/analyst:latest")
c.EnclaveSpawner.hub_port = hub_api_port
c.EnclaveSpawner.service_ports = {"gateway": gateway_port, "export-review": export_port}
c.EnclaveSpawner.mem_limit = env("ENCLAVE_WORKSPACE_MEMORY", "2G")
c.EnclaveSpawner.cpu_limit = float(env("ENCLAVE_WORKSPACE_CPUS", "1.0"))
c.EnclaveSpawner.pids_limit = int(env("ENCLAVE_WORKSPACE_PIDS", "256"))
c.EnclaveSpawner.start_timeout = 120
c.EnclaveSpawner.http_timeout = 60
# Kernels are culled inside the workspace too (the image reads these).
c.EnclaveSpawner.args = [
    f"--MappingKernelManager.cull_idle_timeout={idle_timeout}",
    "--MappingKernelManager.cull_interval=60",
    "--MappingKernelManager.cull_connected=True",
]
if env("ENCLAVE_HOME"):
    c.EnclaveSpawner.enclave_home = env("ENCLAVE_HOME")

# ---- authentication -----------------------------------------------------------------------------
authenticator = env("ENCLAVE_HUB_AUTHENTICATOR", "")
if authenticator:
    c.JupyterHub.authenticator_class = authenticator
else:
    c.JupyterHub.authenticator_class = EnclaveAuthenticator
    c.EnclaveAuthenticator.max_failed_logins = int(env("ENCLAVE_MAX_FAILED_LOGINS", "5"))
    c.EnclaveAuthenticator.lockout_seconds = int(env("ENCLAVE_LOCKOUT_SECONDS", "900"))
    if env("ENCLAVE_HOME"):
        c.EnclaveAuthenticator.enclave_home = env("ENCLAVE_HOME")
c.Authenticator.allow_all = True  # who may do what is decided per project by the spawner
c.Authenticator.admin_users = set()

# ---- roles, groups, services ----------------------------------------------------------------------
wanted = env("ENCLAVE_HUB_SERVICES", "all")
wanted_services = (
    set()
    if wanted == "none"
    else {"gateway", "export-review", "culler"}
    if wanted == "all"
    else set(wanted.split(","))
)
services = []
service_env = {"ENCLAVE_HOME": env("ENCLAVE_HOME", "")} if env("ENCLAVE_HOME") else {}
if "gateway" in wanted_services:
    services.append(
        roles.managed_service(
            "gateway",
            f"http://0.0.0.0:{gateway_port}",
            [
                str(Path(sys.executable).parent / "enclave"),
                "gateway",
                "serve",
                "--ip",
                "0.0.0.0",
                "--port",
                str(gateway_port),
            ],
            service_env,
        )
    )
if "export-review" in wanted_services:
    export_command = env("ENCLAVE_EXPORT_REVIEW_COMMAND", "").split() or [
        str(Path(sys.executable).parent / "enclave"),
        "export",
        "serve",
        "--ip",
        "0.0.0.0",
        "--port",
        str(export_port),
    ]
    services.append(
        roles.managed_service("export-review", f"http://0.0.0.0:{export_port}", export_command, service_env)
    )
if "culler" in wanted_services:
    services.append(roles.idle_culler_service(idle_timeout))
c.JupyterHub.services = services
c.JupyterHub.load_groups = {roles.STEWARDS_GROUP: {"users": []}, roles.REVIEWERS_GROUP: {"users": []}}
c.JupyterHub.load_roles = roles.load_roles(
    [s["name"] for s in services if s["name"] != roles.IDLE_CULLER], culler="culler" in wanted_services
)
