"""The target's record id in entity_state and outcome holds up to 200 characters, as external ids do: the Shopify
writer's id of an inventory level (``gid://shopify/InventoryItem/…|gid://shopify/Location/…|<quantity>``, about 80
characters) did not fit the 60 before, and PostgreSQL refused every stock change of the way back with
StringDataRightTruncation (SQLite does not enforce a VARCHAR's length, so only PostgreSQL showed it).

Revision ID: 0007_wider_target_ids
Revises: 0006_field_conflict
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_wider_target_ids"
down_revision = "0006_field_conflict"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entity_state") as batch:
        batch.alter_column("to_id", type_=sa.String(200), existing_type=sa.String(60), existing_nullable=False)
    with op.batch_alter_table("outcome") as batch:
        batch.alter_column("to_id", type_=sa.String(200), existing_type=sa.String(60), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("outcome") as batch:
        batch.alter_column("to_id", type_=sa.String(60), existing_type=sa.String(200), existing_nullable=True)
    with op.batch_alter_table("entity_state") as batch:
        batch.alter_column("to_id", type_=sa.String(60), existing_type=sa.String(200), existing_nullable=False)
