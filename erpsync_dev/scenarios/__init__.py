"""The traffic the local stack is driven with: signed webhooks and the outcome each must have.

    demo.py   the demo's Shopify orders (duplicates, updates, late versions, an unknown SKU), the generated
              catalogue the benchmarks read, and how a delivery is signed
    chaos.py  `make chaos`'s redeliveries, out-of-order updates and injected permanent failures
    data/     the real-shaped order the generated ones start from
"""
