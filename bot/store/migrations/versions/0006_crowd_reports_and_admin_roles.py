"""crowd reports, early warnings and community admin roles

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("component", sa.String(length=100), nullable=True),
        sa.Column("what", sa.String(length=16), nullable=False),
        sa.Column("details", sa.String(length=300), nullable=True),
        sa.Column("reporter_hash", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("community_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reports_service_at", "reports", ["service_id", "at"])
    op.create_index("ix_reports_reporter_at", "reports", ["reporter_hash", "at"])
    op.create_table(
        "crowd_memories",
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("memory", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("service_id"),
    )
    op.create_table(
        "early_warnings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("first_report_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("incident_id", sa.String(length=200), nullable=True),
        sa.Column("lead_seconds", sa.Integer(), nullable=True),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_early_warnings_service_id", "early_warnings", ["service_id"])
    op.create_table(
        "community_admin_roles",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("community_id", sa.String(length=200), nullable=False),
        sa.Column("role_id", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("platform", "community_id", "role_id"),
    )


def downgrade() -> None:
    op.drop_table("community_admin_roles")
    op.drop_index("ix_early_warnings_service_id", table_name="early_warnings")
    op.drop_table("early_warnings")
    op.drop_table("crowd_memories")
    op.drop_index("ix_reports_reporter_at", table_name="reports")
    op.drop_index("ix_reports_service_at", table_name="reports")
    op.drop_table("reports")
