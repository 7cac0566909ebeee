"""Query monitoring: per-user project locks set by the gateway's monitor (R-QRY-5).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_locks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("locked_at", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("unlocked_at", sa.String(40), nullable=True),
        sa.Column("unlocked_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_user_locks_project_user", "user_locks", ["project_id", "username"])
    # Monitoring counts a user's recent queries in the audit log.
    op.create_index("ix_audit_events_actor_ts", "audit_events", ["actor", "ts"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_actor_ts", "audit_events")
    op.drop_index("ix_user_locks_project_user", "user_locks")
    op.drop_table("user_locks")
