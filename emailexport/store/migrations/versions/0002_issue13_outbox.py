"""export outbox: accepted exports whose flow run the dispatcher has still to create (issue 13)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_outbox",
        sa.Column("export_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("connector_type", sa.String(length=64), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["export_id"], ["exports.id"]),
        sa.PrimaryKeyConstraint("export_id"),
    )
    op.create_index("ix_export_outbox_next_attempt", "export_outbox", ["next_attempt_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_export_outbox_next_attempt", table_name="export_outbox")
    op.drop_table("export_outbox")
