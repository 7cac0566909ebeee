"""Export-review tables (migrations 0002, 0006, 0008). Files, votes and key registrations are written
once."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from enclave.db.models import Base


class ExportRequest(Base):
    """One version of an export request. A revision after ``changes_requested`` is a new row."""

    __tablename__ = "export_requests"
    __table_args__ = (Index("ix_export_requests_project_state", "project_id", "state"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    requester: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)
    previous_id: Mapped[str | None] = mapped_column(
        ForeignKey("export_requests.id"), unique=True, nullable=True
    )
    justification: Mapped[str] = mapped_column(Text)
    abroad: Mapped[bool] = mapped_column(Boolean, default=False)
    records: Mapped[int] = mapped_column(Integer, default=0)
    digest: Mapped[str] = mapped_column(String(64))
    k: Mapped[int] = mapped_column(Integer)
    acro_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    lineage_json: Mapped[str] = mapped_column(Text, default="{}")
    decision_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    release_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    # An export from a batch run (0008): the run and its provenance (export_review.provenance).
    run_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    provenance_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    lock_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[str] = mapped_column(String(40))

    files: Mapped[list[ExportFile]] = relationship(back_populates="request", order_by="ExportFile.name")
    votes: Mapped[list[ExportVote]] = relationship(back_populates="request", order_by="ExportVote.id")


class ExportFile(Base):
    """A file of a request, stored in the vault under its sha256, with the server's findings."""

    __tablename__ = "export_files"
    __table_args__ = (UniqueConstraint("request_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("export_requests.id"))
    name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    findings_json: Mapped[str] = mapped_column(Text)
    failed: Mapped[bool] = mapped_column(Boolean)

    request: Mapped[ExportRequest] = relationship(back_populates="files")


class ExportVote(Base):
    """One reviewer's signed vote on one file. One vote per reviewer and file, never changed."""

    __tablename__ = "export_votes"
    __table_args__ = (UniqueConstraint("file_id", "reviewer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("export_requests.id"))
    file_id: Mapped[int] = mapped_column(ForeignKey("export_files.id"))
    reviewer: Mapped[str] = mapped_column(String(100))
    choice: Mapped[str] = mapped_column(String(10))
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    public_key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[str] = mapped_column(String(40))
    # The signing key's fingerprint (0006); NULL on votes cast before reviewer-held keys existed.
    key_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)

    request: Mapped[ExportRequest] = relationship(back_populates="votes")
    file: Mapped[ExportFile] = relationship()


class ReviewerKey(Base):
    """A reviewer's own Ed25519 public key, in force from ``registered_at`` until the next one.

    Registering a new key is a new row, so the history of which key was valid when stays intact.
    ``signature`` is the enclave key's countersignature over the registration, so a row written
    straight into the database is not trusted.
    """

    __tablename__ = "export_reviewer_keys"
    __table_args__ = (Index("ix_export_reviewer_keys_reviewer", "reviewer", "registered_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reviewer: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[str] = mapped_column(String(40))
    registered_by: Mapped[str] = mapped_column(String(100))
    signature: Mapped[str] = mapped_column(String(128))
