"""NetSuite: records written through its REST record API, ids resolved and changes read by SuiteQL; change notices
posted by erpsync's user-event script verified as Standard Webhooks (webhooks.py)."""

from erpsync.ports import PayloadModel, System
from erpsync.systems.netsuite import client, fields, models, queries, sales_orders, totals
from erpsync.systems.netsuite.webhooks import NetSuiteNoticeSource

SYSTEM = System(
    name="netsuite",
    title="NetSuite",
    kind="erp",
    describe="Oracle NetSuite (REST web services, OAuth 2.0 client credentials, SuiteQL)",
    writer=client.NetSuiteClient.from_env,
    models={"change": PayloadModel(models.parse_change)},  # the way back's change notice (models.py)
    natural_keys=queries.NATURAL_KEYS,
    record_fields=fields.RECORD_FIELDS,
    case_insensitive_keys=queries.CASE_INSENSITIVE_FIELDS,
    window_reader=sales_orders.ErpSalesOrders,
    summarize_body=sales_orders.summarize_body,
    check_external_id=client.check_external_id,
    totals=totals.sales_order_totals,
    # Change notices from the user-event script (netsuite/suitescript/), Standard Webhooks signed.
    webhook=NetSuiteNoticeSource(),
)
