"""What every console handler shares: the state database, the enclave paths, and what a lifecycle step
needs outside the database (the hub, to stop a project's servers; the services, to forget tokens)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from enclave import db, lifecycle
from enclave.config import Paths
from enclave.roles import Role, roles_of


@dataclass
class ConsoleContext:
    sessions: sessionmaker[Session]
    paths: Paths
    hub_api_url: str = ""
    api_token: str = ""
    service_urls: list[str] = field(default_factory=list)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back (audit included) on an error."""
        with db.session_scope(self.sessions) as session:
            yield session

    def roles_of(self, user: str) -> set[Role]:
        with self.session() as session:
            return roles_of(session, user)

    def revocation_hooks(self) -> list[lifecycle.RevocationHook]:
        """Stop the project's servers through the hub with the console's own token, then make the
        other services forget cached tokens (``hub_config.revocation``), as the CLI and the sweep do."""
        if not (self.hub_api_url and self.api_token):
            return []
        from hub_config.revocation import clear_service_auth_caches, stop_project_servers

        hooks = [stop_project_servers(self.hub_api_url, self.api_token)]
        if self.service_urls:
            hooks.append(clear_service_auth_caches(self.service_urls, self.api_token))
        return hooks

    def volume_destroyers(self) -> list[Callable[[str], list[Any]]]:
        """Docker home volumes, containers, network and the published copy (``hub_config.destruction``)."""
        from hub_config.destruction import volume_destroyers

        return volume_destroyers(self.paths.home)
