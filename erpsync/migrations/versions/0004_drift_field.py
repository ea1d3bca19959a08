"""The source fields each mapping was found not reading, so that a run logs a field once, the first time any worker
meets it, and ``erpsync mapping drift --new`` lists only what it has not listed before (erpsync/drift_fields.py).

- drift_field: (mapping, field) → first_seen_at, reported_at (null until ``drift --new`` lists it). New and
  empty: every field a ledger upgraded to it meets is new once.

Revision ID: 0004_drift_field
Revises: 0003_inbox_entity
Create Date: 2025-07-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_drift_field"
down_revision = "0003_inbox_entity"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_field",
        sa.Column("mapping", sa.String(120), primary_key=True),
        sa.Column("field", sa.String(300), primary_key=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("drift_field")
