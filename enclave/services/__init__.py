"""What the enclave's hub services share (issue 15): the gateway, export review and the steward console.

``hub`` is the base of every service the hub runs (settings the hub hands a managed service, one
listening address, the token-cache and metrics checks); ``oauth`` adds the hub login (HubOAuth) and
the tornado application of a service with pages; ``handlers`` the base handlers (security headers,
streamed uploads, the one mapping of ``EnclaveError`` to HTTP); ``i18n`` the English and Chinese
label lookup. The JSON error shape and the hub token parsing are still the gateway's
(``enclave.services.http_errors``, ``enclave.services.auth``), which the handlers here use.
"""
