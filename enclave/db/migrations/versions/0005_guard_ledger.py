"""The query guard's differencing ledger: one row per released population (guard v2, ARCHITECTURE §3.6).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guard_ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sketch", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("label", sa.String(200), nullable=False, server_default=""),
    )
    op.create_index("ix_guard_ledger_project_size", "guard_ledger", ["project_id", "size"])


def downgrade() -> None:
    op.drop_index("ix_guard_ledger_project_size", "guard_ledger")
    op.drop_table("guard_ledger")
