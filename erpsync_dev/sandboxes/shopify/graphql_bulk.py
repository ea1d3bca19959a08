"""Bulk operations of the shop sandbox's GraphQL Admin API: ``bulkOperationRunQuery`` runs a query in the
background and leaves its result as a JSONL file; ``currentBulkOperation`` and ``node(id:)`` report its progress.

As https://shopify.dev/docs/api/usage/bulk-operations/queries and
https://shopify.dev/docs/api/admin-graphql/2026-10/mutations/bulkOperationRunQuery describe it:
- the query must hold at least one connection, at most five, nested at most two levels deep; connections are read
  whole (``first``/``after`` are not needed and page nothing); a refused query is a ``userErrors`` entry with
  code ``INVALID``, and no operation is made;
- one bulk query runs at a time per shop: another ``bulkOperationRunQuery`` while one is CREATED or RUNNING is
  refused with code ``OPERATION_IN_PROGRESS`` (https://shopify.dev/docs/api/admin-graphql/2026-10/enums/BulkOperationUserErrorCode);
- ``BulkOperation`` (https://shopify.dev/docs/api/admin-graphql/2026-10/objects/BulkOperation) goes CREATED →
  RUNNING → COMPLETED (``url``, ``objectCount``, ``rootObjectCount``, ``fileSize``, the counts as UnsignedInt64
  strings) or FAILED (``errorCode``, ``partialDataUrl``);
- the file has one JSON object per line: each node of the outer connection, then the nodes of its nested
  connections as lines of their own carrying ``__parentId`` (the id of the node they belong to), the nested
  connection left out of the parent's line; a list that is not a connection stays inline.

The file is served at ``/_sandbox/bulk-results/<token>.jsonl`` without the access token, as Shopify's signed
storage URL needs none; the token is unguessable. For tests, ``/_sandbox/bulk`` holds an operation RUNNING for a
while (``runningSeconds``) or fails the next one (``failNext``: an error code).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    Visitor,
    execute_sync,
    get_named_type,
    parse,
    validate,
    visit,
)
from graphql.error import GraphQLSyntaxError

from erpsync_dev.sandboxes.shopify.graphql_store import now_utc

MAX_CONNECTIONS = 5
MAX_DEPTH = 2
_PAGING = {"first", "last", "after", "before"}


@dataclass
class BulkOperation:
    number: int
    query: str
    created_at: str
    status: str = "CREATED"
    completed_at: str | None = None
    error_code: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    body: bytes | None = None
    base_url: str = ""

    @property
    def gid(self) -> str:
        return f"gid://shopify/BulkOperation/{self.number}"

    def node(self) -> dict[str, Any]:
        url = f"{self.base_url}/_sandbox/bulk-results/{self.token}.jsonl" if self.body is not None else None
        return {
            "__typename": "BulkOperation", "id": self.gid, "status": self.status, "type": "QUERY", "query": self.query,
            "createdAt": self.created_at, "completedAt": self.completed_at, "errorCode": self.error_code,
            "objectCount": str(self.object_count), "rootObjectCount": str(self.root_object_count),
            "fileSize": str(len(self.body)) if self.body is not None and self.status == "COMPLETED" else None,
            "url": url if self.status == "COMPLETED" else None,
            "partialDataUrl": url if self.status == "FAILED" and self.body else None,
        }


class BulkOperations:
    """The shop's bulk queries: at most one CREATED or RUNNING at a time, each run on a thread of its own."""

    def __init__(self, schema: GraphQLSchema, root: Callable[[], dict[str, Any]]):
        self.schema = schema
        self.root = root
        self.operations: dict[int, BulkOperation] = {}
        self._lock = threading.Lock()
        self._next = 1
        self.running_seconds = 0.0
        self.fail_next: str | None = None

    def current(self) -> BulkOperation | None:
        return self.operations[max(self.operations)] if self.operations else None

    def get(self, number: int) -> BulkOperation | None:
        return self.operations.get(number)

    def by_token(self, token: str) -> BulkOperation | None:
        return next((op for op in self.operations.values() if secrets.compare_digest(op.token, token)), None)

    def run_query(self, query: str, base_url: str) -> dict[str, Any]:
        """The ``BulkOperationRunQueryPayload`` of one ``bulkOperationRunQuery``."""
        problem, document = self._check(query)
        if problem:
            return {"bulkOperation": None, "userErrors": [{"code": "INVALID", "field": ["query"], "message": problem}]}
        with self._lock:
            current = self.current()
            if current is not None and current.status in ("CREATED", "RUNNING"):
                return {"bulkOperation": None, "userErrors": [{
                    "code": "OPERATION_IN_PROGRESS", "field": None,
                    "message": f"A bulk query operation for this app and shop is already in progress: {current.gid}."}]}
            operation = BulkOperation(self._next, query, now_utc(), base_url=base_url.rstrip("/"))
            self._next += 1
            self.operations[operation.number] = operation
            failing, self.fail_next = self.fail_next, None
        created = operation.node()  # the answer shows the operation as made, whatever the thread does next
        threading.Thread(target=self._run, args=(operation, document, failing), daemon=True,
                         name=f"bulk-{operation.number}").start()
        return {"bulkOperation": created, "userErrors": []}

    def _check(self, query: str) -> tuple[str | None, DocumentNode | None]:
        try:
            document = parse(query)
        except GraphQLSyntaxError as exc:
            return f"Invalid bulk query: {exc.message}", None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].operation.value != "query":
            return "Invalid bulk query: a bulk operation runs exactly one query", None
        errors = validate(self.schema, document)
        if errors:
            return f"Invalid bulk query: {errors[0].message}", None
        connections, deepest = self._connections(operations[0].selection_set, self.schema.query_type, 0)
        if connections == 0:
            return "Bulk queries must contain at least one connection.", None
        if connections > MAX_CONNECTIONS:
            return f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections.", None
        if deepest > MAX_DEPTH:
            return f"Bulk queries cannot contain connections with a nesting depth greater than {MAX_DEPTH}.", None
        return None, _without_paging(document)

    def _connections(self, selection_set: SelectionSetNode | None, parent: Any, depth: int) -> tuple[int, int]:
        count, deepest = 0, depth
        for selection in (selection_set.selections if selection_set else ()):
            if not isinstance(selection, FieldNode):
                inner_parent = parent
                condition = getattr(selection, "type_condition", None)
                if condition is not None:
                    inner_parent = self.schema.type_map.get(condition.name.value, parent)
                c, d = self._connections(getattr(selection, "selection_set", None), inner_parent, depth)
                count, deepest = count + c, max(deepest, d)
                continue
            fields = getattr(parent, "fields", {}) or {}
            definition = fields.get(selection.name.value)
            if definition is None:
                continue
            named = get_named_type(definition.type)
            if getattr(named, "name", "").endswith("Connection"):
                node_type = get_named_type(named.fields["nodes"].type)
                c, d = self._connections(_node_selections(selection), node_type, depth + 1)
                count, deepest = count + 1 + c, max(deepest, d, depth + 1)
            else:
                c, d = self._connections(selection.selection_set, named, depth)
                count, deepest = count + c, max(deepest, d)
        return count, deepest

    def _run(self, operation: BulkOperation, document: DocumentNode, failing: str | None) -> None:
        operation.status = "RUNNING"
        if self.running_seconds:
            time.sleep(self.running_seconds)
        lines: list[str] = []
        try:
            if failing:
                raise RuntimeError(failing)
            result = execute_sync(self.schema, document, root_value=self.root())
            if result.errors:
                raise RuntimeError("INTERNAL_SERVER_ERROR")
            for line, is_root in flatten(result.data or {}):
                lines.append(json.dumps(line, separators=(",", ":")))
                operation.object_count += 1
                operation.root_object_count += is_root
        except RuntimeError as exc:
            operation.error_code = str(exc) if str(exc) in ("ACCESS_DENIED", "TIMEOUT") else "INTERNAL_SERVER_ERROR"
            operation.body = ("\n".join(lines) + "\n").encode() if lines else None
            operation.status = "FAILED"
            return
        operation.body = ("\n".join(lines) + "\n").encode() if lines else b""
        operation.completed_at = now_utc()
        operation.status = "COMPLETED"


def _node_selections(field_node: FieldNode) -> SelectionSetNode | None:
    """The selection set of a connection's node, under ``edges { node }`` or ``nodes``."""
    for inner in (field_node.selection_set.selections if field_node.selection_set else ()):
        if isinstance(inner, FieldNode) and inner.name.value == "nodes":
            return inner.selection_set
        if isinstance(inner, FieldNode) and inner.name.value == "edges":
            for edge_field in (inner.selection_set.selections if inner.selection_set else ()):
                if isinstance(edge_field, FieldNode) and edge_field.name.value == "node":
                    return edge_field.selection_set
    return None


def _without_paging(document: DocumentNode) -> DocumentNode:
    """The document with ``first``/``last``/``after``/``before`` dropped: a bulk query reads connections whole."""

    class Strip(Visitor):
        def enter_argument(self, node, *_):
            return self.REMOVE if node.name.value in _PAGING else None

    return visit(document, Strip())


def _is_connection(value: Any) -> bool:
    # In this schema only a connection's object has ``edges`` or ``nodes`` (with ``pageInfo`` beside them).
    return isinstance(value, dict) and ("edges" in value or "nodes" in value) and set(value) <= {
        "edges", "nodes", "pageInfo"}


def _connection_nodes(value: dict[str, Any]) -> list[Any]:
    if "nodes" in value:
        return list(value["nodes"] or [])
    return [edge.get("node") for edge in value.get("edges") or [] if isinstance(edge, dict)]


def flatten(data: dict[str, Any]):
    """(line, is a root object) for every node of the result, parents before their children."""
    for value in data.values():
        if _is_connection(value):
            for node in _connection_nodes(value):
                yield from _node_lines(node, None, True)


def _node_lines(node: Any, parent_id: str | None, is_root: bool):
    if not isinstance(node, dict):
        return
    children: list[tuple[Any, str | None]] = []
    line = _strip(node, node.get("id"), children)
    if parent_id is not None:
        line["__parentId"] = parent_id
    yield line, is_root
    for child, owner in children:
        yield from _node_lines(child, owner, False)


def _strip(value: Any, owner: str | None, children: list[tuple[Any, str | None]]) -> Any:
    """``value`` without its nested connections, whose nodes go to ``children`` with the id of the nearest object
    above them that has one (an order's lines: the order; a refund's lines inside an order: the refund)."""
    if isinstance(value, dict):
        here = value.get("id") if isinstance(value.get("id"), str) else owner
        kept = {}
        for key, inner in value.items():
            if _is_connection(inner):
                children.extend((child, here) for child in _connection_nodes(inner))
            else:
                kept[key] = _strip(inner, here, children)
        return kept
    if isinstance(value, list):
        return [_strip(inner, owner, children) for inner in value]
    return value
