"""The query gateway: a JupyterHub service through which analysts query their project's views.

Modules: ``auth`` (hub tokens to user and project), ``runner`` (queries on worker threads, cancel),
``monitor`` (thresholds, alerts, locks; R-QRY-4/5), ``locks`` (per-user locks a steward lifts),
``handlers`` and ``app`` (the tornado service and its settings). Importing this package is cheap:
the CLI and ``enclave.query_service`` import ``locks`` without pulling in tornado.
"""
