"""workarounds and faq

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "community_settings",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("community_id", sa.String(length=200), nullable=False),
        sa.Column("show_origin", sa.Boolean(), nullable=False),
        sa.Column("community_name", sa.String(length=100), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "community_id"),
    )
    op.create_table(
        "faq_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("community_id", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "community_id", "topic"),
    )
    with op.batch_alter_table("faq_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_faq_entries_community_id"), ["community_id"], unique=False
        )

    op.create_table(
        "instance_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "workarounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=2000), nullable=True),
        sa.Column("author_hash", sa.String(length=64), nullable=False),
        sa.Column("origin_platform", sa.String(length=32), nullable=False),
        sa.Column("origin_community_id", sa.String(length=200), nullable=False),
        sa.Column("incident_subject_id", sa.String(length=200), nullable=True),
        sa.Column("incident_title", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hidden_globally", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("workarounds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workarounds_author_hash"), ["author_hash"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_workarounds_service_id"), ["service_id"], unique=False)

    op.create_table(
        "workaround_hides",
        sa.Column("workaround_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("community_id", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workaround_id"], ["workarounds.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workaround_id", "platform", "community_id"),
    )
    op.create_table(
        "workaround_reports",
        sa.Column("workaround_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("community_id", sa.String(length=200), nullable=False),
        sa.Column("reporter_hash", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workaround_id"], ["workarounds.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workaround_id", "platform", "community_id"),
    )
    op.create_table(
        "workaround_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workaround_id", sa.Integer(), nullable=False),
        sa.Column("voter_hash", sa.String(length=64), nullable=False),
        sa.Column("worked", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workaround_id"], ["workarounds.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workaround_id", "voter_hash"),
    )
    with op.batch_alter_table("workaround_votes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workaround_votes_voter_hash"), ["voter_hash"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_workaround_votes_workaround_id"), ["workaround_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("workaround_votes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workaround_votes_workaround_id"))
        batch_op.drop_index(batch_op.f("ix_workaround_votes_voter_hash"))

    op.drop_table("workaround_votes")
    op.drop_table("workaround_reports")
    op.drop_table("workaround_hides")
    with op.batch_alter_table("workarounds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workarounds_service_id"))
        batch_op.drop_index(batch_op.f("ix_workarounds_author_hash"))

    op.drop_table("workarounds")
    op.drop_table("instance_secrets")
    with op.batch_alter_table("faq_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_faq_entries_community_id"))

    op.drop_table("faq_entries")
    op.drop_table("community_settings")
