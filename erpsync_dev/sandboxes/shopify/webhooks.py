"""The shop sandbox's webhook sender: delivers a scenario's signed order webhooks, in order, as Shopify would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from pydantic import SecretStr

from erpsync_dev.scenarios.demo import DEFAULT_SHOP_DOMAIN, Delivery, sign

DEFAULT_CONCURRENCY = 8
# Shopify gives up on a delivery that is not answered within five seconds.
DEFAULT_TIMEOUT = 5.0


async def send_phase(
    deliveries: Sequence[Delivery],
    *,
    target: str,
    secret: SecretStr,
    shop_domain: str = DEFAULT_SHOP_DOMAIN,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    on_send: Callable[[Delivery], None] | None = None,
) -> list[dict[str, Any]]:
    """POST every delivery to ``target``, ``concurrency`` at a time, each only after those it must follow.

    One result per delivery, in the phase's order. A delivery that got no answer has ``status`` None and
    the httpx error's class name in ``error``; nothing is retried here (the scenario's redeliveries are the retries).
    """
    answered = [asyncio.Event() for _ in deliveries]
    results: list[dict[str, Any]] = [{} for _ in deliveries]
    slots = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def deliver(index: int, delivery: Delivery) -> None:
            try:
                for before in delivery.after:
                    await answered[before].wait()
                async with slots:
                    if on_send is not None:
                        on_send(delivery)
                    headers = sign(delivery, secret.get_secret_value(), shop_domain=shop_domain)
                    started = time.perf_counter()
                    status: int | None
                    try:
                        response = await client.post(target, content=delivery.body, headers=headers)
                        status, error = response.status_code, None
                    except httpx.HTTPError as exc:
                        status, error = None, type(exc).__name__
                    results[index] = {
                        "webhook_id": delivery.webhook_id,
                        "event_id": delivery.event_id,
                        "topic": delivery.topic,
                        "order_id": delivery.order_id,
                        "updated_at": delivery.updated_at,
                        "kind": delivery.kind,
                        "status": status,
                        "error": error,
                        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
                    }
            finally:
                answered[index].set()

        await asyncio.gather(*(deliver(i, d) for i, d in enumerate(deliveries)))
    return results


def summarize(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for result in results:
        key = str(result["status"]) if result["status"] is not None else (result["error"] or "error")
        statuses[key] = statuses.get(key, 0) + 1
    ok = sum(1 for r in results if r["status"] is not None and 200 <= r["status"] < 300)
    return {"deliveries": len(results), "ok": ok, "failed": len(results) - ok, "statuses": statuses}

