"""What every handler shares: the state database, the enclave paths, and the deployment settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from enclave import db
from enclave.config import Paths
from export_review.outbox import Outbox, outbox_for
from export_review.policy import ReviewSettings, load_settings


@dataclass(frozen=True)
class WebContext:
    sessions: sessionmaker[Session]
    paths: Paths

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends cleanly, rolled back on any error."""
        with db.session_scope(self.sessions) as session:
            yield session

    def settings(self) -> ReviewSettings:
        """Read on every request, so an edited ``export-review.yaml`` applies without a restart."""
        return load_settings(self.paths)

    def outbox(self, settings: ReviewSettings) -> Outbox:
        return outbox_for(settings.outbox, self.paths)
