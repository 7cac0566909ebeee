"""The part of the test hub configs every one shares (loaded by each with ``load_subconfig``): a hub and
its proxy on 127.0.0.1 on the ports ``tests.hub`` (or the gateway's fixture) chose, its state in the
test's directory, and the dummy authenticator (test only)."""

import os

c = get_config()  # type: ignore[name-defined]  # noqa: F821 (provided by JupyterHub)
env = os.environ

c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(env["TEST_HUB_PROXY_PORT"])
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env["TEST_HUB_PORT"])
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env['TEST_HUB_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [env["TEST_HUB_CHP"]]
c.JupyterHub.db_url = f"sqlite:///{env['TEST_HUB_DIR']}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{env['TEST_HUB_DIR']}/cookie_secret"
c.JupyterHub.pid_file = f"{env['TEST_HUB_DIR']}/jupyterhub.pid"
c.JupyterHub.authenticator_class = "dummy"
