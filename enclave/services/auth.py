"""Who is calling: a JupyterHub API token to a user and a project (default deny).

The analyst's single-user server holds a token the hub issued *to that server*; its scopes
include ``access:servers!server=<user>/<server name>``, and the server name is the project id
(named servers, one per project). The gateway asks the hub's ``/hub/api/user`` who owns the token
(``jupyterhub.services.auth.HubAuth``, which caches answers for ``cache_max_age`` seconds) and
takes the project from that scope. A token bound to no server, or to more than one, or one with
broad server access (a user's or an admin's personal token), is refused: only a server's token
says which project it is for. A client may also name the project (``X-Enclave-Project``); it must
agree with the token.

A batch run has no hub server: its notebook holds a run token (``encrun_...``,
``enclave.runs.tokens``), looked up in the state database instead of the hub, on every request
(no cache), so a run that ended or was asked to cancel is refused at once. It speaks for the run's
analyst in the run's project, and the caller carries the run's id.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from jupyterhub.services.auth import HubAuth
from sqlalchemy.orm import Session

from enclave.errors import EnclaveError, Forbidden
from enclave.runs import tokens

SERVER_SCOPE = re.compile(r"^access:servers!server=(?P<user>[^/]+)/(?P<server>.+)$")
BROAD_SERVER_SCOPES = re.compile(r"^access:servers(!user(=.*)?|!group=.*)?$")
TOKEN_HEADER = re.compile(r"^(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)
PROJECT_HEADER = "X-Enclave-Project"
OpenSession = Callable[[], AbstractContextManager[Session]]


class Unauthenticated(Forbidden):
    """No valid hub token: HTTP 401."""


@dataclass(frozen=True)
class Caller:
    """An authenticated analyst and the project their server is for; ``run_id`` when the caller is
    a batch run (its run token) rather than the analyst's server."""

    user: str
    project: str
    run_id: str | None = None


def token_from_header(value: str | None) -> str:
    match = TOKEN_HEADER.match(value or "")
    if not match:
        raise Unauthenticated(
            "token_missing",
            "Send the JupyterHub API token of your server: `Authorization: token <token>`",
            "请发送您服务器的 JupyterHub API 令牌：`Authorization: token <令牌>`",
        )
    return match.group(1)


def project_from_scopes(user: str, scopes: list[str]) -> str:
    """The one server this token is bound to, which must be the user's own; else refuse."""
    servers = set()
    for scope in scopes:
        if BROAD_SERVER_SCOPES.match(scope):
            servers.add("*")
            continue
        match = SERVER_SCOPE.match(scope)
        if match:
            servers.add(match.group("server") if match.group("user") == user else "*")
    if len(servers) != 1 or "*" in servers:
        raise Forbidden(
            "token_not_server_bound",
            "This token is not bound to exactly one of your project servers: use the token of the "
            "project's notebook server ($JUPYTERHUB_API_TOKEN)",
            "此令牌未绑定到您的唯一一个项目服务器：请使用该项目笔记本服务器的令牌（$JUPYTERHUB_API_TOKEN）",
            details={"servers": sorted(servers)},
        )
    return servers.pop()


def _check_claimed(claimed_project: str | None, project: str) -> None:
    if claimed_project and claimed_project != project:
        raise Forbidden(
            "project_mismatch",
            f"The request names project {claimed_project}, but the token is for project {project}",
            f"请求指定的项目为 {claimed_project}，但令牌属于项目 {project}",
        )


def caller_from_model(model: dict[str, Any] | None, claimed_project: str | None) -> Caller:
    """Map the hub's answer for a token to the caller, or refuse."""
    if not model:
        raise Unauthenticated(
            "token_invalid",
            "The hub does not know this token (forged, expired or revoked)",
            "中心服务不认识此令牌（伪造、过期或已吊销）",
        )
    if model.get("kind") != "user" or not model.get("name"):
        raise Forbidden(
            "token_not_a_user",
            "Only an analyst's server token may query the gateway",
            "只有分析人员服务器的令牌可以访问查询网关",
        )
    user = str(model["name"])
    project = project_from_scopes(user, list(model.get("scopes") or []))
    _check_claimed(claimed_project, project)
    return Caller(user=user, project=project)


def run_caller(open_session: OpenSession | None, token: str, claimed_project: str | None) -> Caller:
    """A run token to its running run's analyst and project (blocking: a database read), or 401."""
    if open_session is None:  # no state database: no run is known here
        raise _run_token_invalid()
    try:
        with open_session() as session:
            found = tokens.caller_for_token(session, token)
    except EnclaveError:
        raise _run_token_invalid() from None
    _check_claimed(claimed_project, found.project)
    return Caller(user=found.user, project=found.project, run_id=found.run_id)


def _run_token_invalid() -> Unauthenticated:
    return Unauthenticated(
        "token_invalid",
        "This run token is not valid: the run is unknown, not running, or was cancelled",
        "此批处理作业令牌无效：作业不存在、未在运行或已被取消",
    )


class TokenAuthenticator:
    """Checks server tokens against the hub, with ``HubAuth``'s short-lived cache, and run tokens
    against the state database (``open_session``), uncached."""

    def __init__(
        self, hub_api_url: str, api_token: str, cache_ttl_s: int, open_session: OpenSession | None = None
    ) -> None:
        self.hub_auth = HubAuth(api_url=hub_api_url, api_token=api_token, cache_max_age=cache_ttl_s)
        self.open_session = open_session

    async def caller(self, authorization: str | None, claimed_project: str | None) -> Caller:
        token = token_from_header(authorization)
        if tokens.is_run_token(token):  # never sent to the hub
            return await asyncio.to_thread(run_caller, self.open_session, token, claimed_project)
        model = await self.hub_auth.user_for_token(token, sync=False)
        return caller_from_model(model, claimed_project)
