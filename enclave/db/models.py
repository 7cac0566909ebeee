"""The state database: every SQLAlchemy 2 model, on one metadata (issue 15). Every change to a table here
needs an Alembic migration; ``tests/test_migration_drift.py`` fails when models and migrations differ."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Dataset(Base):
    """A dataset in the catalog (R-CAT-1). Its versions are the sha256 of each registered source."""

    __tablename__ = "datasets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    steward: Mapped[str] = mapped_column(String(100))
    level: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(40))
    share_type: Mapped[str] = mapped_column(String(20))
    current_version: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[str] = mapped_column(String(40))

    versions: Mapped[list[DatasetVersion]] = relationship(
        back_populates="dataset", order_by="DatasetVersion.registered_at"
    )


class DatasetVersion(Base):
    """One registered version of a dataset: the spec as registered and its source's hash."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_name", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_name: Mapped[str] = mapped_column(ForeignKey("datasets.name"))
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    source_format: Mapped[str] = mapped_column(String(10))
    row_count: Mapped[int] = mapped_column(Integer)
    spec_json: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[str] = mapped_column(String(40))
    registered_by: Mapped[str] = mapped_column(String(100))

    dataset: Mapped[Dataset] = relationship(back_populates="versions")


class Project(Base):
    """A project workspace. Its approved spec lives in immutable ``ProjectSpecVersion`` rows."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20))
    access: Mapped[str] = mapped_column(String(20))
    pi: Mapped[str] = mapped_column(String(100))
    period_start: Mapped[str] = mapped_column(String(10))
    period_end: Mapped[str] = mapped_column(String(10))
    current_spec_version: Mapped[int] = mapped_column(Integer)
    locked: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[str] = mapped_column(String(40))
    # The approved application it was provisioned from; None only with an audited override.
    application_id: Mapped[str | None] = mapped_column(String(40), nullable=True)

    spec_versions: Mapped[list[ProjectSpecVersion]] = relationship(
        back_populates="project", order_by="ProjectSpecVersion.version"
    )
    members: Mapped[list[ProjectMember]] = relationship(back_populates="project")


class ProjectSpecVersion(Base):
    """An approved project spec, never changed once written (R-PREP-22)."""

    __tablename__ = "project_spec_versions"
    __table_args__ = (UniqueConstraint("project_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    version: Mapped[int] = mapped_column(Integer)
    spec_json: Mapped[str] = mapped_column(Text)
    spec_sha256: Mapped[str] = mapped_column(String(64))
    dataset_versions_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(100))

    project: Mapped[Project] = relationship(back_populates="spec_versions")


class ProjectMember(Base):
    """Who holds which role in a project: ``pi``, ``analyst`` or ``committee``."""

    __tablename__ = "project_members"
    __table_args__ = (
        UniqueConstraint("project_id", "username", "role"),
        Index("ix_project_members_username", "username"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    username: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))

    project: Mapped[Project] = relationship(back_populates="members")


class AuditEvent(Base):
    """One record of the append-only, hash-chained audit log (R-AUD-5, R-AUD-7)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_project", "project"),
        Index("ix_audit_events_action", "action"),
        Index("ix_audit_events_actor_ts", "actor", "ts"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    object: Mapped[str] = mapped_column(String(200))
    project: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(100))
    details_json: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's head: one row, locked by every append so appends are serialised.

    It also holds the count and the last hash, so that cutting records off the end of the
    chain is detected as well as editing or deleting one in the middle.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


class GuardLedgerEntry(Base):
    """One released population of the differencing ledger: its size and IBLT sketch (guard v2)."""

    __tablename__ = "guard_ledger"
    __table_args__ = (Index("ix_guard_ledger_project_size", "project_id", "size"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sketch: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(200), default="")


# ---- governance: staff roles, applications, committee votes, data-use agreements, accounts ----------


class StaffRole(Base):
    """A platform role held by one account (R-ROLE-3, R-ROLE-4): see ``enclave.roles``."""

    __tablename__ = "staff_roles"
    __table_args__ = (UniqueConstraint("username", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(30))
    granted_by: Mapped[str] = mapped_column(String(100))
    granted_at: Mapped[str] = mapped_column(String(40))


class Application(Base):
    """A data-use application (R-APP-1..4, 12, 19, 20). ``form_json`` holds the validated form;
    ``digest`` is the sha256 the committee countersigns, fixed when the application is submitted."""

    __tablename__ = "applications"
    __table_args__ = (Index("ix_applications_applicant", "applicant"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    applicant: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))
    track: Mapped[str] = mapped_column(String(20))
    level: Mapped[int] = mapped_column(Integer)
    cross_border: Mapped[bool] = mapped_column(default=False)
    form_json: Mapped[str] = mapped_column(Text)
    digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[str] = mapped_column(String(40))
    submitted_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    decided_at: Mapped[str | None] = mapped_column(String(40), nullable=True)

    attachments: Mapped[list[ApplicationAttachment]] = relationship(
        back_populates="application", order_by="ApplicationAttachment.id"
    )


class ApplicationAttachment(Base):
    """A file attached to an application, stored in the vault by its sha256 (R-APP-25)."""

    __tablename__ = "application_attachments"
    __table_args__ = (UniqueConstraint("application_id", "kind", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    kind: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[str] = mapped_column(String(40))

    application: Mapped[Application] = relationship(back_populates="attachments")


class ApplicationReview(Base):
    """The Office's pre-review of one revision: checklist, scorecard, outcome (R-APP-5, 6, 8, 9)."""

    __tablename__ = "application_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    revision: Mapped[int] = mapped_column(Integer)
    reviewer: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20))
    checklist_json: Mapped[str] = mapped_column(Text)
    scorecard_json: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[str] = mapped_column(String(40))


class ApplicationVote(Base):
    """One committee member's vote on an application, and their countersignature over its digest (R-APP-7)."""

    __tablename__ = "application_votes"
    __table_args__ = (UniqueConstraint("application_id", "member"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    member: Mapped[str] = mapped_column(String(64))
    choice: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str] = mapped_column(Text, default="")
    digest: Mapped[str] = mapped_column(String(64))
    voted_at: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str | None] = mapped_column(String(128), nullable=True)
    key_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    countersigned_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class DataUseAgreement(Base):
    """A signed data-use agreement (R-APP-15, T14), kept at least six years after its end (R-GOV-12)."""

    __tablename__ = "data_use_agreements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    kind: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    signer: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(String(128), nullable=True)
    start: Mapped[str] = mapped_column(String(10))
    end: Mapped[str] = mapped_column(String(10))
    retain_until: Mapped[str] = mapped_column(String(10))
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[str] = mapped_column(String(40))


class AccountApplication(Base):
    """One person's account application for one project (R-APP-16, R-APP-18, R-ROLE-7).

    The identity evidence is kept only as a keyed hash (``identity_hmac``), never in plain text.
    """

    __tablename__ = "account_applications"
    __table_args__ = (Index("ix_account_applications_user", "username", "project_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    identity_kind: Mapped[str] = mapped_column(String(20))
    identity_hmac: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[str] = mapped_column(String(40))
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    expires_on: Mapped[str | None] = mapped_column(String(10), nullable=True)


class Run(Base):
    """A batch run: a notebook executed with papermill in a fresh workspace container (issue 12).

    The notebook, its parameters, the data version and the image digest are the run's provenance;
    a ``rerun`` is the export review's repetition of another run, compared with it at the end.
    """

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_state_created", "state", "created_at"),
        Index("ix_runs_project_user", "project_id", "user"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    user: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    rerun_of: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), nullable=True)
    export_request_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    template: Mapped[str | None] = mapped_column(String(64), nullable=True)
    notebook_name: Mapped[str] = mapped_column(String(255))
    notebook_sha256: Mapped[str] = mapped_column(String(64))
    parameters_json: Mapped[str] = mapped_column(Text)
    image: Mapped[str] = mapped_column(String(200))
    image_digest: Mapped[str | None] = mapped_column(String(100), nullable=True)
    data_version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    timeout_s: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    ended_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    container_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    executed_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    log_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    progress_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    reproduction_json: Mapped[str | None] = mapped_column(Text, nullable=True)

    outputs: Mapped[list[RunOutput]] = relationship(back_populates="run", order_by="RunOutput.name")
    queries: Mapped[list[RunQuery]] = relationship(back_populates="run", order_by="RunQuery.id")


class RunOutput(Base):
    """One file a run wrote, stored by sha256 in the run store; written once when the run ends."""

    __tablename__ = "run_outputs"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"))
    name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)

    run: Mapped[Run] = relationship(back_populates="outputs")


class RunQuery(Base):
    """One gateway query a run made, allowed or refused: the queries behind a run's outputs."""

    __tablename__ = "run_queries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    query_id: Mapped[str] = mapped_column(String(64))
    sql: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(20))
    audit_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[str] = mapped_column(String(40))

    run: Mapped[Run] = relationship(back_populates="queries")


class RunTemplate(Base):
    """A notebook a steward approved for a project; analysts run it with parameters only."""

    __tablename__ = "run_templates"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    notebook_name: Mapped[str] = mapped_column(String(255))
    notebook_sha256: Mapped[str] = mapped_column(String(64))
    parameters_json: Mapped[str] = mapped_column(Text)
    approved_by: Mapped[str] = mapped_column(String(100))
    approved_at: Mapped[str] = mapped_column(String(40))
    retired_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


# ---- local accounts (enclave.users) -------------------------------------------------------------


class LocalUser(Base):
    """One local account. ``disabled`` is a steward's lock; ``locked_until`` the automatic one."""

    __tablename__ = "local_users"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[str] = mapped_column(String(40))
    password_changed_at: Mapped[str] = mapped_column(String(40))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[str | None] = mapped_column(String(40), nullable=True)
    totp_secret: Mapped[str | None] = mapped_column(Text, nullable=True)  # Fernet token
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)  # no code is used twice
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The account ends by itself on this day (R-APP-17): the earlier of the project and DUA ends.
    expires_on: Mapped[str | None] = mapped_column(String(10), nullable=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)  # first login (R-SEC-1)


# ---- monitoring locks (enclave.user_locks) -----------------------------------------------------


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


# ---- export review (export_review; migrations 0002, 0006, 0008) ----------------------------------


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
    __table_args__ = (UniqueConstraint("file_id", "reviewer"), Index("ix_export_votes_request", "request_id"))

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
