"""scale-out: delivery claims and retention indexes

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        # Which worker process holds a delivery (PostgreSQL: the key of its advisory lock).
        batch_op.add_column(sa.Column("claimed_by", sa.Integer(), nullable=True))
    # Retention deletes by age; without these it scans whole tables.
    op.create_index("ix_deliveries_done_at", "deliveries", ["done_at"])
    op.create_index("ix_reports_at", "reports", ["at"])


def downgrade() -> None:
    op.drop_index("ix_reports_at", table_name="reports")
    op.drop_index("ix_deliveries_done_at", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("claimed_by")
