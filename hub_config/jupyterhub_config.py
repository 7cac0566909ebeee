"""JupyterHub configuration of the enclave (issue 7): locked-down Docker workspaces, one per analyst
and project.

Run:  jupyterhub -f hub_config/jupyterhub_config.py   (as root: the spawner manages Docker networks
and the host firewall). Settings come from the environment so the same file serves the demo, the
tests and a deployment:

  ENCLAVE_HOME                 the enclave home (state DB, vault); required for real use
  ENCLAVE_HUB_IP / _PORT       where the proxy listens for browsers (default 127.0.0.1:8000): the only
                               address a deployment may open to its users
  ENCLAVE_HUB_API_PORT         the hub API port, on 127.0.0.1 only (8081)
  ENCLAVE_GATEWAY_PORT         the query gateway service port, on 127.0.0.1 only (8101)
  ENCLAVE_EXPORT_REVIEW_PORT   the export-review service port, on 127.0.0.1 only (8102)
  ENCLAVE_CONSOLE_PORT         the steward console service port, on 127.0.0.1 only (8103)
  ENCLAVE_RUNS_PORT            the batch-runs service port, on 127.0.0.1 only (8104); its worker starts
                               run containers like workspaces (ENCLAVE_ANALYST_IMAGE, ENCLAVE_WORKSPACE_*)
  ENCLAVE_RUN_HOST_CAP         batch runs executing at once on this host (2)
  ENCLAVE_MONITORING_TOKEN_FILE  file (0600) holding the token of a "monitoring" service allowed only
                               `read:metrics`: /hub/metrics and the services' /metrics (Prometheus)
  ENCLAVE_EXPORT_REVIEW_COMMAND  replaces the export-review service command line (`enclave export serve`)
  ENCLAVE_HUB_SERVICES         "all" (default), or a comma list of: gateway, export-review, console,
                               runs, culler, sweep; "none" starts no managed service
  ENCLAVE_SWEEP_INTERVAL       seconds between two passes of the lifecycle sweep service (3600)
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

Bind addresses (issue 13). The hub API and the services listen on 127.0.0.1 only, never on 0.0.0.0,
so the host's other addresses (its LAN address, docker0, the project bridges) refuse their ports and
nothing reaches them past the proxy. A workspace reaches them at its project network's gateway
address: hub_config/firewall.py forwards exactly the allowed ports of each project bridge's gateway
to 127.0.0.1 (DNAT, with route_localnet on that bridge only) and refuses everything else. The rules
are installed when the spawner sets up a project's network, so networks made after the hub started
work too. The hub and the services must therefore run in the host's network namespace (a container
deployment: network_mode "host"). Only the proxy (ENCLAVE_HUB_IP) faces users.
"""

import os
import shutil
import sys
from pathlib import Path

from hub_config import firewall, roles
from hub_config.auth import EnclaveAuthenticator
from hub_config.spawner import EnclaveSpawner

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

REPO = Path(__file__).resolve().parent.parent
env = os.environ.get

idle_timeout = int(env("ENCLAVE_IDLE_TIMEOUT", str(roles.DEFAULT_IDLE_TIMEOUT_SECONDS)))
hub_api_port = int(env("ENCLAVE_HUB_API_PORT", "8081"))
gateway_port = int(env("ENCLAVE_GATEWAY_PORT", "8101"))
export_port = int(env("ENCLAVE_EXPORT_REVIEW_PORT", "8102"))
console_port = int(env("ENCLAVE_CONSOLE_PORT", "8103"))
runs_port = int(env("ENCLAVE_RUNS_PORT", "8104"))
internal_ip = firewall.SERVICE_ADDRESS  # the hub API and the services: see "Bind addresses" above

# ---- the hub and its proxy ----------------------------------------------------------------------
c.JupyterHub.ip = env("ENCLAVE_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(env("ENCLAVE_HUB_PORT", "8000"))
# Loopback only; workspaces reach it on their network's gateway, forwarded by hub_config/firewall.py.
c.JupyterHub.hub_bind_url = f"http://{internal_ip}:{hub_api_port}"
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
c.EnclaveSpawner.service_ports = {"gateway": gateway_port, "export-review": export_port, "runs": runs_port}
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
    else {"gateway", "export-review", "console", "runs", "culler"}
    if wanted == "all"
    else set(wanted.split(","))
)
services = []
service_env = {"ENCLAVE_HOME": env("ENCLAVE_HOME", "")} if env("ENCLAVE_HOME") else {}
if "gateway" in wanted_services:
    services.append(
        roles.managed_service(
            "gateway",
            f"http://{internal_ip}:{gateway_port}",
            [
                str(Path(sys.executable).parent / "enclave"),
                "gateway",
                "serve",
                "--ip",
                internal_ip,
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
        internal_ip,
        "--port",
        str(export_port),
    ]
    services.append(
        roles.managed_service(
            "export-review", f"http://{internal_ip}:{export_port}", export_command, service_env
        )
    )
if "console" in wanted_services:
    # Browsers only (through the proxy): workspaces are not forwarded to it. Its token stops a project's
    # servers when a steward suspends, expires or destroys it, then clears these services' token caches.
    console_env = {
        **service_env,
        "ENCLAVE_SERVICE_URLS": ",".join(
            f"http://{internal_ip}:{port}/services/{name}/"
            for name, port in (("gateway", gateway_port), ("export-review", export_port), ("runs", runs_port))
            if name in wanted_services
        ),
    }
    services.append(
        roles.managed_service(
            "console",
            f"http://{internal_ip}:{console_port}",
            [
                str(Path(sys.executable).parent / "enclave"),
                "console",
                "serve",
                "--ip",
                internal_ip,
                "--port",
                str(console_port),
            ],
            console_env,
        )
    )
if "runs" in wanted_services:
    # Batch runs (issue 12): the API for workspaces (forwarded to them as ENCLAVE_RUNS_URL), pages for
    # browsers, and the worker, which starts run containers as the spawner starts workspaces (Docker and
    # the host firewall: the hub's user). Its containers get the same image, limits and allowed ports.
    runs_env = {
        **service_env,
        "ENCLAVE_HUB_API_PORT": str(hub_api_port),
        "ENCLAVE_GATEWAY_PORT": str(gateway_port),
        "ENCLAVE_EXPORT_REVIEW_PORT": str(export_port),
        "ENCLAVE_RUNS_PORT": str(runs_port),
        **{
            name: env(name, "")
            for name in (
                "ENCLAVE_ANALYST_IMAGE",
                "ENCLAVE_WORKSPACE_MEMORY",
                "ENCLAVE_WORKSPACE_CPUS",
                "ENCLAVE_WORKSPACE_PIDS",
                "ENCLAVE_RUN_HOST_CAP",
            )
            if env(name)
        },
    }
    services.append(
        roles.managed_service(
            "runs",
            f"http://{internal_ip}:{runs_port}",
            [
                str(Path(sys.executable).parent / "enclave"),
                "run",
                "serve",
                "--ip",
                internal_ip,
                "--port",
                str(runs_port),
            ],
            runs_env,
        )
    )
if "culler" in wanted_services:
    services.append(roles.idle_culler_service(idle_timeout))
c.JupyterHub.services = services
c.JupyterHub.load_groups = {roles.STEWARDS_GROUP: {"users": []}, roles.REVIEWERS_GROUP: {"users": []}}
c.JupyterHub.load_roles = roles.load_roles(
    [s["name"] for s in services if s["name"] != roles.IDLE_CULLER], culler="culler" in wanted_services
)

# ==== BEGIN production: TLS, secrets from files, external proxy and services (deploy/single-host) ====
# Every variable here names a file or a plain setting, never a secret; a secret file must be 0600.
#   ENCLAVE_HUB_SSL_CERT / ENCLAVE_HUB_SSL_KEY  TLS certificate and key for the proxy the hub starts
#                                (an external proxy takes its own --ssl-cert/--ssl-key)
#   ENCLAVE_HUB_COOKIE_SECRET_FILE  the hub's cookie secret (0600)
#   ENCLAVE_PROXY_API_URL        the API of a proxy run outside the hub (its own service): the hub
#                                then does not start one
#   ENCLAVE_PROXY_AUTH_TOKEN_FILE   the proxy's API token (0600)
#   ENCLAVE_HUB_EXTERNAL_SERVICES   comma list of services run outside the hub (their own system
#                                services, so no token sits in any process environment): gateway,
#                                export-review, console, runs, idle-culler; leave them out of
#                                ENCLAVE_HUB_SERVICES
#   ENCLAVE_SERVICE_TOKEN_DIR    holds <service>.token, each external service's hub token (0600)
from enclave import config as _enclave_config  # noqa: E402

_ssl_cert, _ssl_key = env("ENCLAVE_HUB_SSL_CERT", ""), env("ENCLAVE_HUB_SSL_KEY", "")
if bool(_ssl_cert) != bool(_ssl_key):
    raise ValueError("set both ENCLAVE_HUB_SSL_CERT and ENCLAVE_HUB_SSL_KEY, or neither")
if _ssl_cert:
    c.JupyterHub.ssl_cert = _ssl_cert
    c.JupyterHub.ssl_key = _ssl_key
if env("ENCLAVE_HUB_COOKIE_SECRET_FILE"):
    c.JupyterHub.cookie_secret_file = env("ENCLAVE_HUB_COOKIE_SECRET_FILE")
if env("ENCLAVE_PROXY_API_URL"):
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = env("ENCLAVE_PROXY_API_URL")
if env("ENCLAVE_PROXY_AUTH_TOKEN_FILE"):
    _proxy_token_file = env("ENCLAVE_PROXY_AUTH_TOKEN_FILE", "")
    c.ConfigurableHTTPProxy.auth_token = _enclave_config.read_secret_file(_proxy_token_file)

_external = [name.strip() for name in env("ENCLAVE_HUB_EXTERNAL_SERVICES", "").split(",") if name.strip()]
if _external:
    if not env("ENCLAVE_SERVICE_TOKEN_DIR"):
        raise ValueError("ENCLAVE_HUB_EXTERNAL_SERVICES needs ENCLAVE_SERVICE_TOKEN_DIR")
    _token_dir = Path(env("ENCLAVE_SERVICE_TOKEN_DIR", ""))
    _urls = {
        "gateway": f"http://127.0.0.1:{gateway_port}",
        "export-review": f"http://127.0.0.1:{export_port}",
        "console": f"http://127.0.0.1:{console_port}",
        "runs": f"http://127.0.0.1:{runs_port}",
    }
    for _name in _external:
        if _name not in {*_urls, roles.IDLE_CULLER}:
            raise ValueError(f"unknown external service {_name!r}")
        if _name in {service["name"] for service in services}:
            raise ValueError(f"{_name} is both hub-managed and external: drop it from ENCLAVE_HUB_SERVICES")
        _token = _enclave_config.read_secret_file(_token_dir / f"{_name}.token")
        _service = {"name": _name, "api_token": _token}
        if _name in _urls:  # reached through the proxy at /services/<name>/, HubOAuth for browsers
            _service.update(url=_urls[_name], oauth_no_confirm=True)
        services.append(_service)
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles.load_roles(
        [s["name"] for s in services if s["name"] != roles.IDLE_CULLER],
        culler=any(s["name"] == roles.IDLE_CULLER for s in services),
    )
# ==== END production ================================================================================

# ---- the lifecycle sweep (R-LIFE-1..4, R-LIFE-8; T6, T7) -----------------------------------------
# A hub-managed loop, not a cron line to remember: `enclave project sweep --every N` expires projects
# past their end (servers stopped, service token caches cleared), destroys them on day end + 30 at the
# latest, and records the 5-yearly reviews of retained data. The hub restarts it if it dies. Its
# token may list users and stop servers (the revocation hooks), nothing else.
# Every process cuts the days at the same midnight ($ENCLAVE_TIMEZONE, enclave.lifecycle), so the
# managed services get it too.
if env("ENCLAVE_TIMEZONE"):
    for _managed in services:
        if "command" in _managed:
            _managed["environment"] = {
                **_managed.get("environment", {}),
                "ENCLAVE_TIMEZONE": env("ENCLAVE_TIMEZONE"),
            }
if wanted == "all" or "sweep" in wanted_services:
    _running = {s["name"] for s in services}
    sweep_service_urls = [  # their token caches are cleared after servers are stopped
        f"http://127.0.0.1:{port}/services/{name}/"
        for name, port in (("gateway", gateway_port), ("export-review", export_port), ("runs", runs_port))
        if name in _running
    ]
    sweep_env = {**service_env, "ENCLAVE_SERVICE_URLS": ",".join(sweep_service_urls)}
    if env("ENCLAVE_TIMEZONE"):
        sweep_env["ENCLAVE_TIMEZONE"] = env("ENCLAVE_TIMEZONE", "")
    c.JupyterHub.services = [
        *services,
        {
            "name": "lifecycle-sweep",
            "command": [
                str(Path(sys.executable).parent / "enclave"),
                "project",
                "sweep",
                "--every",
                str(int(env("ENCLAVE_SWEEP_INTERVAL", "3600"))),
            ],
            "environment": sweep_env,
        },
    ]
    c.JupyterHub.load_roles = [
        *c.JupyterHub.load_roles,
        {
            "name": "enclave-lifecycle-sweep",
            "description": "The lifecycle sweep stops the servers of ended projects (R-LIFE-1)",
            "scopes": ["list:users", "read:servers", "delete:servers"],
            "services": ["lifecycle-sweep"],
        },
    ]

# ---- monitoring: a service that may read metrics and nothing else (after every service above) ------
if env("ENCLAVE_MONITORING_TOKEN_FILE"):
    from enclave.config import read_secret_file

    _monitoring_token = read_secret_file(env("ENCLAVE_MONITORING_TOKEN_FILE", ""))
    c.JupyterHub.services = [
        *c.JupyterHub.services,
        {"name": roles.MONITORING, "api_token": _monitoring_token},
    ]
    c.JupyterHub.load_roles = [*c.JupyterHub.load_roles, roles.monitoring_role()]
