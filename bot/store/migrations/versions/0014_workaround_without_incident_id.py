"""workarounds: drop incident_subject_id, written but never read (the title is what shows)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

A plain ``ALTER TABLE … DROP COLUMN`` (SQLite 3.35+), not alembic's batch mode: batch mode
rebuilds the table on SQLite, and dropping the old ``workarounds`` table with foreign keys on
would cascade-delete every vote.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("workarounds", "incident_subject_id")


def downgrade() -> None:
    op.add_column(
        "workarounds",
        sa.Column("incident_subject_id", sa.String(length=200), nullable=True),
    )
