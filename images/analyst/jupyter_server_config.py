"""Jupyter Server settings of the analyst workspace (installed system-wide in the image).

The UI hides the download commands (page_config.json); this file makes the server refuse them too,
so a browser cannot fetch files out of the workspace even with hand-written URLs.
"""

c = get_config()  # noqa: F821 (provided by Jupyter when it loads this file)

# Refuse /files/, /view/, /nbconvert/ and raw (base64) bodies from the contents API.
c.ServerApp.jpserver_extensions = {"enclave_lockdown": True}
c.ServerApp.contents_manager_class = "enclave_lockdown.NoRawBodiesContentsManager"
c.ContentsManager.files_handler_class = "enclave_lockdown.RefuseDownloadHandler"
c.ContentsManager.files_handler_params = {}
# No extension installs from inside the workspace (and there is no network to fetch them anyway).
c.LabApp.extension_manager = "readonly"
# JupyterLab calls home by default: an Atom news feed and a PyPI version check, both from the server.
# A workspace makes no request off its network, so neither is attempted (page_config.json also
# disables the announcements plugin that would ask for them).
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"
# No plugin can be switched on or off from the UI, not only those locked in page_config.json.
c.LabApp.lock_all_plugins = True
# Scratch files live on tmpfs; the root filesystem is read-only.
c.ServerApp.root_dir = "/home/analyst"
c.FileContentsManager.delete_to_trash = False
