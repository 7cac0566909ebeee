"""Calls the gateway makes to the hub with its own service token: stop a locked user's server."""

from __future__ import annotations

import logging
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from enclave import audit
from enclave.audit import AuditAction
from enclave.gateway.monitor import MONITOR_ACTOR
from enclave.query_service import OpenSession
from enclave.services.auth import Caller

log = logging.getLogger(__name__)


async def stop_server(hub_api_url: str, api_token: str, caller: Caller, open_session: OpenSession) -> int:
    """Ask the hub to stop the caller's project server (needs the ``admin:servers`` scope); audit it.

    Returns the hub's HTTP status (404: the server does not exist, nothing to stop).
    """
    user, server = quote(caller.user, safe=""), quote(caller.project, safe="")
    url = f"{hub_api_url.rstrip('/')}/users/{user}/servers/{server}"
    try:
        response = await AsyncHTTPClient().fetch(
            url, method="DELETE", headers={"Authorization": f"token {api_token}"}, request_timeout=30
        )
        status = response.code
    except HTTPClientError as error:
        status = error.code
    except OSError as error:
        log.error("cannot reach the hub to stop %s/%s: %s", caller.user, caller.project, error)
        status = 0
    with open_session() as session:
        audit.record(
            session,
            AuditAction.SERVER_STOP,
            actor=MONITOR_ACTOR,
            obj=f"server:{caller.user}/{caller.project}",
            project=caller.project,
            outcome="success" if status in (202, 204, 404) else "failed",
            details={"user": caller.user, "reason": "user locked by monitoring", "hub_status": status},
        )
    return status
