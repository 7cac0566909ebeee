"""The enclave's hub config, with test names, small limits and an admin service for the tests."""

import os
from pathlib import Path

load_subconfig(str(Path(__file__).resolve().parents[2] / "hub_config" / "jupyterhub_config.py"))  # noqa: F821
c = get_config()  # noqa: F821

c.EnclaveSpawner.network_prefix = "enclave-test-net-"
c.EnclaveSpawner.name_template = "enclave-test-ws-{servername}-{username}"
c.EnclaveSpawner.home_volume_template = "enclave-test-home-{project}-{user}"
c.EnclaveSpawner.mem_limit = "256M"
c.EnclaveSpawner.pids_limit = 64
c.EnclaveSpawner.poll_interval = 2
c.EnclaveSpawner.poll_jitter = 0
c.JupyterHub.last_activity_interval = 5
if os.environ.get("ENCLAVE_TEST_PROXY_API_PORT"):  # each test hub has its own proxy API port
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ['ENCLAVE_TEST_PROXY_API_PORT']}"
# The runs service's worker finds the project networks by the spawner's test prefix and names its
# containers enclave-test-run-*, so the e2e clean-up finds them too.
for _service in c.JupyterHub.services:
    if _service.get("name") == "runs":
        _service["environment"] = {
            **_service.get("environment", {}),
            "ENCLAVE_RUN_NETWORK_PREFIX": "enclave-test-net-",
            "ENCLAVE_RUN_CONTAINER_PREFIX": "enclave-test-run-",
        }
c.JupyterHub.services = [
    *c.JupyterHub.services,
    {"name": "enclave-test-admin", "api_token": os.environ["ENCLAVE_TEST_ADMIN_TOKEN"]},
]
c.JupyterHub.load_roles = [
    *c.JupyterHub.load_roles,
    {
        "name": "enclave-test-admin",
        "scopes": ["admin:users", "admin:servers", "access:servers", "list:users", "read:users", "tokens"],
        "services": ["enclave-test-admin"],
    },
]
