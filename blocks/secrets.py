"""Webhook secrets from Prefect Secret blocks, for deployments that keep secrets in Prefect."""

from __future__ import annotations

from prefect.blocks.system import Secret

SHOPIFY_WEBHOOK_SECRET_BLOCK = "shopify-webhook-secret"


def load_shopify_webhook_secret(block_name: str = SHOPIFY_WEBHOOK_SECRET_BLOCK) -> str:
    return Secret.load(block_name, _sync=True).get()
