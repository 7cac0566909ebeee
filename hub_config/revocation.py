"""Stop every workspace of a project at once: the revocation hook of ``enclave.lifecycle``.

``lifecycle.expire``/``suspend`` call their hooks with the project id (R-LIFE-1, R-LIFE-10).
The hook asks the hub's REST API to stop each user's server named after the project; the
spawner's ``poll`` is the safety net when the hub was unreachable. A second hook makes the gateway
and the export-review service forget the hub's cached answers for tokens at once, so the tokens the
hub dropped with those servers stop working now rather than when the cache expires (at most 5 s).
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

RevocationHook = Callable[[str], None]


def _call(api_url: str, token: str, method: str, path: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        api_url.rstrip("/") + path, method=method, headers={"Authorization": f"token {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def stop_project_servers(api_url: str, token: str) -> RevocationHook:
    """A hook that stops the project's named servers of every user (needs ``list:users`` and
    ``delete:servers``; the steward role has both)."""

    def stop_servers_of_project(project_id: str) -> None:
        status, body = _call(api_url, token, "GET", "/users?state=active")
        if status != 200:
            raise RuntimeError(f"the hub refused to list users ({status}): {body[:200]!r}")
        for user in json.loads(body):
            if project_id in (user.get("servers") or {}):
                name = urllib.parse.quote(user["name"], safe="")
                path = f"/users/{name}/servers/{urllib.parse.quote(project_id, safe='')}"
                status, body = _call(api_url, token, "DELETE", path)
                if status not in (202, 204, 404):
                    raise RuntimeError(f"the hub did not stop {user['name']}/{project_id} ({status})")

    return stop_servers_of_project


def clear_service_auth_caches(service_urls: Sequence[str], token: str) -> RevocationHook:
    """A hook that asks each enclave service (its base URL) to forget cached token answers; run it after
    ``stop_project_servers``. ``token`` must be allowed to stop any server (the steward's)."""

    def clear_service_auth_caches(project_id: str) -> None:
        # Best effort: a service that is down holds no cache, and one that does not answer still
        # forgets within its TTL; the revocation itself (servers stopped, state changed) must go on.
        for url in service_urls:
            try:
                status, body = _call(url, token, "POST", "/api/auth-cache/clear")
            except OSError as error:
                log.warning("%s could not be asked to clear its token cache: %s", url, error)
                continue
            if status != 200:
                log.warning("%s did not clear its token cache (%s): %r", url, status, body[:200])

    return clear_service_auth_caches
