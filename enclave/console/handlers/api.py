"""A small JSON API for scripts (a hub token with ``access:services!service=console``):

GET api/me      the caller, their platform roles and the pages they may open
"""

from __future__ import annotations

from enclave.console.handlers.base import nav_for
from enclave.services.handlers import ApiHandler, NotFoundApi


class MeApi(ApiHandler):
    def get(self) -> None:
        user = self.user
        held = self.ctx.roles_of(user)
        self.write_json(
            {
                "ok": True,
                "user": user,
                "roles": sorted(r.value for r in held),
                "pages": [path for _, _, path in nav_for(held)],
            }
        )


def default_handlers(prefix: str) -> list[tuple[str, type]]:
    return [(rf"{prefix}api/me", MeApi), (rf"{prefix}api/.*", NotFoundApi)]
