"""The project's differencing ledger as the services use it (ARCHITECTURE §3.6, guard v2).

The guard (``enclave.guard.ledger``) decides which released values differ from earlier ones by
1..k-1 persons; this module gives it the project's ledger in the state database, and clears that
ledger when the project is destroyed:

* ``project_ledger``: a ``DatabaseLedger`` whose decisions are serialised per project. PostgreSQL
  takes an advisory lock per project; SQLite, whose driver begins a transaction only at the first
  write, takes the write lock from the first read (``BEGIN IMMEDIATE``), which also holds off other
  processes such as the CLI. Two decisions running side by side can then never both miss each
  other. A project that is no longer active releases nothing more: a query that was running when
  its project was suspended, expired or destroyed is refused at the moment of release, and so
  cannot write into a ledger that destruction has just cleared.
* ``held_ledger``: the same ledger, but its admissions stay in an open transaction that the caller
  commits together with the query's audit record (``enclave.query_service``). A result's
  populations are then in the ledger if and only if its release is audited: a query that crashes,
  or is refused after the ledger's decision (row limit, post layer), leaves no rows behind.
* ``destroy``: deletes the project's rows, under the same lock, in the caller's transaction, and
  names what it deleted for the destruction certificate.

The disclosure ledger (``enclave.ledger``) is a different thing and outlives the project.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

from enclave import projects
from enclave.errors import Forbidden
from enclave.guard.ledger import DatabaseLedger, OpenSession, Sketch, clear
from enclave.prepare.certificate import DestroyedItem
from enclave.projects import ProjectState

TABLE = "guard_ledger"


def lock(session: Session, project_id: str) -> None:
    """Hold the project's ledger until the session's transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:p))"), {"p": f"{TABLE}:{project_id}"})
    elif not session.connection().connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        session.execute(text("BEGIN IMMEDIATE"))
    # else: SQLite already in a write transaction holds the database's only write lock


def _check_active(session: Session, project_id: str) -> None:
    state = projects.get(session, project_id).state
    if state != ProjectState.ACTIVE:
        raise Forbidden(
            "project_not_active",
            f"Project {project_id} became {state} while the query ran: nothing is released",
            f"查询运行期间项目 {project_id} 状态变为 {state}：不发布任何结果",
        )


def project_ledger(open_session: OpenSession, project_id: str) -> DatabaseLedger:
    """The project's ledger, shared by every gateway replica and the CLI, kept across restarts."""

    @contextmanager
    def open_ledger_session() -> Iterator[Session]:
        with open_session() as session:
            lock(session, project_id)
            _check_active(session, project_id)
            yield session

    return DatabaseLedger(open_ledger_session, project_id)


class HeldLedger(DatabaseLedger):
    """The project's ledger whose admissions wait, locked and uncommitted, for the caller's commit.

    ``session`` is the open transaction once ``admit`` has run (None before): the caller writes its
    audit record there, and ``held_ledger`` commits both when its block ends, or neither.
    """

    def __init__(self, open_session: OpenSession, project_id: str, stack: ExitStack) -> None:
        self._open = open_session
        self._stack = stack
        self.session: Session | None = None
        super().__init__(self._held_session, project_id)

    @contextmanager
    def _held_session(self) -> Iterator[Session]:
        if self.session is None:
            session = self._stack.enter_context(self._open())
            lock(session, self.project_id)
            _check_active(session, self.project_id)
            self.session = session
        yield self.session  # no commit here: the block of ``held_ledger`` ends the transaction

    def admit(self, sketches: Sequence[Sketch], k: int, *, label: str = "") -> list[bool]:
        verdicts = super().admit(sketches, k, label=label)
        assert self.session is not None
        self.session.flush()  # rows written (not committed): a later error rolls them back
        return verdicts


@contextmanager
def held_ledger(open_session: OpenSession, project_id: str) -> Iterator[HeldLedger]:
    """The project's ledger for one query; what it admitted commits when the block ends without an
    error (with whatever the caller wrote in ``ledger.session``), and rolls back otherwise."""
    with ExitStack() as stack:
        yield HeldLedger(open_session, project_id, stack)


def destroy(session: Session, project_id: str) -> list[DestroyedItem]:
    """Delete the project's ledger rows in the caller's transaction; the item for the certificate."""
    lock(session, project_id)
    rows = clear(session, project_id)
    return [DestroyedItem("database_rows", f"{TABLE}/{project_id}: {rows} rows")]
