"""The export-review operations as the CLI and the web service call them: one transaction each,
deployment settings read fresh, and every refusal audited (R-AUD-6) before it reaches the caller.

The rules live in ``submission``, ``voting``, ``release`` and ``views``; this module only opens the
transaction around them, so the two front ends cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from enclave import audit, db
from enclave.audit import AuditAction
from enclave.config import Paths
from export_review import release as releasing
from export_review import reproduction, submission, views, voting
from export_review.keyspace import prepared_key_space
from export_review.outbox import Outbox, outbox_for
from export_review.policy import ReviewSettings, load_settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class ExportService:
    """The state database and the enclave paths the operations work on."""

    sessions: sessionmaker[Session]
    paths: Paths

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends cleanly, rolled back on any error."""
        with db.session_scope(self.sessions) as session:
            yield session

    def settings(self) -> ReviewSettings:
        """Read on every call, so an edited ``export-review.yaml`` applies without a restart."""
        return load_settings(self.paths)

    def outbox(self, settings: ReviewSettings) -> Outbox:
        return outbox_for(settings.outbox, self.paths)

    def _audited(
        self, action: AuditAction, user: str, obj: str, project: str | None = None
    ) -> AbstractContextManager[None]:
        return audit.refusals_recorded(self.session, action, actor=user, obj=obj, project=project)

    def submit(
        self,
        *,
        user: str,
        project: str,
        justification: str,
        files: Sequence[Path] = (),
        abroad: bool = False,
        records: int | None = None,
        revises: str | None = None,
        run: str | None = None,
        outputs: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Submit files, or a run's outputs (``run``, ``outputs``: the named ones, else all)."""
        settings = self.settings()
        with (
            self._audited(AuditAction.EXPORT_SUBMIT, user, f"project:{project}", project),
            self.session() as session,
        ):
            request = submission.submit(
                session,
                self.paths,
                project_id=project,
                requester=user,
                justification=justification,
                files=files,
                settings=settings,
                key_space=prepared_key_space(session, self.paths),
                abroad=abroad,
                records=records,
                revises=revises,
                run_id=run,
                outputs=outputs,
            )
            out: dict[str, Any] = {"request": request.id, "state": request.state}
            if run is not None:
                out |= {"run": run, "reproduction": reproduction.PENDING}
            return out

    def describe(self, request_id: str, viewer: str | None) -> dict[str, Any]:
        settings = self.settings()
        with self.session() as session:
            return views.describe(session, self.paths, request_id, settings=settings, viewer=viewer)

    def list(
        self,
        *,
        viewer: str | None,
        state: str | None = None,
        project: str | None = None,
        requester: str | None = None,
    ) -> list[dict[str, Any]]:
        settings = self.settings()
        with self.session() as session:
            return views.list_requests(
                session, settings=settings, viewer=viewer, state=state, project=project, requester=requester
            )

    def vote(
        self,
        request_id: str,
        *,
        user: str,
        choice: str,
        file_name: str | None = None,
        comment: str | None = None,
        override: str | None = None,
        private_key: Ed25519PrivateKey | None = None,
    ) -> dict[str, Any]:
        settings = self.settings()
        with self._audited(AuditAction.EXPORT_VOTE, user, f"export:{request_id}"), self.session() as session:
            return voting.vote(
                session,
                self.paths,
                request_id,
                user=user,
                choice=choice,
                settings=settings,
                file_name=file_name,
                comment=comment,
                override=override,
                private_key=private_key,
            )

    def register_key(self, *, reviewer: str, public_key: str, user: str) -> dict[str, Any]:
        """Register ``reviewer``'s own public key (hex); from now on only it signs their votes."""
        settings = self.settings()
        with (
            self._audited(AuditAction.EXPORT_KEY_REGISTER, user, f"reviewer:{reviewer}"),
            self.session() as session,
        ):
            return voting.register_key(
                session,
                self.paths,
                reviewer=reviewer,
                public_key=public_key,
                user=user,
                stewards=settings.stewards,
            )

    def release(
        self, request_id: str, *, user: str, progress: releasing.Progress | None = None
    ) -> dict[str, Any]:
        settings = self.settings()
        with (
            self._audited(AuditAction.EXPORT_RELEASE, user, f"export:{request_id}"),
            self.session() as session,
        ):
            return releasing.release(
                session,
                self.paths,
                request_id,
                user=user,
                outbox=self.outbox(settings),
                stewards=settings.stewards,
                committee=settings.committee,
                progress=progress,
            )

    def complete_releases(self) -> list[str]:
        """Finish the outbox copies that a crash after a release's commit left unfinished."""
        with self.session() as session:
            return releasing.complete_releases(session, self.paths, self.outbox(self.settings()))

    def download(self, request_id: str, *, user: str, out_dir: Path) -> dict[str, Any]:
        settings = self.settings()
        with (
            self._audited(AuditAction.EXPORT_DOWNLOAD, user, f"export:{request_id}"),
            self.session() as session,
        ):
            return releasing.download(
                session,
                self.paths,
                request_id,
                user=user,
                out_dir=out_dir,
                outbox=self.outbox(settings),
                committee=settings.committee,
            )

    def rerun(self, request_id: str, *, user: str) -> dict[str, Any]:
        """Ask for another reproducibility rerun of a request made from a run."""
        settings = self.settings()
        with self._audited(AuditAction.RUN_RERUN, user, f"export:{request_id}"), self.session() as session:
            return reproduction.request_rerun(
                session, self.paths, request_id, user=user, stewards=settings.stewards
            )

    def withdraw(self, request_id: str, *, user: str, reason: str = "") -> dict[str, Any]:
        with (
            self._audited(AuditAction.EXPORT_WITHDRAW, user, f"export:{request_id}"),
            self.session() as session,
        ):
            request = submission.withdraw(session, request_id, user=user, reason=reason)
            return {"request": request.id, "state": request.state}
