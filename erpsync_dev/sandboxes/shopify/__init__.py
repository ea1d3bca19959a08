"""A local stand-in for a Shopify store, run as its own process for demos and tests.

    python -m erpsync_dev.sandboxes.shopify serve --port 8800 --secret …     (or: erpsync sandbox shop)

    webhooks.py   the webhook sender: a scenario's signed deliveries, in order, ``concurrency`` at a time
    admin_api.py  the server: the Admin API's orders endpoints and the sandbox's ``/_sandbox/...`` endpoints
    graphql_api.py  the GraphQL Admin API (orders, fulfillment orders, fulfillments, inventory, prices), cost-throttled
    graphql_schema.py, graphql_store.py  its schema, checks and query cost; its catalogue, stock and cost bucket
    cli.py        arguments, ``run`` (serve, or send once and exit), ``main``
"""
