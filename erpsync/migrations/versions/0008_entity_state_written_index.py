"""An index for the echo guard's lookup (``Ledger.written_by_us``), run in dedupe for every event: "did erpsync
write this record into the event's own system?" is asked by (to_system, from_system, to_record_type, to_id).
Without an index each event scanned entity_state, which grows with every record ever synced. With it, an event
whose record type erpsync never writes into its source (a shop order) costs one index probe, and the suffix match
of a Shopify gid (``gid://shopify/Fulfillment/42`` for ``42``) reads only that record type's rows.

Revision ID: 0008_entity_state_written_index
Revises: 0007_wider_target_ids
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0008_entity_state_written_index"
down_revision = "0007_wider_target_ids"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_entity_state_written", "entity_state", ["to_system", "from_system", "to_record_type", "to_id"])


def downgrade() -> None:
    op.drop_index("ix_entity_state_written", table_name="entity_state")
