"""Slack requests already handled, so a replay after a restart is acked but not run again

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_seen_requests",
        sa.Column("request_key", sa.String(length=200), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_key"),
    )
    # The purge deletes by age.
    op.create_index("ix_slack_seen_requests_seen_at", "slack_seen_requests", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_slack_seen_requests_seen_at", table_name="slack_seen_requests")
    op.drop_table("slack_seen_requests")
