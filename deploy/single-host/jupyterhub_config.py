"""This host's JupyterHub configuration (installed as /etc/enclave/jupyterhub_config.py).

It loads the enclave's configuration from the installed package; the hub's unit
(enclave-hub.service) sets everything else through plain settings and secret-file paths. Add
this site's own settings below (an identity provider, for instance; see the docstring of
hub_config/jupyterhub_config.py), with secrets read from 0600 files, never written here.
install.sh keeps this file on an upgrade.
"""

from pathlib import Path

import hub_config

load_subconfig(str(Path(hub_config.__file__).resolve().parent / "jupyterhub_config.py"))  # noqa: F821
c = get_config()  # noqa: F821

# ---- site settings ------------------------------------------------------------------------------
