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
  ENCLAVE_EXPORT_REVIEW_COMMAND  the export-review service command line (not wired yet: item 3)
  ENCLAVE_HUB_SERVICES         "all" (default), or a comma list of: gateway, export-review, culler;
                               "none" starts no managed service
  ENCLAVE_IDLE_TIMEOUT         idle server and kernel timeout in seconds (600, the standard's example)
  ENCLAVE_ANALYST_IMAGE        the workspace image (enclave/analyst:latest)

Authentication. The embedded default is NativeAuthenticator (jupyterhub-nativeauthenticator:
local accounts with hashed passwords, failed-login lockout, optional TOTP) when it is installed;
otherwise no one can log in (NullAuthenticator) until an authenticator is configured: default deny.
To use an organisation's identity provider instead, set ENCLAVE_HUB_AUTHENTICATOR, e.g.
  - OAuth / OIDC:  pip install oauthenticator; ENCLAVE_HUB_AUTHENTICATOR=generic-oauth and the
    GenericOAuthenticator settings (client_id, client_secret from a secret file, authorize_url,
    token_url, userdata_url, username_claim) in a site config loaded after this file;
  - LDAP:  pip install jupyterhub-ldapauthenticator;
    ENCLAVE_HUB_AUTHENTICATOR=ldapauthenticator.LDAPAuthenticator, and set
    LDAPAuthenticator.server_address, bind_dn_template, use_ssl=True.
Whatever the authenticator, a user reaches a workspace only as an analyst of an active project:
the spawner checks the state database on every start and poll.
"""

import os
import shutil
import sys
from pathlib import Path

from hub_config import roles
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
    try:
        import nativeauthenticator  # noqa: F401

        c.JupyterHub.authenticator_class = "native"
        c.NativeAuthenticator.open_signup = False  # accounts come from `enclave user add`
        c.NativeAuthenticator.check_common_password = True
        c.NativeAuthenticator.minimum_password_length = 12
        c.NativeAuthenticator.allowed_failed_logins = 5
        c.NativeAuthenticator.seconds_before_next_try = 600
        c.NativeAuthenticator.allow_2fa = True
    except ImportError:
        c.JupyterHub.authenticator_class = "null"
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
if "export-review" in wanted_services and env("ENCLAVE_EXPORT_REVIEW_COMMAND"):
    # Item 3 seam: the export-review web service is being built; its command line plugs in here.
    services.append(
        roles.managed_service(
            "export-review",
            f"http://0.0.0.0:{export_port}",
            env("ENCLAVE_EXPORT_REVIEW_COMMAND").split(),
            service_env,
        )
    )
if "culler" in wanted_services:
    services.append(roles.idle_culler_service(idle_timeout))
c.JupyterHub.services = services
c.JupyterHub.load_groups = {roles.STEWARDS_GROUP: {"users": []}, roles.REVIEWERS_GROUP: {"users": []}}
c.JupyterHub.load_roles = roles.load_roles(
    [s["name"] for s in services if s["name"] != roles.IDLE_CULLER], culler="culler" in wanted_services
)
