"""Identity that knows both ends: entities keyed by (from system, entity type, entity id, to system), neutral
columns for the other side, and the cross-reference keyed by system.

Column map (every existing row is a write to NetSuite, the one target before this revision):
- entity_state:  source → from_system; + to_system ('netsuite', in the key); erp_record_type → to_record_type;
                 erp_id → to_id; + to_version (null: the other side's version, for the way back)
- entity_claim:  source → from_system; + to_system ('netsuite', in the key)
- outcome:       erp_id → to_id; + to_system ('netsuite' where the outcome names an entity, else null)
- erp_xref → xref: + system ('netsuite', first in the key); erp_id → record_id

Revision ID: 0002_identity_both_ends
Revises: 0001_baseline
Create Date: 2025-07-01
"""

from __future__ import annotations

from importlib import import_module

import sqlalchemy as sa
from alembic import op

revision = "0002_identity_both_ends"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None

# The target of every row written before this revision.
EXISTING_TARGET = "netsuite"
_when = sa.DateTime(timezone=True)
_key = [sa.Column("from_system", sa.String(40), primary_key=True),
        sa.Column("entity_type", sa.String(40), primary_key=True),
        sa.Column("entity_id", sa.String(100), primary_key=True),
        sa.Column("to_system", sa.String(40), primary_key=True)]

# The three rebuilt tables as this revision leaves them (frozen here, like the baseline's).
AFTER = sa.MetaData()
sa.Table(
    "entity_state", AFTER, *(c._copy() for c in _key),
    sa.Column("to_record_type", sa.String(60), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("to_id", sa.String(60), nullable=False),
    sa.Column("to_version", _when),
    sa.Column("last_version", _when, nullable=False),
    sa.Column("last_payload_sha256", sa.String(64), nullable=False),
    sa.Column("mapping_version", sa.String(40), nullable=False),
    sa.Column("updated_at", _when, nullable=False),
    sa.Index("ix_entity_state_external_id", "external_id"),
)
sa.Table(
    "entity_claim", AFTER, *(c._copy() for c in _key),
    sa.Column("event_id", sa.Integer, nullable=False),
    sa.Column("claimed_at", _when, nullable=False),
    sa.Column("flow_run_id", sa.String(64)),
)
sa.Table(
    "xref", AFTER,
    sa.Column("system", sa.String(40), primary_key=True),
    sa.Column("record_type", sa.String(40), primary_key=True),
    sa.Column("field", sa.String(40), primary_key=True),
    sa.Column("value", sa.String(300), primary_key=True),
    sa.Column("record_id", sa.String(40), nullable=False),
    sa.Column("fetched_at", _when, nullable=False),
)

# Each new column, from its old one (or a constant); the reverse for the downgrade.
TARGET = f"'{EXISTING_TARGET}'"
UP = {
    "entity_state": ("entity_state", {"from_system": "source", "to_system": TARGET, "to_record_type": "erp_record_type",
                                      "to_id": "erp_id", "to_version": "NULL"}),
    "entity_claim": ("entity_claim", {"from_system": "source", "to_system": TARGET}),
    "xref": ("erp_xref", {"system": TARGET, "record_id": "erp_id"}),
}
DOWN = {
    "entity_state": ("entity_state", {"source": "from_system", "erp_record_type": "to_record_type", "erp_id": "to_id"}),
    "entity_claim": ("entity_claim", {"source": "from_system"}),
    "erp_xref": ("xref", {"erp_id": "record_id"}),
}


def _baseline() -> sa.MetaData:
    return import_module("erpsync.migrations.versions.0001_baseline").BASELINE


def _rebuild(new: sa.Table, old: str, renamed: dict[str, str]) -> None:
    """SQLite cannot change a primary key in place: build ``new`` beside the ``old`` table, copy every row (a new
    column from its old name, a constant, or the column of the same name), drop the old table, take its place.

    What Alembic's batch mode does, spelled out: its batch cannot move a primary key onto a renamed column."""
    temp = new.to_metadata(sa.MetaData(), name=f"_new_{new.name}")
    temp.indexes.clear()  # index names are global in SQLite: created once the old table is gone
    temp.create(op.get_bind())
    columns = [column.name for column in new.columns]
    sources = [renamed.get(name, name) for name in columns]
    op.execute(f"INSERT INTO {temp.name} ({', '.join(columns)}) SELECT {', '.join(sources)} FROM {old}")
    op.drop_table(old)
    op.rename_table(temp.name, new.name)
    for index in new.indexes:
        index.create(op.get_bind())


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    with op.batch_alter_table("outcome") as batch:
        batch.alter_column("erp_id", new_column_name="to_id", existing_type=sa.String(60), existing_nullable=True)
        batch.add_column(sa.Column("to_system", sa.String(40), nullable=True))
    op.execute(sa.text("UPDATE outcome SET to_system = :target WHERE entity_type IS NOT NULL")
               .bindparams(target=EXISTING_TARGET))

    if _sqlite():
        for name, (old, renamed) in UP.items():
            _rebuild(AFTER.tables[name], old, renamed)
        return

    # PostgreSQL alters in place (in the upgrade's one transaction); the default only fills the existing rows.
    default = sa.text(TARGET)
    for table in ("entity_state", "entity_claim"):
        op.alter_column(table, "source", new_column_name="from_system")
        op.add_column(table, sa.Column("to_system", sa.String(40), nullable=False, server_default=default))
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.create_primary_key(f"{table}_pkey", table, ["from_system", "entity_type", "entity_id", "to_system"])
        op.alter_column(table, "to_system", server_default=None)
    op.alter_column("entity_state", "erp_record_type", new_column_name="to_record_type")
    op.alter_column("entity_state", "erp_id", new_column_name="to_id")
    op.add_column("entity_state", sa.Column("to_version", _when, nullable=True))
    op.rename_table("erp_xref", "xref")
    op.alter_column("xref", "erp_id", new_column_name="record_id")
    op.add_column("xref", sa.Column("system", sa.String(40), nullable=False, server_default=default))
    op.drop_constraint("erp_xref_pkey", "xref", type_="primary")  # the name survived the table's rename
    op.create_primary_key("xref_pkey", "xref", ["system", "record_type", "field", "value"])
    op.alter_column("xref", "system", server_default=None)


def downgrade() -> None:
    """Back to one target: refused while any row names another system than NetSuite (it would be lost)."""
    bind = op.get_bind()
    for table, column in (("entity_state", "to_system"), ("entity_claim", "to_system"), ("xref", "system")):
        others = bind.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE {column} <> :target"),
                              {"target": EXISTING_TARGET}).scalar()
        if others:
            raise RuntimeError(f"{table}: {others} rows name a target other than {EXISTING_TARGET}; "
                               "the schema before 0002 cannot hold them")
    with op.batch_alter_table("outcome") as batch:
        batch.drop_column("to_system")
        batch.alter_column("to_id", new_column_name="erp_id", existing_type=sa.String(60), existing_nullable=True)

    if _sqlite():
        for name, (new, renamed) in DOWN.items():
            _rebuild(_baseline().tables[name], new, renamed)
        return

    for table in ("entity_state", "entity_claim"):
        op.drop_constraint(f"{table}_pkey", table, type_="primary")
        op.drop_column(table, "to_system")
        op.alter_column(table, "from_system", new_column_name="source")
        op.create_primary_key(f"{table}_pkey", table, ["source", "entity_type", "entity_id"])
    op.drop_column("entity_state", "to_version")
    op.alter_column("entity_state", "to_record_type", new_column_name="erp_record_type")
    op.alter_column("entity_state", "to_id", new_column_name="erp_id")
    op.drop_constraint("xref_pkey", "xref", type_="primary")
    op.drop_column("xref", "system")
    op.alter_column("xref", "record_id", new_column_name="erp_id")
    op.rename_table("xref", "erp_xref")
    op.create_primary_key("erp_xref_pkey", "erp_xref", ["record_type", "field", "value"])
