"""The gateway's table: per-user locks on a project, set by monitoring, lifted by a steward."""

from __future__ import annotations

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from enclave.db.models import Base


class UserLock(Base):
    """A user's access to one project, locked after monitoring alerts (R-QRY-5).

    A lock is active while ``unlocked_at`` is empty; unlocking keeps the row as history.
    """

    __tablename__ = "user_locks"
    __table_args__ = (Index("ix_user_locks_project_user", "project_id", "username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64))
    username: Mapped[str] = mapped_column(String(100))
    locked_at: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text)
    unlocked_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    unlocked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
