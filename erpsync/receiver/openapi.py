"""The receiver's OpenAPI 3 document, written by hand: every route, header and answer it can give."""

from __future__ import annotations

from typing import Any

from erpsync.receiver.limits import IntakeLimits
from erpsync.receiver.webhook_sources import SOURCES

_ERROR = {"$ref": "#/components/schemas/Error"}

def _answer(description: str, schema: dict | None = None, headers: dict | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description,
                              "content": {"application/json": {"schema": schema or _ERROR}}}
    if headers:
        answer["headers"] = headers
    return answer


def _webhook_operation(source: str, limits: IntakeLimits) -> dict[str, Any]:
    # The headers each source's sender sets (its WebhookSource's header_docs); none is declared required because
    # a refusal for a missing one is part of what the document describes (401 or 400).
    sender = SOURCES.get(source)
    headers = list(getattr(sender, "header_docs", []))
    content: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}, **getattr(sender, "extra_content", {})}
    responses = {
        "202": _answer("stored in the inbox; a flow run is dispatched after the answer",
                       {"$ref": "#/components/schemas/Accepted"}),
        "200": _answer("the delivery id, or its body under another id, was stored before (no new work), "
                       "WooCommerce's creation ping, or a topic "
                       "the receiver acts on itself (Shopify's compliance topics, orders/delete), stored and acted "
                       "on: `outcome` says how",
                       {"oneOf": [{"$ref": "#/components/schemas/Accepted"}, {"$ref": "#/components/schemas/Ping"}]}),
        "400": _answer("a header the inbox needs is missing or too long, the body is not a JSON object within "
                       f"{limits.max_json_depth} levels and {limits.max_json_values} values, or a topic the "
                       "receiver acts on itself lacks a field it needs (named)"),
        "401": _answer("no active secret verifies the signature, or the timestamp is outside the window"),
        "404": _answer("unknown source, or neither a mapping nor the receiver handles the delivery's topic"),
        "503": _answer("the inbox is unavailable, or a stored delivery could not be acted on yet: retry later",
                       headers={"Retry-After": {"description": "seconds to wait",
                                                "schema": {"type": "integer", "minimum": 1}}}),
        "413": _answer(f"body larger than {limits.max_body_bytes} bytes"),
        "415": _answer("the body is not declared application/json"),
        "429": _answer("the source's rate limit is exceeded",
                       headers={"Retry-After": {"description": "seconds to wait",
                                                "schema": {"type": "integer", "minimum": 1}}}),
        "405": _answer("only POST is served here"),
    }
    return {
        "post": {
            "operationId": f"receive_{source}_webhook",
            "summary": f"Receive a {source} webhook delivery",
            "parameters": [{"name": name, "in": "header", "required": False, "description": text,
                            "schema": {"type": "string"}} for name, text in headers],
            "requestBody": {"required": True, "content": content},
            "responses": responses,
        }
    }


def openapi_document(source_names: list[str], limits: IntakeLimits) -> dict[str, Any]:
    """OpenAPI 3.0 for ``GET /healthz``, ``GET /openapi.json`` and ``POST /webhooks/<name>`` per source."""
    paths: dict[str, Any] = {
        "/healthz": {"get": {
            "operationId": "healthz",
            "summary": "Liveness and inbox reachability",
            "responses": {
                "200": _answer("the inbox answers", {"$ref": "#/components/schemas/Health"}),
                "503": _answer("the inbox does not answer", {"$ref": "#/components/schemas/Health"}),
            },
        }},
        "/openapi.json": {"get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {"200": _answer("the OpenAPI document", {"type": "object"})},
        }},
    }
    for name in source_names:
        paths[f"/webhooks/{name}"] = _webhook_operation(name, limits)
    return {
        "openapi": "3.0.3",
        "info": {"title": "erpsync webhook receiver", "version": "1",
                 "description": "Every delivery is authenticated, checked and committed to the inbox before the "
                                "answer; refusals store nothing and are answered {\"error\": ...}."},
        "paths": paths,
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Accepted": {"type": "object", "required": ["event_id", "duplicate_delivery"],
                         "properties": {"event_id": {"type": "integer"},
                                        "duplicate_delivery": {"type": "boolean"},
                                        "duplicate_of": {"type": "integer", "description": (
                                            "a new delivery id repeating this earlier event's body (or its "
                                            "source event id): stored as a duplicate, no new work")},
                                        "outcome": {"type": "string", "description": (
                                            "for a topic the receiver acts on itself: redacted, "
                                            "request_recorded, synced (closed) or failed (reported)")}}},
            "Ping": {"type": "object", "required": ["ping"], "properties": {"ping": {"type": "boolean"}}},
            "Health": {"type": "object", "required": ["status"],
                       "properties": {"status": {"type": "string"}, "database": {"type": "string"}}},
        }},
    }
