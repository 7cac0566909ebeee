"""Export review: requests, their stored files, and signed votes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Submitted files and cast votes are never changed (R-EXP-3, R-APP-25): the database refuses it.
WRITE_ONCE_TABLES = ("export_files", "export_votes")


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is write-once'); END""",
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, '{table} is write-once'); END""",
    ]


POSTGRES_FUNCTION = """CREATE FUNCTION export_write_once() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION '% is write-once', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql"""


def _postgres_trigger(table: str) -> str:
    return f"""CREATE TRIGGER {table}_write_once BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION export_write_once()"""


def upgrade() -> None:
    op.create_table(
        "export_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("requester", sa.String(100), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "previous_id", sa.String(40), sa.ForeignKey("export_requests.id"), nullable=True, unique=True
        ),
        sa.Column("justification", sa.Text, nullable=False),
        sa.Column("abroad", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("records", sa.Integer, nullable=False, server_default="0"),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("acro_json", sa.Text, nullable=True),
        sa.Column("lineage_json", sa.Text, nullable=False, server_default="{}"),
        sa.Column("decision_json", sa.Text, nullable=True),
        sa.Column("release_json", sa.Text, nullable=True),
        sa.Column("lock_seq", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_export_requests_project_state", "export_requests", ["project_id", "state"])
    op.create_table(
        "export_files",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(40), sa.ForeignKey("export_requests.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("findings_json", sa.Text, nullable=False),
        sa.Column("failed", sa.Boolean, nullable=False),
        sa.UniqueConstraint("request_id", "name"),
    )
    op.create_table(
        "export_votes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(40), sa.ForeignKey("export_requests.id"), nullable=False),
        sa.Column("file_id", sa.Integer, sa.ForeignKey("export_files.id"), nullable=False),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("choice", sa.String(10), nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("override_reason", sa.Text, nullable=True),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("file_id", "reviewer"),
    )
    op.create_index("ix_export_votes_request", "export_votes", ["request_id"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in WRITE_ONCE_TABLES:
            for statement in _sqlite_triggers(table):
                op.execute(statement)
    elif dialect == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        for table in WRITE_ONCE_TABLES:
            op.execute(_postgres_trigger(table))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS export_write_once() CASCADE")
    op.drop_table("export_votes")
    op.drop_table("export_files")
    op.drop_index("ix_export_requests_project_state", table_name="export_requests")
    op.drop_table("export_requests")
