"""Fields both sides changed since the last sync, and how their owner settled them (erpsync/field_ownership.py,
issue 14, item 5): a change made in the target that erpsync wrote over, or left, is reported, never lost silently.

- inbox_event.read_at (nullable): when an event's run last read the record its change notice names, so a notice
  delivered again after it is read again only when that read may have missed a change of the same second.
- field_conflict: id, at, event_id, the entity (from_system, entity_type, entity_id, to_system), the target's
  record_type and record_id, field_name, owner, last_value (what erpsync set last), target_value (what the target
  held), written_value, resolution. New and empty.

Revision ID: 0006_field_conflict
Revises: 0005_change_cursor
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_field_conflict"
down_revision = "0005_change_cursor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("inbox_event", sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "field_conflict",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("from_system", sa.String(40), nullable=False),
        sa.Column("entity_type", sa.String(40), nullable=False),
        sa.Column("entity_id", sa.String(100), nullable=False),
        sa.Column("to_system", sa.String(40), nullable=False),
        sa.Column("record_type", sa.String(60), nullable=False),
        sa.Column("record_id", sa.String(200), nullable=False),
        sa.Column("field_name", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(40), nullable=False),
        sa.Column("last_value", sa.String(200), nullable=False),
        sa.Column("target_value", sa.String(200), nullable=False),
        sa.Column("written_value", sa.String(200), nullable=False),
        sa.Column("resolution", sa.String(300), nullable=False),
    )
    op.create_index("ix_field_conflict_at", "field_conflict", ["at"])
    op.create_index("ix_field_conflict_event_id", "field_conflict", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_field_conflict_event_id", table_name="field_conflict")
    op.drop_index("ix_field_conflict_at", table_name="field_conflict")
    op.drop_table("field_conflict")
    with op.batch_alter_table("inbox_event") as batch:
        batch.drop_column("read_at")
