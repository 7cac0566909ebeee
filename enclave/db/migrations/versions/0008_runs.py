"""Batch runs with papermill: runs, their outputs and queries, approved templates (issue 12).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# A run's outputs and the queries behind them are its provenance: written once, never changed.
WRITE_ONCE_TABLES = ("run_outputs", "run_queries")

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is write-once'); END"""
    for table in WRITE_ONCE_TABLES
    for verb in ("UPDATE", "DELETE")
]
# export_write_once() is migration 0002's function.
POSTGRES_TRIGGERS = [
    f"""CREATE TRIGGER {table}_write_once BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION export_write_once()"""
    for table in WRITE_ONCE_TABLES
]


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("rerun_of", sa.String(40), sa.ForeignKey("runs.id"), nullable=True),
        sa.Column("export_request_id", sa.String(40), nullable=True),
        sa.Column("template", sa.String(64), nullable=True),
        sa.Column("notebook_name", sa.String(255), nullable=False),
        sa.Column("notebook_sha256", sa.String(64), nullable=False),
        sa.Column("parameters_json", sa.Text, nullable=False),
        sa.Column("image", sa.String(200), nullable=False),
        sa.Column("image_digest", sa.String(100), nullable=True),
        sa.Column("data_version", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("timeout_s", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=True),
        sa.Column("ended_at", sa.String(40), nullable=True),
        sa.Column("container_id", sa.String(100), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
        sa.Column("executed_sha256", sa.String(64), nullable=True),
        sa.Column("log_sha256", sa.String(64), nullable=True),
        sa.Column("error_json", sa.Text, nullable=True),
        sa.Column("progress_json", sa.Text, nullable=True),
        sa.Column("reproduction_json", sa.Text, nullable=True),
    )
    op.create_index("ix_runs_state_created", "runs", ["state", "created_at"])
    op.create_index("ix_runs_project_user", "runs", ["project_id", "user"])
    op.create_table(
        "run_outputs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.UniqueConstraint("run_id", "name"),
    )
    op.create_table(
        "run_queries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(40), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("query_id", sa.String(64), nullable=False),
        sa.Column("sql", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("audit_id", sa.Integer, nullable=True),
        sa.Column("at", sa.String(40), nullable=False),
    )
    op.create_index("ix_run_queries_run_id", "run_queries", ["run_id"])
    op.create_table(
        "run_templates",
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("notebook_name", sa.String(255), nullable=False),
        sa.Column("notebook_sha256", sa.String(64), nullable=False),
        sa.Column("parameters_json", sa.Text, nullable=False),
        sa.Column("approved_by", sa.String(100), nullable=False),
        sa.Column("approved_at", sa.String(40), nullable=False),
        sa.Column("retired_at", sa.String(40), nullable=True),
    )
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRES_TRIGGERS}.get(dialect, []):
        op.execute(statement)
    # An export from a run: the run and its provenance (export_review.provenance). Not batch mode:
    # on SQLite that would copy the table.
    op.add_column("export_requests", sa.Column("run_id", sa.String(40), nullable=True))
    op.add_column("export_requests", sa.Column("provenance_json", sa.Text, nullable=True))
    op.create_index("ix_export_requests_run_id", "export_requests", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_export_requests_run_id", table_name="export_requests")
    op.drop_column("export_requests", "provenance_json")
    op.drop_column("export_requests", "run_id")
    for table in ("run_templates", "run_queries", "run_outputs", "runs"):
        op.drop_table(table)
