"""NetSuite: records written through its REST record API, ids resolved and changes read by SuiteQL."""

from erpsync.ports import System
from erpsync.systems.netsuite import client, totals

SYSTEM = System(
    name="netsuite",
    kind="erp",
    describe="Oracle NetSuite (REST web services, OAuth 2.0 client credentials, SuiteQL)",
    writer=client.NetSuiteClient.from_env,
    check_external_id=client.check_external_id,
    totals=totals.sales_order_totals,
)
