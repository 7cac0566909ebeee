"""Run jupyterhub-idle-culler as an external hub service, its hub token read from a 0600 file.

The culler reads its token from ``$JUPYTERHUB_API_TOKEN`` only. The unit names the file in
``$JUPYTERHUB_API_TOKEN_FILE`` instead; the token is put into this process's environment after it
started, so it never appears in the initial environment block (``/proc/<pid>/environ``), and the
culler starts no child process that could inherit it.
"""

from __future__ import annotations

import os
import runpy
import sys

from enclave.config import read_secret_file


def main() -> None:
    token_file = os.environ.pop("JUPYTERHUB_API_TOKEN_FILE", "")
    if not token_file or os.environ.get("JUPYTERHUB_API_TOKEN"):
        sys.exit("enclave-idle-culler: set JUPYTERHUB_API_TOKEN_FILE (and not JUPYTERHUB_API_TOKEN)")
    os.environ["JUPYTERHUB_API_TOKEN"] = read_secret_file(token_file)
    sys.argv[0] = "jupyterhub_idle_culler"
    runpy.run_module("jupyterhub_idle_culler", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
