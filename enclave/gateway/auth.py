"""Who is calling: a JupyterHub API token to a user and a project (default deny).

The analyst's single-user server holds a token the hub issued *to that server*; its scopes
include ``access:servers!server=<user>/<server name>``, and the server name is the project id
(named servers, one per project). The gateway asks the hub's ``/hub/api/user`` who owns the token
(``jupyterhub.services.auth.HubAuth``, which caches answers for ``cache_max_age`` seconds) and
takes the project from that scope. A token bound to no server, or to more than one, or one with
broad server access (a user's or an admin's personal token), is refused: only a server's token
says which project it is for. A client may also name the project (``X-Enclave-Project``); it must
agree with the token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jupyterhub.services.auth import HubAuth

from enclave.errors import Forbidden

SERVER_SCOPE = re.compile(r"^access:servers!server=(?P<user>[^/]+)/(?P<server>.+)$")
BROAD_SERVER_SCOPES = re.compile(r"^access:servers(!user(=.*)?|!group=.*)?$")
TOKEN_HEADER = re.compile(r"^(?:token|bearer)\s+(\S+)\s*$", re.IGNORECASE)
PROJECT_HEADER = "X-Enclave-Project"


class Unauthenticated(Forbidden):
    """No valid hub token: HTTP 401."""


@dataclass(frozen=True)
class Caller:
    """An authenticated analyst and the project their server is for."""

    user: str
    project: str


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
    if claimed_project and claimed_project != project:
        raise Forbidden(
            "project_mismatch",
            f"The request names project {claimed_project}, but the token is for project {project}",
            f"请求指定的项目为 {claimed_project}，但令牌属于项目 {project}",
        )
    return Caller(user=user, project=project)


class TokenAuthenticator:
    """Checks tokens against the hub, with ``HubAuth``'s short-lived cache."""

    def __init__(self, hub_api_url: str, api_token: str, cache_ttl_s: int) -> None:
        self.hub_auth = HubAuth(api_url=hub_api_url, api_token=api_token, cache_max_age=cache_ttl_s)

    async def caller(self, authorization: str | None, claimed_project: str | None) -> Caller:
        token = token_from_header(authorization)
        model = await self.hub_auth.user_for_token(token, sync=False)
        return caller_from_model(model, claimed_project)
