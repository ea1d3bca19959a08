"""Where the change reader goes on from, per ERP and record type (erpsync/change_intake.py, issue 14): the way
back reads the ERP's changes since a cursor kept here, not in a process.

- change_cursor: (system, record_type) → cursor (where the next pass starts, an overlap window behind the newest
  change read), newest_cursor, newest_modified, updated_at. New and empty: a ledger upgraded to it starts reading
  changes at its first pass.

Revision ID: 0005_change_cursor
Revises: 0004_drift_field
Create Date: 2025-07-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_change_cursor"
down_revision = "0004_drift_field"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_cursor",
        sa.Column("system", sa.String(40), primary_key=True),
        sa.Column("record_type", sa.String(60), primary_key=True),
        sa.Column("cursor", sa.String(200), nullable=False),
        sa.Column("newest_cursor", sa.String(200), nullable=True),
        sa.Column("newest_modified", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("change_cursor")
