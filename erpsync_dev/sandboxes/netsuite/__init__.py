"""A local stand-in for NetSuite's REST record, SuiteQL and token APIs, run as its own process for demos and tests.

    python -m erpsync_dev.sandboxes.netsuite --port 8700      (or: erpsync sandbox erp)

One module per concern:
    options.py            what the sandbox can be told to be (SandboxOptions), parsed from the command line
    store.py              the records and the SuiteQL tables derived from them, in one SQLite file
    records.py            what NetSuite checks in each record type, and the SuiteQL rows a record adds
    sublists.py           how a write changes a record's sublists (keyed by line)
    totals.py             a transaction's totals as NetSuite computes them; the currencies
    fulfillments.py       item fulfillments, made only by transforming their sales order
    suiteql_functions.py  TO_TIMESTAMP, TO_DATE, TO_CHAR over SQLite
    auth.py               the OAuth 2.0 token endpoint and the tokens it issued (an expired one answers 401)
    faults.py             the front door: bearer check, the account's concurrency limit (429), latency, faults, counters
    latency.py            latency profiles: fixed, or long-tailed (log-normal by median and p99, seeded)
    error_bodies.py       NetSuite's error documents
    notices.py            change notices posted as erpsync's user-event script posts them (Standard Webhooks)
    routes.py             the Starlette app: record API, SuiteQL, ``/_sandbox/...`` operations
    cli.py                arguments, ``run``, ``main``
"""
