"""Hub tokens to (user, project) against a real JupyterHub: default deny."""

from __future__ import annotations

import asyncio
import time

import pytest

from enclave.errors import Forbidden
from enclave.services.auth import Caller, TokenAuthenticator, Unauthenticated, project_from_scopes
from tests.gateway.conftest import PROJECT, Hub


def identify(hub: Hub, authorization: str | None, claimed: str | None = None, ttl: int = 0) -> Caller:
    authenticator = TokenAuthenticator(hub.api_url, hub.gateway_token, ttl)
    return asyncio.run(authenticator.caller(authorization, claimed))


def test_server_token_maps_to_user_and_project(hub: Hub) -> None:
    token, _ = hub.server_token("bob", PROJECT)
    assert identify(hub, f"token {token}") == Caller("bob", PROJECT)
    assert identify(hub, f"Bearer {token}", claimed=PROJECT) == Caller("bob", PROJECT)


def test_claimed_project_must_match_the_token(hub: Hub) -> None:
    token, _ = hub.server_token("bob", PROJECT)
    with pytest.raises(Forbidden) as caught:
        identify(hub, f"token {token}", claimed="diab-2026")
    assert caught.value.code == "project_mismatch"


@pytest.mark.parametrize("header", [None, "", "token", "Basic Ym9iOnB3", "token a b"])
def test_missing_or_malformed_header(hub: Hub, header: str | None) -> None:
    with pytest.raises(Unauthenticated) as caught:
        identify(hub, header)
    assert caught.value.code == "token_missing"


def test_forged_token_is_refused(hub: Hub) -> None:
    with pytest.raises(Unauthenticated) as caught:
        identify(hub, "token " + "f" * 32)
    assert caught.value.code == "token_invalid"


def test_broad_user_token_is_not_enough(hub: Hub) -> None:
    with pytest.raises(Forbidden) as caught:
        identify(hub, f"token {hub.user_token('bob')}")
    assert caught.value.code == "token_not_server_bound"


def test_service_token_is_not_a_user(hub: Hub) -> None:
    with pytest.raises(Forbidden) as caught:
        identify(hub, f"token {hub.gateway_token}")
    assert caught.value.code in ("token_not_a_user", "token_not_server_bound")


def test_revoked_token_is_refused_once_the_cache_expires(hub: Hub) -> None:
    token, token_id = hub.server_token("bob", PROJECT)
    authenticator = TokenAuthenticator(hub.api_url, hub.gateway_token, 1)

    async def scenario() -> tuple[Caller, Caller, str]:
        first = await authenticator.caller(f"token {token}", None)
        hub.revoke("bob", token_id)
        cached = await authenticator.caller(f"token {token}", None)  # within the TTL
        await asyncio.sleep(1.2)
        try:
            await authenticator.caller(f"token {token}", None)
        except Unauthenticated as error:
            return first, cached, error.code
        return first, cached, "accepted"

    first, cached, after = asyncio.run(scenario())
    assert first == cached == Caller("bob", PROJECT)
    assert after == "token_invalid"


def test_expired_token_is_refused(hub: Hub) -> None:
    token, _ = hub.server_token("bob", PROJECT, expires_in=1)
    time.sleep(1.5)
    with pytest.raises(Unauthenticated):
        identify(hub, f"token {token}")


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["access:servers!server=bob/p1", "users:activity!user=bob"], "p1"),
        (["access:servers!server=bob/p1", "access:servers!server=bob/p2"], None),
        (["access:servers!server=eve/p1"], None),
        (["access:servers!server=bob/p1", "access:servers!user=bob"], None),
        (["access:servers!server=bob/p1", "access:servers"], None),
        (["access:servers!server=bob/p1", "access:servers!group=staff"], None),
        (["read:users:name!user=bob"], None),
        ([], None),
    ],
)
def test_project_from_scopes_is_default_deny(scopes: list[str], expected: str | None) -> None:
    if expected is None:
        with pytest.raises(Forbidden):
            project_from_scopes("bob", scopes)
    else:
        assert project_from_scopes("bob", scopes) == expected
