"""The fields of the NetSuite record types erpsync writes, so a mapping's ``target_field`` is checked when it loads.

Per Oracle's REST API Browser (Record API, "salesOrder", "customer", "inventoryItem", "cashRefund",
"itemFulfillment"): body fields by name; a sublist as ``<sublist>.items.<field>`` (``item.items[].quantity`` in a
mapping); a subrecord as ``<subrecord>.<field>`` (``billingAddress.addr1``). A reference field (``entity``,
``currency``, a line's ``item``) is written as ``<field>.id``, ``.externalId`` or ``.refName``, which the check
accepts after any listed field. Custom fields (``custbody_…``, ``custcol_…``, ``custentity_…``, ``custitem_…``)
are the account's own and always accepted.

Not every field of these records is here: the ones a mapping may sensibly write, the shipped mappings' among them.
A record type not listed is not checked. A field missing here that the account has is added here, with its page.
"""

from __future__ import annotations

# The address subrecord (billingAddress, shippingAddress, an address book entry's addressBookAddress).
_ADDRESS = ("addr1", "addr2", "addr3", "addressee", "attention", "addrPhone", "city", "state", "zip", "country",
            "override", "addrText")

# The fields of a transaction's header shared by the transactions below.
_TRANSACTION = ("entity", "tranDate", "tranId", "otherRefNum", "memo", "currency", "exchangeRate", "subsidiary",
                "location", "department", "class", "customForm", "externalId", "postingPeriod", "email",
                "createdFrom", "status", "source", "toBeEmailed", "toBePrinted", "salesRep", "partner")

# A transaction's item lines (the `item` sublist).
_ITEM_LINE = ("item", "quantity", "rate", "amount", "description", "price", "taxCode", "tax1Amt", "taxRate1",
              "isTaxable", "location", "department", "class", "units", "line", "isClosed", "grossAmt")


def _with(prefix: str, names: tuple[str, ...] | list[str]) -> set[str]:
    return {f"{prefix}.{name}" for name in names}


def _addresses(*subrecords: str) -> set[str]:
    return {f"{sub}.{name}" for sub in subrecords for name in _ADDRESS} | set(subrecords)


SALES_ORDER = frozenset({
    *_TRANSACTION, "orderStatus", "startDate", "endDate", "shipDate", "terms", "shipMethod", "shippingCost",
    "handlingCost", "shipIsResidential", "discountItem", "discountRate", "discountTotal", "leadSource", "promoCode",
    "couponCode", "paymentMethod", "isTaxable", "taxItem", "taxRate", "taxTotal", "shipComplete", "billAddress",
    "shipAddress", "opportunity", "estimate",
    *_addresses("billingAddress", "shippingAddress"),
    "item", "item.items", *_with("item.items", _ITEM_LINE),
    *_with("item.items", ("commitInventory", "createPo", "expectedShipDate", "costEstimate", "costEstimateType",
                          "quantityBackOrdered", "quantityCommitted", "quantityFulfilled", "quantityBilled")),
})

CASH_REFUND = frozenset({
    *_TRANSACTION, "account", "paymentMethod", "shipMethod", "shippingCost", "handlingCost", "discountItem",
    "discountRate", "discountTotal", "isTaxable", "taxItem", "taxRate", "taxTotal", "refundCheck", "ccNumber",
    *_addresses("billingAddress", "shippingAddress"),
    "item", "item.items", *_with("item.items", _ITEM_LINE), "item.items.orderLine",
})

ITEM_FULFILLMENT = frozenset({
    "createdFrom", "tranDate", "tranId", "memo", "shipStatus", "shipMethod", "shippingCost", "handlingCost",
    "customForm", "externalId", "postingPeriod", "subsidiary", "entity", "shipIsResidential",
    *_addresses("shippingAddress"),
    "item", "item.items",
    *_with("item.items", ("item", "orderLine", "line", "quantity", "itemReceive", "location", "description",
                          "isClosed", "units", "binNumbers", "inventoryDetail", "serialNumbers")),
    "package", "package.items",
    *_with("package.items", ("packageTrackingNumber", "packageWeight", "packageDescr")),
})

CUSTOMER = frozenset({
    "isPerson", "entityId", "externalId", "companyName", "firstName", "middleName", "lastName", "salutation",
    "title", "email", "altEmail", "phone", "altPhone", "mobilePhone", "homePhone", "fax", "url", "comments",
    "subsidiary", "currency", "category", "isInactive", "taxable", "taxItem", "terms", "priceLevel", "salesRep",
    "partner", "parent", "customForm", "emailPreference", "globalSubscriptionStatus", "defaultAddress",
    "addressBook", "addressBook.items",
    *_with("addressBook.items", ("defaultBilling", "defaultShipping", "isResidential", "label", "internalId")),
    *_addresses("addressBook.items.addressBookAddress"),
})

INVENTORY_ITEM = frozenset({
    "itemId", "displayName", "externalId", "upcCode", "manufacturer", "mpn", "vendorName", "isInactive",
    "salesDescription", "purchaseDescription", "storeDescription", "storeDisplayName", "basePrice", "cost",
    "subsidiary", "includeChildren", "taxSchedule", "weight", "weightUnit", "location", "department", "class",
    "incomeAccount", "cogsAccount", "assetAccount", "isOnline", "isTaxable", "customForm", "parent",
    "price", "price.items", *_with("price.items", ("currencyPage", "priceLevel", "price", "quantity")),
    "price.items.quantity.value",
})

# record type → its fields, as System.record_fields.
RECORD_FIELDS: dict[str, frozenset[str]] = {
    "salesOrder": SALES_ORDER,
    "cashRefund": CASH_REFUND,
    "itemFulfillment": ITEM_FULFILLMENT,
    "customer": CUSTOMER,
    "inventoryItem": INVENTORY_ITEM,
}
