"""What the enclave's hub services share (issue 15): the gateway, export review, the steward console and
the runs service.

``hub`` is the base of every service the hub runs (settings the hub hands a managed service, one
listening address, the token-cache and metrics checks); ``oauth`` adds the hub login (HubOAuth) and
the tornado application of a service with pages; ``handlers`` the base handlers (security headers,
streamed uploads, the one mapping of ``EnclaveError`` to HTTP); ``i18n`` the English and Chinese
label lookup; ``http_errors`` the one JSON error shape; ``auth`` who a workspace's hub token (or a
batch run's token) speaks for. ``tests/test_import_contract.py`` keeps this package free of any
particular service.
"""
