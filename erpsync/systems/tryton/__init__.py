"""Tryton: sales written, shipments and stock read back for the shop, over JSON-RPC (erpsync_dev/tryton_server.py)."""

from erpsync.ports import PayloadModel, System
from erpsync.systems.tryton import client, models, reconcile, totals

SYSTEM = System(
    name="tryton",
    title="Tryton",
    kind="erp",
    describe="Tryton 8.0 (JSON-RPC, session login; sale, stock, account)",
    writer=client.TrytonClient.from_env,
    models={"change": PayloadModel(models.parse_change)},  # the way back's change notice (models.py)
    change_record_types=client.CHANGE_RECORD_TYPES,
    natural_keys=client.NATURAL_KEYS,
    record_fields=client.RECORD_FIELDS,
    case_insensitive_keys=client.CASE_INSENSITIVE_FIELDS,
    window_reader=reconcile.TrytonSales,
    summarize_body=reconcile.summarize_body,
    check_external_id=client.check_external_id,
    totals=totals.sale_totals,
)
