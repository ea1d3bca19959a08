"""The part of Shopify's GraphQL Admin API schema the shop sandbox serves, the checks that refuse what Shopify
refuses (in Shopify's error shape), and the calculated query cost.

Types, fields and arguments follow the 2026-10 reference (https://shopify.dev/docs/api/admin-graphql/2026-10):
``Query.orders``, ``Order.fulfillmentOrders``, ``Query.productVariants`` (search by ``sku:``), ``fulfillmentCreate``
with ``FulfillmentInput``, ``fulfillmentTrackingInfoUpdate``, ``fulfillmentCancel``,
``inventorySetQuantities`` with ``InventorySetQuantitiesInput``, ``productVariantsBulkUpdate`` with
``ProductVariantsBulkInput``; for reconciliation ``Query.orders`` with the order's money (``MoneyBag``), customer,
addresses, lines, shipping lines and refunds, ``ordersCount``, ``shop``, ``node``/``nodes``, and bulk operations
(``bulkOperationRunQuery``, ``currentBulkOperation``, ``BulkOperation``). Only these are served; any other field is refused as Shopify refuses an unknown one.

Since 2026-04 ``InventoryQuantityInput`` carries ``changeFromQuantity`` in place of ``compareQuantity`` and
``InventorySetQuantitiesInput`` has no ``ignoreCompareQuantity`` (https://shopify.dev/changelog/concurrency-protection-features,
"Making changeFromQuantity field required (with explicit opt-out)"); the ``@idempotent(key:)`` directive
(https://shopify.dev/docs/api/usage/idempotent-requests) is declared here and enforced by graphql_idempotency.py.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_schema,
    get_named_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    visit,
)

SDL = """
scalar DateTime
scalar Money
scalar URL
scalar Decimal
# https://shopify.dev/docs/api/admin-graphql/2026-10/scalars/UnsignedInt64: written as a string in JSON.
scalar UnsignedInt64
# The key Shopify recognises a retried mutation by (https://shopify.dev/docs/api/usage/idempotent-requests).
directive @idempotent(key: String!) on FIELD

interface Node { id: ID! }

type MoneyV2 { amount: Decimal! currencyCode: String! }
type MoneyBag { shopMoney: MoneyV2! presentmentMoney: MoneyV2! }
type Shop { id: ID! name: String! ianaTimezone: String! currencyCode: String! }
enum CountPrecision { AT_LEAST EXACT }
type Count { count: Int! precision: CountPrecision! }
type MailingAddress {
  name: String firstName: String lastName: String company: String address1: String address2: String city: String
  province: String provinceCode: String zip: String country: String countryCodeV2: String phone: String
}
type Customer implements Node {
  id: ID! legacyResourceId: String! email: String firstName: String lastName: String phone: String
  defaultAddress: MailingAddress
}
type DiscountAllocation { allocatedAmountSet: MoneyBag! }
type TaxLine { title: String rate: Float priceSet: MoneyBag! }
type Duty { id: ID! price: MoneyBag! taxLines: [TaxLine!]! }
type ShippingLine {
  id: ID code: String title: String! originalPriceSet: MoneyBag! discountedPriceSet: MoneyBag! isRemoved: Boolean!
  taxLines: [TaxLine!]! discountAllocations: [DiscountAllocation!]!
}
type ShippingLineEdge { cursor: String! node: ShippingLine! }
type ShippingLineConnection { edges: [ShippingLineEdge!]! nodes: [ShippingLine!]! pageInfo: PageInfo! }
enum OrderTransactionKind { AUTHORIZATION CAPTURE CHANGE EMV_AUTHORIZATION REFUND SALE SUGGESTED_REFUND VOID }
enum OrderTransactionStatus { AWAITING_RESPONSE ERROR FAILURE PENDING SUCCESS UNKNOWN }
type OrderTransaction { id: ID! kind: OrderTransactionKind! status: OrderTransactionStatus! amountSet: MoneyBag! }
type OrderTransactionEdge { cursor: String! node: OrderTransaction! }
type OrderTransactionConnection { edges: [OrderTransactionEdge!]! nodes: [OrderTransaction!]! pageInfo: PageInfo! }
type RefundLineItem { lineItem: LineItem! quantity: Int! }
type RefundLineItemEdge { cursor: String! node: RefundLineItem! }
type RefundLineItemConnection { edges: [RefundLineItemEdge!]! nodes: [RefundLineItem!]! pageInfo: PageInfo! }
type Refund {
  id: ID!
  createdAt: DateTime
  refundLineItems(first: Int, after: String, last: Int, before: String): RefundLineItemConnection!
  transactions(first: Int, after: String, last: Int, before: String): OrderTransactionConnection!
}

enum BulkOperationStatus { CANCELED CANCELING COMPLETED CREATED EXPIRED FAILED RUNNING }
enum BulkOperationType { MUTATION QUERY }
enum BulkOperationErrorCode { ACCESS_DENIED INTERNAL_SERVER_ERROR TIMEOUT }
enum BulkOperationUserErrorCode { INVALID LIMIT_REACHED OPERATION_IN_PROGRESS }
type BulkOperation implements Node {
  id: ID! completedAt: DateTime createdAt: DateTime! errorCode: BulkOperationErrorCode fileSize: UnsignedInt64
  objectCount: UnsignedInt64! rootObjectCount: UnsignedInt64! partialDataUrl: URL query: String!
  status: BulkOperationStatus! type: BulkOperationType! url: URL
}
type BulkOperationUserError { code: BulkOperationUserErrorCode field: [String!] message: String! }
type BulkOperationRunQueryPayload { bulkOperation: BulkOperation userErrors: [BulkOperationUserError!]! }

enum OrderSortKeys { CREATED_AT ID PROCESSED_AT UPDATED_AT }
enum OrderDisplayFulfillmentStatus { FULFILLED IN_PROGRESS ON_HOLD OPEN PARTIALLY_FULFILLED PENDING_FULFILLMENT
  RESTOCKED SCHEDULED UNFULFILLED REQUEST_DECLINED }
enum FulfillmentOrderStatus { CANCELLED CLOSED INCOMPLETE IN_PROGRESS ON_HOLD OPEN SCHEDULED }
enum FulfillmentStatus { CANCELLED ERROR FAILURE SUCCESS OPEN PENDING }
# https://shopify.dev/docs/api/admin-graphql/2026-10/enums/InventorySetQuantitiesUserErrorCode
enum InventorySetQuantitiesUserErrorCode { CHANGE_FROM_QUANTITY_STALE COMPARE_QUANTITY_REQUIRED COMPARE_QUANTITY_STALE
  IDEMPOTENCY_CONCURRENT_REQUEST IDEMPOTENCY_KEY_PARAMETER_MISMATCH IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED
  INVALID_INVENTORY_ITEM INVALID_LOCATION INVALID_NAME INVALID_QUANTITY_NEGATIVE INVALID_QUANTITY_TOO_HIGH INVALID_QUANTITY_TOO_LOW
  INVALID_REASON INVALID_REFERENCE_DOCUMENT ITEM_NOT_STOCKED_AT_LOCATION NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR
  NON_MUTABLE_INVENTORY_ITEM }
enum ProductVariantsBulkUpdateUserErrorCode { GREATER_THAN_OR_EQUAL_TO INVALID_INPUT NEGATIVE_PRICE_VALUE
  PRODUCT_DOES_NOT_EXIST PRODUCT_VARIANT_DOES_NOT_EXIST PRODUCT_VARIANT_ID_MISSING }

type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }

type Query {
  orders(first: Int, after: String, last: Int, before: String, query: String, sortKey: OrderSortKeys = PROCESSED_AT,
         reverse: Boolean = false): OrderConnection!
  order(id: ID!): Order
  fulfillmentOrder(id: ID!): FulfillmentOrder
  fulfillment(id: ID!): Fulfillment
  productVariant(id: ID!): ProductVariant
  productVariants(first: Int, after: String, last: Int, before: String, query: String): ProductVariantConnection!
  product(id: ID!): Product
  inventoryItem(id: ID!): InventoryItem
  location(id: ID!): Location
  locations(first: Int, after: String, last: Int, before: String): LocationConnection!
  shop: Shop!
  ordersCount(query: String, limit: Int = 10000): Count
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
  currentBulkOperation(type: BulkOperationType = QUERY): BulkOperation
}

type Mutation {
  fulfillmentCreate(fulfillment: FulfillmentInput!, message: String): FulfillmentCreatePayload
  fulfillmentTrackingInfoUpdate(fulfillmentId: ID!, trackingInfoInput: FulfillmentTrackingInput!,
                                notifyCustomer: Boolean): FulfillmentTrackingInfoUpdatePayload
  fulfillmentCancel(id: ID!): FulfillmentCancelPayload
  inventorySetQuantities(input: InventorySetQuantitiesInput!): InventorySetQuantitiesPayload
  productVariantsBulkUpdate(productId: ID!, variants: [ProductVariantsBulkInput!]!,
                            allowPartialUpdates: Boolean = false): ProductVariantsBulkUpdatePayload
  bulkOperationRunQuery(query: String!): BulkOperationRunQueryPayload
}

type Order implements Node {
  id: ID!
  legacyResourceId: String!
  name: String!
  email: String
  test: Boolean!
  currencyCode: String!
  presentmentCurrencyCode: String!
  taxesIncluded: Boolean!
  cancelReason: String
  displayFinancialStatus: String
  totalPriceSet: MoneyBag!
  currentTotalPriceSet: MoneyBag!
  totalDiscountsSet: MoneyBag
  totalTipReceivedSet: MoneyBag!
  customer: Customer
  billingAddress: MailingAddress
  shippingAddress: MailingAddress
  shippingLines(first: Int, after: String, last: Int, before: String): ShippingLineConnection!
  refunds(first: Int): [Refund!]!
  createdAt: DateTime!
  updatedAt: DateTime!
  processedAt: DateTime!
  cancelledAt: DateTime
  closedAt: DateTime
  displayFulfillmentStatus: OrderDisplayFulfillmentStatus!
  lineItems(first: Int, after: String, last: Int, before: String): LineItemConnection!
  fulfillmentOrders(first: Int, after: String, last: Int, before: String): FulfillmentOrderConnection!
  fulfillments(first: Int): [Fulfillment!]!
}
type OrderEdge { cursor: String! node: Order! }
type OrderConnection { edges: [OrderEdge!]! nodes: [Order!]! pageInfo: PageInfo! }

type LineItem {
  id: ID!
  sku: String
  name: String!
  title: String!
  quantity: Int!
  currentQuantity: Int!
  originalUnitPriceSet: MoneyBag!
  isGiftCard: Boolean!
  requiresShipping: Boolean!
  product: Product
  discountAllocations: [DiscountAllocation!]!
  taxLines(first: Int): [TaxLine!]!
  duties: [Duty!]!
  unfulfilledQuantity: Int!
  variant: ProductVariant
}
type LineItemEdge { cursor: String! node: LineItem! }
type LineItemConnection { edges: [LineItemEdge!]! nodes: [LineItem!]! pageInfo: PageInfo! }

type Location { id: ID! legacyResourceId: String! name: String! }
type LocationEdge { cursor: String! node: Location! }
type LocationConnection { edges: [LocationEdge!]! nodes: [Location!]! pageInfo: PageInfo! }

type FulfillmentOrderAssignedLocation { name: String location: Location }
type FulfillmentOrder {
  id: ID!
  status: FulfillmentOrderStatus!
  createdAt: DateTime!
  updatedAt: DateTime!
  orderId: ID!
  order: Order!
  assignedLocation: FulfillmentOrderAssignedLocation!
  lineItems(first: Int, after: String, last: Int, before: String): FulfillmentOrderLineItemConnection!
}
type FulfillmentOrderEdge { cursor: String! node: FulfillmentOrder! }
type FulfillmentOrderConnection { edges: [FulfillmentOrderEdge!]! nodes: [FulfillmentOrder!]! pageInfo: PageInfo! }
type FulfillmentOrderLineItem {
  id: ID!
  sku: String
  totalQuantity: Int!
  remainingQuantity: Int!
  lineItem: LineItem!
  variant: ProductVariant
}
type FulfillmentOrderLineItemEdge { cursor: String! node: FulfillmentOrderLineItem! }
type FulfillmentOrderLineItemConnection {
  edges: [FulfillmentOrderLineItemEdge!]! nodes: [FulfillmentOrderLineItem!]! pageInfo: PageInfo!
}

type FulfillmentTrackingInfo { company: String number: String url: URL }
type FulfillmentLineItem { id: ID! quantity: Int lineItem: LineItem! }
type FulfillmentLineItemEdge { cursor: String! node: FulfillmentLineItem! }
type FulfillmentLineItemConnection {
  edges: [FulfillmentLineItemEdge!]! nodes: [FulfillmentLineItem!]! pageInfo: PageInfo!
}
type Fulfillment {
  id: ID!
  name: String!
  status: FulfillmentStatus!
  createdAt: DateTime!
  order: Order!
  trackingInfo(first: Int): [FulfillmentTrackingInfo!]!
  fulfillmentLineItems(first: Int, after: String, last: Int, before: String): FulfillmentLineItemConnection!
}

type UserError { field: [String!] message: String! }
type FulfillmentCreatePayload { fulfillment: Fulfillment userErrors: [UserError!]! }
type FulfillmentTrackingInfoUpdatePayload { fulfillment: Fulfillment userErrors: [UserError!]! }
type FulfillmentCancelPayload { fulfillment: Fulfillment userErrors: [UserError!]! }

input FulfillmentOrderLineItemInput { id: ID! quantity: Int! }
input FulfillmentOrderLineItemsInput {
  fulfillmentOrderId: ID!
  fulfillmentOrderLineItems: [FulfillmentOrderLineItemInput!]
}
input FulfillmentTrackingInput { company: String number: String numbers: [String!] url: URL urls: [URL!] }
input FulfillmentOriginAddressInput {
  address1: String address2: String city: String zip: String provinceCode: String countryCode: String!
}
input FulfillmentInput {
  lineItemsByFulfillmentOrder: [FulfillmentOrderLineItemsInput!]!
  notifyCustomer: Boolean = false
  originAddress: FulfillmentOriginAddressInput
  trackingInfo: FulfillmentTrackingInput
}

type InventoryQuantity { name: String! quantity: Int! updatedAt: DateTime }
type InventoryLevel {
  id: ID!
  location: Location!
  item: InventoryItem!
  quantities(names: [String!]!): [InventoryQuantity!]!
}
type InventoryLevelEdge { cursor: String! node: InventoryLevel! }
type InventoryLevelConnection { edges: [InventoryLevelEdge!]! nodes: [InventoryLevel!]! pageInfo: PageInfo! }
type InventoryItem {
  id: ID!
  sku: String
  tracked: Boolean!
  variant: ProductVariant!
  inventoryLevel(locationId: ID!): InventoryLevel
  inventoryLevels(first: Int, after: String, last: Int, before: String): InventoryLevelConnection!
}
type InventoryChange { name: String! delta: Int! quantityAfterChange: Int item: InventoryItem location: Location }
type InventoryAdjustmentGroup {
  id: ID!
  createdAt: DateTime!
  reason: String!
  referenceDocumentUri: String
  changes(inventoryItemIds: [ID!], locationIds: [ID!], quantityNames: [String!]): [InventoryChange!]!
}
# changeFromQuantity is nullable in the schema yet must be given (null opts out of the check): the resolver refuses
# an input without it, as Shopify does at run time.
input InventoryQuantityInput { inventoryItemId: ID! locationId: ID! quantity: Int! changeFromQuantity: Int }
input InventorySetQuantitiesInput {
  name: String!
  reason: String!
  referenceDocumentUri: String
  quantities: [InventoryQuantityInput!]!
}
type InventorySetQuantitiesUserError { code: InventorySetQuantitiesUserErrorCode field: [String!] message: String! }
type InventorySetQuantitiesPayload {
  inventoryAdjustmentGroup: InventoryAdjustmentGroup
  userErrors: [InventorySetQuantitiesUserError!]!
}

type Product {
  id: ID!
  legacyResourceId: String!
  title: String!
  variants(first: Int, after: String, last: Int, before: String): ProductVariantConnection!
}
type ProductVariant {
  id: ID!
  legacyResourceId: String!
  sku: String
  title: String!
  displayName: String!
  price: Money!
  compareAtPrice: Money
  product: Product!
  inventoryItem: InventoryItem!
}
type ProductVariantEdge { cursor: String! node: ProductVariant! }
type ProductVariantConnection { edges: [ProductVariantEdge!]! nodes: [ProductVariant!]! pageInfo: PageInfo! }
input ProductVariantsBulkInput { id: ID price: Money compareAtPrice: Money taxable: Boolean }
type ProductVariantsBulkUpdateUserError {
  code: ProductVariantsBulkUpdateUserErrorCode field: [String!] message: String!
}
type ProductVariantsBulkUpdatePayload {
  product: Product
  productVariants: [ProductVariant!]
  userErrors: [ProductVariantsBulkUpdateUserError!]!
}
"""

# https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits ("Cost calculation"): a scalar or enum costs
# 0, an object 1, a connection 2 plus its first/last times the cost of one node, a mutation 10; a single query may
# not request more than 1,000 (help.shopify.com/en/api/graphql-admin-api/call-limit, "Single query limit").
OBJECT_COST = 1
CONNECTION_COST = 2
MUTATION_COST = 10
MAX_QUERY_COST = 1000
# https://shopify.dev/docs/api/usage/limits ("Input limits"): an input array holds at most 250 items, and a
# connection pages at most 250 nodes.
MAX_PAGE_SIZE = 250
MAX_INPUT_ARRAY = 250
_CONNECTION_WRAPPERS = {"edges", "node", "nodes", "pageInfo", "cursor"}


def _parse_money(value: Any) -> str:
    # Money is a decimal carried as a string ("19.99"); Shopify also takes a JSON number.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("Money must be a decimal string")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"invalid decimal '{value}'") from None
    if not amount.is_finite():
        raise ValueError(f"invalid decimal '{value}'")
    return str(amount)


def _parse_url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError("URL must be an absolute http(s) URL")
    return value


def build_admin_schema() -> GraphQLSchema:
    schema = build_schema(SDL)
    money = schema.type_map["Money"]
    money.parse_value = _parse_money  # type: ignore[attr-defined]
    money.parse_literal = lambda node, _vars=None: _parse_money(getattr(node, "value", None))  # type: ignore
    url = schema.type_map["URL"]
    url.parse_value = _parse_url  # type: ignore[attr-defined]
    url.parse_literal = lambda node, _vars=None: _parse_url(getattr(node, "value", None))  # type: ignore
    return schema


def shopify_error(message: str, code: str | None = None, *, locations: list[dict[str, int]] | None = None,
                  path: list[str] | None = None, **extensions: Any) -> dict[str, Any]:
    """One entry of ``errors`` as Shopify writes it: message, locations, path, and ``extensions.code``."""
    error: dict[str, Any] = {"message": message}
    if locations:
        error["locations"] = locations
    if path:
        error["path"] = path
    if code is not None:
        error["extensions"] = {"code": code, **extensions}
    return error


def _locations(node: Any) -> list[dict[str, int]]:
    loc = getattr(node, "loc", None)
    if loc is None or loc.source is None:
        return []
    from graphql import get_location

    where = get_location(loc.source, loc.start)
    return [{"line": where.line, "column": where.column}]


def undefined_fields(schema: GraphQLSchema, document: DocumentNode) -> list[dict[str, Any]]:
    """Fields and arguments the schema lacks, in the words of Shopify's GraphQL server (graphql-ruby):
    ``Field 'x' doesn't exist on type 'Order'`` with ``extensions.code: undefinedField``."""
    type_info = TypeInfo(schema)
    errors: list[dict[str, Any]] = []
    path: list[str] = []

    class Check(Visitor):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            path[:] = [f"{node.operation.value}{' ' + node.name.value if node.name else ''}"]

        def enter_fragment_definition(self, node: FragmentDefinitionNode, *_: Any) -> None:
            path[:] = [f"fragment {node.name.value}"]

        def enter_field(self, node: FieldNode, *_: Any) -> None:
            parent = type_info.get_parent_type()
            path.append(node.name.value)
            if parent is None or node.name.value.startswith("__"):
                return
            field = parent.fields.get(node.name.value) if hasattr(parent, "fields") else None
            if field is None:
                errors.append(shopify_error(
                    f"Field '{node.name.value}' doesn't exist on type '{parent.name}'", "undefinedField",
                    locations=_locations(node), path=list(path), typeName=parent.name, fieldName=node.name.value))
                return
            for argument in node.arguments or ():
                if argument.name.value not in field.args:
                    errors.append(shopify_error(
                        f"Field '{node.name.value}' doesn't accept argument '{argument.name.value}'",
                        "argumentNotAccepted", locations=_locations(argument), path=[*path, argument.name.value],
                        name=node.name.value, typeName="Field", argumentName=argument.name.value))

        def leave_field(self, *_: Any) -> None:
            path.pop()

    visit(document, TypeInfoVisitor(type_info, Check()))
    return errors


def translate_validation_error(error: GraphQLError) -> dict[str, Any]:
    """graphql-core's other validation errors (missing arguments, bad literals, unknown types), with a code."""
    message = error.message
    code = "validationError"
    if "is required, but it was not provided" in message or "required type" in message:
        code = "missingRequiredArguments"
    elif message.startswith("Variable"):
        code = "variableMismatch"
    elif "Syntax Error" in message:
        code = None  # type: ignore[assignment]
    return shopify_error(message, code, locations=[{"line": loc.line, "column": loc.column}
                                                    for loc in (error.locations or [])])


def _arg_int(node: FieldNode, name: str, variables: dict[str, Any]) -> int | None:
    for argument in node.arguments or ():
        if argument.name.value == name:
            if argument.value.kind == "variable":
                value = variables.get(argument.value.name.value)  # type: ignore[attr-defined]
            else:
                value = getattr(argument.value, "value", None)
            try:
                return int(value) if value is not None else None
            except (TypeError, ValueError):
                return None
    return None


def _selections(selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]):
    """The fields of a selection set, with fragments spread into it."""
    for selection in (selection_set.selections if selection_set else ()):
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _selections(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
            yield from _selections(fragments[selection.name.value].selection_set, fragments)


def _is_connection(type_: Any) -> bool:
    return getattr(get_named_type(type_), "name", "").endswith("Connection")


def _object_type(schema: GraphQLSchema, type_: Any) -> GraphQLObjectType | None:
    named = get_named_type(type_)
    if isinstance(named, GraphQLInterfaceType):
        return _NodeView(schema, named)  # type: ignore[return-value]
    return named if isinstance(named, GraphQLObjectType) else None


class _NodeView:
    """An interface (``Node``) seen as one object holding the fields of every type that implements it, so a field
    asked under ``... on Order`` inside ``node``/``nodes`` is costed like the same field of an ``Order``."""

    def __init__(self, schema: GraphQLSchema, interface: GraphQLInterfaceType):
        self.name = interface.name
        self.fields: dict[str, Any] = dict(interface.fields)
        for implementation in schema.get_implementations(interface).objects:
            for name, definition in implementation.fields.items():
                self.fields.setdefault(name, definition)


def _list_size(node: FieldNode, name: str, variables: dict[str, Any]) -> int:
    """How many ids a ``nodes(ids:)`` asks for: Shopify costs such a field once per id."""
    for argument in node.arguments or ():
        if argument.name.value == name:
            if argument.value.kind == "variable":
                value = variables.get(argument.value.name.value)  # type: ignore[attr-defined]
                return len(value) if isinstance(value, list) else 1
            return len(getattr(argument.value, "values", ()) or ()) or 1
    return 1


def _node_type(schema: GraphQLSchema, connection: GraphQLObjectType) -> GraphQLObjectType:
    return _object_type(schema, connection.fields["nodes"].type)  # type: ignore[return-value]


def _node_selection(field: FieldNode, fragments: dict[str, FragmentDefinitionNode]) -> list[FieldNode]:
    """The fields asked of each node of a connection, under ``edges { node { … } }`` or ``nodes { … }``."""
    chosen: list[FieldNode] = []
    for inner in _selections(field.selection_set, fragments):
        if inner.name.value == "nodes":
            chosen.extend(_selections(inner.selection_set, fragments))
        elif inner.name.value == "edges":
            for edge_field in _selections(inner.selection_set, fragments):
                if edge_field.name.value == "node":
                    chosen.extend(_selections(edge_field.selection_set, fragments))
    return chosen


def requested_cost(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode,
                   variables: dict[str, Any]) -> int:
    """The cost Shopify calculates before running an operation (the bucket must hold it)."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    root = schema.mutation_type if operation.operation.value == "mutation" else schema.query_type
    if operation.operation.value == "mutation":
        return sum(MUTATION_COST for _ in _selections(operation.selection_set, fragments))

    def cost_of(fields: list[FieldNode] | Any, parent: GraphQLObjectType) -> int:
        total = 0
        for field in fields:
            definition = parent.fields.get(field.name.value)
            if definition is None or is_leaf_type(get_named_type(definition.type)):
                continue
            child = _object_type(schema, definition.type)
            if child is None:
                continue
            if _is_connection(definition.type):
                size = _arg_int(field, "first", variables) or _arg_int(field, "last", variables) or 0
                node_cost = OBJECT_COST + cost_of(_node_selection(field, fragments), _node_type(schema, child))
                total += CONNECTION_COST + size * node_cost
            else:
                each = OBJECT_COST + cost_of(_selections(field.selection_set, fragments), child)
                total += each * _list_size(field, "ids", variables)
        return total

    return cost_of(_selections(operation.selection_set, fragments), root)  # type: ignore[arg-type]


def actual_cost(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode,
                data: dict[str, Any] | None) -> int:
    """The cost of what was returned: connections count the nodes they gave, a null object costs nothing."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    if data is None:
        return 0
    if operation.operation.value == "mutation":
        return sum(MUTATION_COST for _ in _selections(operation.selection_set, fragments))

    def cost_of(fields: Any, parent: GraphQLObjectType, value: Any) -> int:
        if not isinstance(value, dict):
            return 0
        total = 0
        for field in fields:
            definition = parent.fields.get(field.name.value)
            result = value.get(field.alias.value if field.alias else field.name.value)
            if definition is None or result is None or is_leaf_type(get_named_type(definition.type)):
                continue
            child = _object_type(schema, definition.type)
            if child is None:
                continue
            if _is_connection(definition.type):
                nodes = result.get("nodes") or [e.get("node") for e in result.get("edges") or []]
                node_type = _node_type(schema, child)
                selection = _node_selection(field, fragments)
                total += CONNECTION_COST + sum(OBJECT_COST + cost_of(selection, node_type, n) for n in nodes)
            elif is_list_type(definition.type) or (is_non_null_type(definition.type)
                                                   and is_list_type(definition.type.of_type)):
                inner = list(_selections(field.selection_set, fragments))
                total += sum(OBJECT_COST + cost_of(inner, child, item) for item in result)
            else:
                total += OBJECT_COST + cost_of(list(_selections(field.selection_set, fragments)), child, result)
        return total

    root = schema.query_type
    return cost_of(list(_selections(operation.selection_set, fragments)), root, data)  # type: ignore[arg-type]


def page_size_errors(schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any]) -> list[dict]:
    """Connections asked for without ``first``/``last`` or for more than 250 nodes: Shopify refuses both."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    errors: list[dict[str, Any]] = []

    def walk(fields: Any, parent: GraphQLObjectType, path: list[str]) -> None:
        for field in fields:
            definition = parent.fields.get(field.name.value)
            if definition is None:
                continue
            child = _object_type(schema, definition.type)
            if child is None:
                continue
            here = [*path, field.alias.value if field.alias else field.name.value]
            if _is_connection(definition.type):
                first, last = _arg_int(field, "first", variables), _arg_int(field, "last", variables)
                if first is None and last is None:
                    errors.append(shopify_error("you must provide one of first or last", None,
                                                locations=_locations(field), path=here))
                for name, size in (("first", first), ("last", last)):
                    if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
                        errors.append(shopify_error(
                            f"Argument '{name}' on Field '{field.name.value}' has an invalid value ({size}). "
                            f"Expected a value between 0 and {MAX_PAGE_SIZE}.", "argumentLiteralsIncompatible",
                            locations=_locations(field), path=here))
                walk(_node_selection(field, fragments), _node_type(schema, child), here)
            else:
                walk(_selections(field.selection_set, fragments), child, here)

    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and definition.operation.value == "query":
            walk(_selections(definition.selection_set, fragments), schema.query_type, [])  # type: ignore[arg-type]
    return errors
