"""Who an inbox event is about: its entity and order code, so an operator finds the event a customer names.

- inbox_event: + entity (``order/820982911946154508``), + entity_label (the order code, ``#1042``: the mapping's
  ``entity.label``), both nullable and written when a run validates the event; an index on each, for
  ``erpsync dlq show`` and ``erpsync status`` looking an event up by either. Existing rows keep null: they
  are found by id as before.

Revision ID: 0003_inbox_entity
Revises: 0002_identity_both_ends
Create Date: 2025-07-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_inbox_entity"
down_revision = "0002_identity_both_ends"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite adds nullable columns in place, and the batch keeps PostgreSQL on plain ALTERs.
    with op.batch_alter_table("inbox_event") as batch:
        batch.add_column(sa.Column("entity", sa.String(150), nullable=True))
        batch.add_column(sa.Column("entity_label", sa.String(100), nullable=True))
    op.create_index("ix_inbox_entity", "inbox_event", ["entity"])
    op.create_index("ix_inbox_entity_label", "inbox_event", ["entity_label"])


def downgrade() -> None:
    op.drop_index("ix_inbox_entity_label", table_name="inbox_event")
    op.drop_index("ix_inbox_entity", table_name="inbox_event")
    with op.batch_alter_table("inbox_event") as batch:
        batch.drop_column("entity_label")
        batch.drop_column("entity")
