"""JupyterHub configuration and the locked-down spawner for project workspaces."""
