"""The Shopify client's view of the cost bucket when answers of calls in flight together arrive out of order."""

from __future__ import annotations

import json
import threading

import httpx
from pydantic import SecretStr

from erpsync.systems.shopify.graphql import ShopifyGraphQL


def answer(available: float) -> httpx.Response:
    return httpx.Response(200, headers={"X-Shopify-API-Version": "2026-10"}, content=json.dumps({
        "data": {"shop": {"name": "x"}},
        "extensions": {"cost": {"requestedQueryCost": 10, "actualQueryCost": 10, "throttleStatus": {
            "maximumAvailable": 100.0, "currentlyAvailable": available, "restoreRate": 50.0}}}}).encode())


def test_an_answer_that_arrives_late_does_not_make_the_bucket_look_fuller_than_the_fresher_one_said() -> None:
    # Call "early" ran first in the shop (which then held 90) but its answer arrives after call "late"'s (which saw
    # 80 left). The client must keep 80, not take 90 from the answer that came last.
    now = [0.0]
    late_answered = threading.Event()

    def shop(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["variables"]["which"] == "early":
            assert late_answered.wait(5)
            return answer(90.0)
        return answer(80.0)

    client = ShopifyGraphQL("https://shop.example", SecretStr("t"), transport=httpx.MockTransport(shop),
                            clock=lambda: now[0])
    client.query("query($which: String) { shop { name } }", {"which": "first"})  # learn the bucket and the cost
    early = threading.Thread(target=client.query, args=("query($which: String) { shop { name } }",
                                                        {"which": "early"}))
    early.start()
    client.query("query($which: String) { shop { name } }", {"which": "late"})
    late_answered.set()
    early.join(5)
    assert not early.is_alive()
    status = client.throttle_status
    assert status is not None and status.available_at(now[0]) == 80.0
    # A later answer that says less than the restore since would give is believed: other calls spent it.
    now[0] = 0.2
    client.query("query($which: String) { shop { name } }", {"which": "later"})
    assert client.throttle_status.available_at(now[0]) == 80.0  # the answer's own 80, not 80 + 0.2 s × 50
    client.close()
