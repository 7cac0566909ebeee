"""The export review's web UI and REST API: a JupyterHub service (HubOAuth), thin over the domain layer."""
