"""The state database: models, engine and migrations."""

from enclave.db.session import connect, migrate, session_scope

__all__ = ["connect", "migrate", "session_scope"]
