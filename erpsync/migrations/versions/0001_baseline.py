"""Baseline: the ledger exactly as release 7763480 created it (before schema versions).

That release ran SQLModel's create_all at connect, then added missing nullable columns and the inbox's indexes.
The tables are frozen here as they were, so that later model changes never alter what this revision creates;
``BASELINE`` also lets erpsync/migrations adopt a ledger of that release (or an older one that lacks a nullable
column or an index the release added at connect) before stamping it at this revision.

Revision ID: 0001_baseline
Revises:
Create Date: 2025-07-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None

BASELINE = sa.MetaData()
_when = sa.DateTime(timezone=True)

sa.Table(
    "inbox_event", BASELINE,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("delivery_id", sa.String(200), nullable=False),
    sa.Column("topic", sa.String(100), nullable=False),
    sa.Column("shop", sa.String(255)),
    sa.Column("triggered_at", sa.String(64)),
    sa.Column("received_at", _when, nullable=False),
    sa.Column("payload_sha256", sa.String(64), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("redeliveries", sa.Integer, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("dispatched_at", _when),
    sa.Column("source_event_id", sa.String(200)),
    sa.Column("api_version", sa.String(32)),
    sa.Column("duplicate_of", sa.Integer),
    sa.UniqueConstraint("source", "delivery_id", name="uq_inbox_source_delivery"),
    sa.Index("ix_inbox_state_received", "state", "received_at"),
    sa.Index("ix_inbox_source_sha256", "source", "payload_sha256"),
    sa.Index("ix_inbox_source_event", "source", "source_event_id"),
)

sa.Table(
    "entity_state", BASELINE,
    sa.Column("source", sa.String(40), primary_key=True),
    sa.Column("entity_type", sa.String(40), primary_key=True),
    sa.Column("entity_id", sa.String(100), primary_key=True),
    sa.Column("erp_record_type", sa.String(60), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("erp_id", sa.String(60), nullable=False),
    sa.Column("last_version", _when, nullable=False),
    sa.Column("last_payload_sha256", sa.String(64), nullable=False),
    sa.Column("mapping_version", sa.String(40), nullable=False),
    sa.Column("updated_at", _when, nullable=False),
    sa.Index("ix_entity_state_external_id", "external_id"),
)

sa.Table(
    "entity_claim", BASELINE,
    sa.Column("source", sa.String(40), primary_key=True),
    sa.Column("entity_type", sa.String(40), primary_key=True),
    sa.Column("entity_id", sa.String(100), primary_key=True),
    sa.Column("event_id", sa.Integer, nullable=False),
    sa.Column("claimed_at", _when, nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
)

sa.Table(
    "outcome", BASELINE,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.Integer, nullable=False),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("entity_type", sa.String(40)),
    sa.Column("entity_id", sa.String(100)),
    sa.Column("external_id", sa.String(200)),
    sa.Column("erp_id", sa.String(60)),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("mapping_version", sa.String(40)),
    sa.Column("payload_sha256", sa.String(64)),
    sa.Column("at", _when, nullable=False),
    sa.Index("ix_outcome_event_id", "event_id"),
    sa.Index("ix_outcome_outcome", "outcome"),
)

sa.Table(
    "erp_xref", BASELINE,
    sa.Column("record_type", sa.String(40), primary_key=True),
    sa.Column("field", sa.String(40), primary_key=True),
    sa.Column("value", sa.String(300), primary_key=True),
    sa.Column("erp_id", sa.String(40), nullable=False),
    sa.Column("fetched_at", _when, nullable=False),
)


def upgrade() -> None:
    BASELINE.create_all(op.get_bind())


def downgrade() -> None:
    BASELINE.drop_all(op.get_bind())
