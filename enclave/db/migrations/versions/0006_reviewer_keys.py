"""Reviewer-held keys: registered Ed25519 public keys, and the signing key's fingerprint on each vote.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "export_reviewer_keys"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("reviewer", sa.String(100), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.String(40), nullable=False),
        sa.Column("registered_by", sa.String(100), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    op.create_index("ix_export_reviewer_keys_reviewer", TABLE, ["reviewer", "registered_at"])
    # Not batch mode: on SQLite that copies the table and drops export_votes' write-once triggers.
    op.add_column("export_votes", sa.Column("key_fingerprint", sa.String(64), nullable=True))
    # A registration is never changed or deleted: a new key is a new row (as 0002 does for votes).
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"""CREATE TRIGGER {TABLE}_no_{verb.lower()} BEFORE {verb} ON {TABLE}
                    BEGIN SELECT RAISE(ABORT, '{TABLE} is write-once'); END"""
            )
    elif dialect == "postgresql":
        op.execute(
            f"""CREATE TRIGGER {TABLE}_write_once BEFORE UPDATE OR DELETE ON {TABLE}
                FOR EACH ROW EXECUTE FUNCTION export_write_once()"""
        )


def downgrade() -> None:
    op.drop_column("export_votes", "key_fingerprint")
    op.drop_index("ix_export_reviewer_keys_reviewer", TABLE)
    op.drop_table(TABLE)
