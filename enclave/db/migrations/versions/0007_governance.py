"""Governance: staff roles, data-use applications, committee votes with countersignatures, data-use
agreements, account applications, account expiry and password policy (issue 11).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# R-APP-25: approvals, votes, signatures and attachments are stored immutably. A vote row is
# written once; the one change allowed is adding its countersignature, once, to an unsigned row.
WRITE_ONCE_TABLES = ("application_attachments", "application_reviews", "data_use_agreements")
_VOTE_FIXED = ("application_id", "member", "choice", "comment", "digest", "voted_at")
_VOTE_CHANGED_SQLITE = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _VOTE_FIXED)
_VOTE_CHANGED_PG = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in _VOTE_FIXED)
VOTE_REFUSAL = "application_votes: a vote is written once; only its countersignature is added, once"

SQLITE_TRIGGERS = [
    *(
        f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is write-once'); END"""
        for table in WRITE_ONCE_TABLES
        for verb in ("UPDATE", "DELETE")
    ),
    """CREATE TRIGGER application_votes_no_delete BEFORE DELETE ON application_votes
        BEGIN SELECT RAISE(ABORT, 'application_votes is write-once'); END""",
    f"""CREATE TRIGGER application_votes_countersign_once BEFORE UPDATE ON application_votes
        WHEN OLD.signature IS NOT NULL OR NEW.signature IS NULL OR {_VOTE_CHANGED_SQLITE}
        BEGIN SELECT RAISE(ABORT, '{VOTE_REFUSAL}'); END""",
]
POSTGRES_TRIGGERS = [
    *(
        f"""CREATE TRIGGER {table}_write_once BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION export_write_once()"""
        for table in WRITE_ONCE_TABLES
    ),
    f"""CREATE FUNCTION application_vote_write_once() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'DELETE' OR OLD.signature IS NOT NULL OR NEW.signature IS NULL
               OR {_VOTE_CHANGED_PG} THEN
                RAISE EXCEPTION '{VOTE_REFUSAL}';
            END IF;
            RETURN NEW;
        END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER application_votes_write_once BEFORE UPDATE OR DELETE ON application_votes
        FOR EACH ROW EXECUTE FUNCTION application_vote_write_once()""",
]


def upgrade() -> None:
    op.create_table(
        "staff_roles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("role", sa.String(30), nullable=False),
        sa.Column("granted_by", sa.String(100), nullable=False),
        sa.Column("granted_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("username", "role"),
    )
    op.create_table(
        "applications",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("applicant", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("track", sa.String(20), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("cross_border", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("form_json", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("revision", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.Column("submitted_at", sa.String(40), nullable=True),
        sa.Column("decided_at", sa.String(40), nullable=True),
    )
    op.create_index("ix_applications_applicant", "applications", ["applicant"])
    op.create_table(
        "application_attachments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("application_id", sa.String(40), sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("uploaded_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("application_id", "kind", "sha256"),
    )
    op.create_table(
        "application_reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("application_id", sa.String(40), sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("checklist_json", sa.Text, nullable=False),
        sa.Column("scorecard_json", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "application_votes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("application_id", sa.String(40), sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("member", sa.String(64), nullable=False),
        sa.Column("choice", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("voted_at", sa.String(40), nullable=False),
        sa.Column("signature", sa.String(128), nullable=True),
        sa.Column("key_fingerprint", sa.String(64), nullable=True),
        sa.Column("countersigned_at", sa.String(40), nullable=True),
        sa.UniqueConstraint("application_id", "member"),
    )
    op.create_table(
        "data_use_agreements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("application_id", sa.String(40), sa.ForeignKey("applications.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("signer", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=True),
        sa.Column("start", sa.String(10), nullable=False),
        sa.Column("end", sa.String(10), nullable=False),
        sa.Column("retain_until", sa.String(10), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.String(40), nullable=False),
    )
    op.create_table(
        "account_applications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("identity_kind", sa.String(20), nullable=False),
        sa.Column("identity_hmac", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.String(40), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.String(40), nullable=True),
        sa.Column("expires_on", sa.String(10), nullable=True),
    )
    op.create_index("ix_account_applications_user", "account_applications", ["username", "project_id"])
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRES_TRIGGERS}.get(dialect, []):
        op.execute(statement)
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("application_id", sa.String(40), nullable=True))
    with op.batch_alter_table("local_users") as batch:
        batch.add_column(sa.Column("expires_on", sa.String(10), nullable=True))
        batch.add_column(
            sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS application_vote_write_once() CASCADE")
    with op.batch_alter_table("local_users") as batch:
        batch.drop_column("must_change_password")
        batch.drop_column("expires_on")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("application_id")
    for table in (
        "account_applications",
        "data_use_agreements",
        "application_votes",
        "application_reviews",
        "application_attachments",
        "applications",
        "staff_roles",
    ):
        op.drop_table(table)
