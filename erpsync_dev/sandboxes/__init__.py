"""Local stand-ins for the external systems, one package per system, each run as a process of its own.

    netsuite/  the ERP: NetSuite's REST record, SuiteQL and token APIs   (python -m erpsync_dev.sandboxes.netsuite)
    shopify/   the shop: signed order webhooks and the Admin API          (python -m erpsync_dev.sandboxes.shopify)

A system gets a folder here when no real server of it can be run locally; one that can (e.g. Tryton) is started
as itself instead. Each package has a ``cli.py`` with ``add_arguments`` and ``run`` (what ``erpsync sandbox``
registers) and a ``__main__.py``, and prints ``ready on http://HOST:PORT`` once it listens.
"""
