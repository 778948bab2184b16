"""index alert messages and deliveries by subscription; remember the last report the crowd
detector saw

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_alert_messages_subscription_id", "alert_messages", ["subscription_id"])
    op.create_index("ix_deliveries_subscription_id", "deliveries", ["subscription_id"])
    with op.batch_alter_table("crowd_memories") as batch_op:
        batch_op.add_column(
            sa.Column("last_report_id", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("crowd_memories") as batch_op:
        batch_op.drop_column("last_report_id")
    op.drop_index("ix_deliveries_subscription_id", table_name="deliveries")
    op.drop_index("ix_alert_messages_subscription_id", table_name="alert_messages")
