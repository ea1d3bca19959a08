"""The development package's commands: ``erpsync sandbox erp|shop`` and ``erpsync demo`` (entry point
``erpsync.commands``, so the core command line does not import the stand-ins)."""

from __future__ import annotations


def register(commands) -> None:
    sandbox = commands.add_parser("sandbox", help="run a local stand-in for an external system")
    kinds = sandbox.add_subparsers(dest="kind", required=True, metavar="KIND")
    erp = kinds.add_parser("erp", help="NetSuite-compatible ERP sandbox (REST record API subset, SuiteQL)")
    shop = kinds.add_parser("shop", help="Shopify-like shop sandbox: signed webhooks and the Admin API")
    from erpsync_dev.sandboxes.netsuite import cli as erp_sandbox
    from erpsync_dev.sandboxes.shopify import cli as shop_sandbox

    erp_sandbox.add_arguments(erp)
    erp.set_defaults(handler=erp_sandbox.run)
    shop_sandbox.add_arguments(shop)
    shop.set_defaults(handler=shop_sandbox.run)

    demo = commands.add_parser(
        "demo", help="start everything locally and sync a burst of sample orders, then the way back",
        description="Start a Prefect server, a worker, the receiver and both sandboxes on loopback; send a burst "
                    "of signed order webhooks (with duplicates, updates, late old versions and an unknown SKU); "
                    "wait until all are handled; print a summary; check the ERP holds exactly the right records. "
                    "Then the way back: ship orders and count stock in the ERP sandbox (some changes by the "
                    "sandbox's signed notices, the others left to `erpsync poll`) and check the shop sandbox "
                    "ends with exactly those fulfillments, quantities per location and prices.")
    from erpsync_dev import demo as demo_module

    demo_module.add_arguments(demo)
    demo.set_defaults(handler=demo_module.run)
