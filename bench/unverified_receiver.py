"""The receiver with signature verification switched off, for `make bench` only: it measures what verifying
costs. Never run it anywhere a real source can reach — it accepts anything."""

from __future__ import annotations

import sys
from datetime import datetime

import uvicorn

from erpsync.ledger import Ledger
from erpsync.receiver.app import create_app
from erpsync.receiver.deliveries import Delivery
from erpsync.receiver.limits import IntakeLimits
from erpsync.settings import Settings
from erpsync.systems.shopify.webhooks import ShopifySource


class UnverifiedShopify(ShopifySource):
    def authenticate(self, headers, body: bytes, secrets: list[str], now: datetime) -> Delivery:
        header = self.header
        return Delivery(self.name, header(headers, "webhook-id"), header(headers, "topic"),
                        header(headers, "shop-domain"), header(headers, "triggered-at"))


def main(port: int) -> None:
    settings = Settings.from_env()
    app = create_app(ledger=Ledger.connect(settings.database_url), dispatcher=None, secrets=lambda _: ["unused"],
                     mappings_dir=settings.mappings_dir, limits=IntakeLimits.from_env(settings.max_body_bytes),
                     sources={"shopify": UnverifiedShopify()})
    print(f"ready on http://127.0.0.1:{port}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main(int(sys.argv[1]))
