"""erp_lookup's create: (find-or-create) — its configuration checked when a mapping loads, and what it builds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from erpsync.errors import ConfigError, MappingError
from erpsync.mapping import InMemoryXref, OfflineXref, load_mapping
from erpsync.mapping.engine import Mapping

REPO = Path(__file__).resolve().parents[2]
CUSTOMER_MAPPING = REPO / "mappings" / "shopify_customer_to_netsuite_customer.yaml"
ORDER_SAMPLE = REPO / "tests" / "fixtures" / "shopify" / "orders_create.json"
SAMPLE_CUSTOMER_EID = "shopify-customer-115310627314723954"

CREATE = {
    "mapping": "shopify_customer_to_netsuite_customer",
    "from": "customer",
    "fill": {
        "default_address": "billing_address",
        "first_name": "billing_address.first_name",
        "last_name": "billing_address.last_name",
    },
}


def order_mapping(folder: Path, create: Any = CREATE, name: str = "orders.yaml") -> Path:
    """An order mapping whose customer rule is the one the shipped order mappings use, beside the customer mapping."""
    shutil.copy(CUSTOMER_MAPPING, folder / CUSTOMER_MAPPING.name)
    lookup = {"name": "erp_lookup", "record": "customer", "by": "email", "create": create}
    (folder / name).write_text(yaml.safe_dump({
        "source": "shopify",
        "topic": "orders/create",
        "entity": {"type": "order", "id": "{id}", "version": "updated_at"},
        "record_type": "salesOrder",
        "external_id": "shopify-order-{id}",
        "fields": [
            {"source_field": "customer.email", "target_field": "entity.id",
             "when": {"field": "customer.email", "matches": "@"},
             "transform": ["trim", "lowercase", lookup]},
            {"target_field": "entity.id", "value": "110", "when": {"not": {"field": "customer.email", "matches": "@"}}},
        ],
    }, sort_keys=False))
    return folder / name


@pytest.fixture
def mapping(tmp_path: Path) -> Mapping:
    return load_mapping(order_mapping(tmp_path))


def sample_order() -> dict[str, Any]:
    return json.loads(ORDER_SAMPLE.read_text())


# --- configuration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("create", "message"),
    [
        ({**CREATE, "mapping": "shopify_customer_to_netsuite_custmer"},
         "unknown mapping 'shopify_customer_to_netsuite_custmer'"
         " (did you mean 'shopify_customer_to_netsuite_customer'?)"),
        ({**CREATE, "mapping": "orders"}, "a mapping cannot create its own records through itself"),
        ({**CREATE, "mapping": "../secrets"}, "a mapping is named by its file name without .yaml"),
        ({**CREATE, "from": "line_items[].customer"}, "from 'line_items[].customer' iterates a list"),
        ({**CREATE, "from": "customer..x"}, "bad path"),
        ({**CREATE, "fill": {"default address": "billing_address"}}, "'default address' is not a key of the object"),
        ({**CREATE, "fill": {"default_address": "shipping_lines[].address"}}, "iterates a list"),
        ({"mapping": CREATE["mapping"]}, "from: required key is missing"),
        ({**CREATE, "form": "customer"}, "form: unknown key"),
        ("shopify_customer_to_netsuite_customer", "create: Input should be"),
    ],
)
def test_a_bad_create_is_refused_when_the_mapping_loads(tmp_path: Path, create: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_mapping(order_mapping(tmp_path, create))
    assert "fields[0].transform[2]" in str(caught.value)
    assert message in str(caught.value)


def test_create_is_checked_against_the_files_beside_the_mapping(tmp_path: Path) -> None:
    path = order_mapping(tmp_path)
    (tmp_path / CUSTOMER_MAPPING.name).unlink()
    with pytest.raises(ConfigError, match="unknown mapping 'shopify_customer_to_netsuite_customer'"):
        load_mapping(path)


def test_a_valid_create_loads(mapping: Mapping) -> None:
    (lookup,) = [ref for ref in mapping.config.fields[0].transforms if ref.name == "erp_lookup"]
    assert lookup.params.mappings_used() == {"shopify_customer_to_netsuite_customer"}
    assert lookup.params.create.from_ == "customer"


# --- what it does (the case-file cross-reference; the ERP sandbox is in tests/integration/test_customers.py) ----


def test_a_known_email_is_used_and_nothing_is_created(mapping: Mapping) -> None:
    xref = InMemoryXref({"customer.email": {"john@example.com": "1201"}})
    assert mapping.apply(sample_order(), xref=xref).body == {"entity": {"id": "1201"}}
    assert xref.created == []


def test_a_new_email_creates_the_customer_from_the_order(mapping: Mapping) -> None:
    xref = InMemoryXref({"customer.externalid": {SAMPLE_CUSTOMER_EID: "1202"}})
    order = sample_order()
    order["customer"]["email"] = " John@Example.com "
    assert mapping.apply(order, xref=xref).body == {"entity": {"id": "1202"}}
    (created,) = xref.created
    assert (created.record_type, created.external_id) == ("customer", SAMPLE_CUSTOMER_EID)
    assert created.body["email"] == "john@example.com"
    assert created.body["firstName"] == "John"
    # The sample's customer has its own default address: it is kept, not replaced by the billing address.
    assert created.body["addressBook"]["items"][0]["addressBookAddress"]["addr1"] == "123 Elm St."
    # The next order of that customer finds the one just created.
    assert mapping.apply(sample_order(), xref=xref).body == {"entity": {"id": "1202"}}
    assert len(xref.created) == 1


def test_the_billing_address_and_names_fill_what_the_customer_lacks(mapping: Mapping) -> None:
    order = sample_order()
    order["customer"].update(first_name=None, last_name=None, default_address=None)
    xref = InMemoryXref({"customer.externalid": {SAMPLE_CUSTOMER_EID: "1203"}})
    mapping.apply(order, xref=xref)
    (created,) = xref.created
    billing = order["billing_address"]
    assert (created.body["firstName"], created.body["lastName"]) == (billing["first_name"], billing["last_name"])
    address = created.body["addressBook"]["items"][0]["addressBookAddress"]
    assert (address["addr1"], address["zip"], address["country"]) == (
        billing["address1"], billing["zip"], {"id": billing["country_code"]}
    )


@pytest.mark.parametrize(
    "customer",
    [None, {"id": 5, "email": None, "first_name": "Jo", "last_name": "X"}, {"id": 6, "first_name": "Jo"},
     {"id": 7, "email": " ", "first_name": "Jo", "last_name": "X"}],
    ids=["no customer", "null email", "no email", "blank email"],
)
def test_a_guest_goes_to_the_default_customer(mapping: Mapping, customer: Any) -> None:
    order = sample_order()
    order["customer"] = customer
    xref = InMemoryXref({})
    assert mapping.apply(order, xref=xref).body == {"entity": {"id": "110"}}
    assert xref.created == []


def test_a_customer_that_cannot_be_built_names_the_field_and_external_id_not_the_value(mapping: Mapping) -> None:
    order = sample_order()
    order["customer"].update(id=77, email="Secret.Person@example.com", first_name=None, last_name=None,
                             default_address=None)
    order["billing_address"] = None
    with pytest.raises(MappingError) as caught:
        mapping.apply(order, xref=InMemoryXref({}))
    message = str(caught.value)
    assert caught.value.field == "customer.email"
    assert caught.value.reason.startswith("MappingError: ")
    assert "cannot create the ERP customer shopify-customer-77" in message
    assert "customer.first_name: required source field is missing" in message
    assert "secret" not in message.lower()


def test_a_case_file_must_give_the_new_customer_an_id(mapping: Mapping) -> None:
    with pytest.raises(MappingError, match=f"no id to the new customer {SAMPLE_CUSTOMER_EID}.*customer.externalid"):
        mapping.apply(sample_order(), xref=InMemoryXref({}))


def test_from_must_reach_an_object(tmp_path: Path) -> None:
    mapping = load_mapping(order_mapping(tmp_path, {**CREATE, "from": "email"}))
    with pytest.raises(MappingError) as caught:
        mapping.apply(sample_order(), xref=InMemoryXref({}))
    assert caught.value.field == "customer.email"
    assert str(caught.value).endswith("email: expected an object to create the ERP customer from, found str")
    assert sample_order()["email"] not in str(caught.value)


def test_without_a_cross_reference_that_creates_it_is_a_config_error(mapping: Mapping) -> None:
    class LookupOnly:
        def resolve(self, record_type: str, field: str, value: str) -> str | None:
            return None

    with pytest.raises(ConfigError, match="needs a cross-reference that can create records"):
        mapping.apply(sample_order(), xref=LookupOnly())


# --- an object built key by key: WooCommerce, whose order has billing details and a customer id, no customer ----

WOO_CUSTOMER_MAPPING = REPO / "mappings" / "woocommerce_customer_to_netsuite_customer.yaml"
WOO_CREATE = {
    "mapping": "woocommerce_customer_to_netsuite_customer",
    "from": {"id": "customer_id", "first_name": "billing.first_name", "last_name": "billing.last_name",
             "email": "billing.email", "billing": "billing"},
}
# WooCommerce marks a guest with customer_id 0; an order without a usable email is a guest's too.
WOO_REGISTERED = {"all": [{"field": "billing.email", "matches": "@"}, {"field": "customer_id", "exists": True},
                          {"not": {"field": "customer_id", "in": [0]}}]}


def woo_order_mapping(folder: Path) -> Mapping:
    shutil.copy(WOO_CUSTOMER_MAPPING, folder / WOO_CUSTOMER_MAPPING.name)
    lookup = {"name": "erp_lookup", "record": "customer", "by": "email", "create": WOO_CREATE}
    (folder / "woo_orders.yaml").write_text(yaml.safe_dump({
        "source": "woocommerce",
        "topic": "order.created",
        "entity": {"type": "order", "id": "{id}", "version": {"field": "date_modified_gmt", "timezone": "UTC"}},
        "record_type": "salesOrder",
        "external_id": "woocommerce-order-{id}",
        "fields": [
            {"source_field": "billing.email", "target_field": "entity.id", "when": WOO_REGISTERED,
             "transform": ["trim", "lowercase", lookup]},
            {"target_field": "entity.id", "value": "110", "when": {"not": WOO_REGISTERED}},
        ],
    }, sort_keys=False))
    return load_mapping(folder / "woo_orders.yaml")


def woo_order(**changes: Any) -> dict[str, Any]:
    order = {
        "id": 727, "customer_id": 26, "date_modified_gmt": "2017-03-22T16:28:08",
        "billing": {"first_name": "John", "last_name": "Doe", "company": "", "address_1": "969 Market",
                    "address_2": "", "city": "San Francisco", "state": "CA", "postcode": "94103", "country": "US",
                    "email": "John.Doe@Example.com", "phone": "(555) 555-5555"},
    }
    order.update(changes)
    return order


def test_a_woocommerce_customer_is_created_from_the_billing_details(tmp_path: Path) -> None:
    mapping = woo_order_mapping(tmp_path)
    xref = InMemoryXref({"customer.externalid": {"woocommerce-customer-26": "1301"}})
    assert mapping.apply(woo_order(), xref=xref).body == {"entity": {"id": "1301"}}
    (created,) = xref.created
    assert created.external_id == "woocommerce-customer-26"
    assert (created.body["firstName"], created.body["email"], created.body["phone"]) == (
        "John", "john.doe@example.com", "(555) 555-5555"
    )
    assert created.body["addressBook"]["items"][0]["addressBookAddress"]["zip"] == "94103"


@pytest.mark.parametrize(
    "changes",
    [{"customer_id": 0}, {"customer_id": None}, {"billing": {"first_name": "Jo", "email": ""}}],
    ids=["guest", "no customer id", "empty email"],
)
def test_a_woocommerce_guest_goes_to_the_default_customer(tmp_path: Path, changes: dict[str, Any]) -> None:
    xref = InMemoryXref({})
    assert woo_order_mapping(tmp_path).apply(woo_order(**changes), xref=xref).body == {"entity": {"id": "110"}}
    assert xref.created == []


def test_an_error_in_a_built_object_names_the_order_field_it_came_from(tmp_path: Path) -> None:
    order = woo_order()
    order["billing"]["last_name"] = ""
    with pytest.raises(MappingError) as caught:
        woo_order_mapping(tmp_path).apply(order, xref=InMemoryXref({}))
    assert "cannot create the ERP customer woocommerce-customer-26" in str(caught.value)
    assert "billing.last_name: a person needs a last name in NetSuite" in str(caught.value)
    assert "john" not in str(caught.value).lower()


@pytest.mark.parametrize(
    ("from_", "message"),
    [({}, "name the object's keys"), ({"id": "line_items[].id"}, "iterates a list"), ({"bad key": "id"}, "not a key")],
)
def test_a_bad_built_object_is_refused_when_the_mapping_loads(tmp_path: Path, from_: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_mapping(order_mapping(tmp_path, {**CREATE, "from": from_}))


# --- Standard: the order's data.customer, read by the customer mapping under the event's `data` -----------------

STANDARD_CREATE = {"mapping": "standard_customer_to_netsuite_customer", "from": {"data": "data.customer"}}


def test_a_standard_order_creates_its_customer_from_data_customer(tmp_path: Path) -> None:
    shutil.copy(REPO / "mappings" / "standard_customer_to_netsuite_customer.yaml", tmp_path)
    lookup = {"name": "erp_lookup", "record": "customer", "by": "email", "create": STANDARD_CREATE}
    (tmp_path / "standard_orders.yaml").write_text(yaml.safe_dump({
        "source": "standard", "topic": "order.created",
        "entity": {"type": "order", "id": "{data.id}", "version": "data.updated_at"},
        "record_type": "salesOrder", "external_id": "standard-order-{data.id}",
        "fields": [
            {"source_field": "data.customer.email", "target_field": "entity.id",
             "when": {"field": "data.customer.email", "matches": "@"}, "transform": ["trim", "lowercase", lookup]},
            {"target_field": "entity.id", "value": "110",
             "when": {"not": {"field": "data.customer.email", "matches": "@"}}},
        ],
    }))
    mapping = load_mapping(tmp_path / "standard_orders.yaml")
    event = {"type": "order.created", "data": {"id": "SO-1", "updated_at": "2024-05-02T10:15:00Z",
                                                "customer": {"id": "cus_9", "email": "Ann@Example.com",
                                                             "first_name": "Ann", "last_name": "Lee"}}}
    xref = InMemoryXref({"customer.externalid": {"standard-customer-cus_9": "1401"}})
    assert mapping.apply(event, xref=xref).body == {"entity": {"id": "1401"}}
    assert xref.created[0].body["email"] == "ann@example.com"
    del event["data"]["customer"]["last_name"]
    with pytest.raises(MappingError, match="data.customer.last_name: a person needs a last name"):
        mapping.apply(event, xref=InMemoryXref({}))
    del event["data"]["customer"]
    assert mapping.apply(event, xref=InMemoryXref({})).body == {"entity": {"id": "110"}}


def test_a_built_object_with_none_of_its_fields_is_a_mapping_error(tmp_path: Path) -> None:
    create = {**CREATE, "from": {"id": "nope.id"}}
    mapping = load_mapping(order_mapping(tmp_path, create, name="none.yaml"))
    with pytest.raises(MappingError, match="none of nope.id is present to create the ERP customer"):
        mapping.apply(sample_order(), xref=InMemoryXref({}))


def test_mapped_without_the_erp_the_customer_is_left_empty(mapping: Mapping) -> None:
    # Reconciliation maps many orders at once, without ERP calls: the customer is then not compared.
    assert mapping.apply(sample_order(), xref=OfflineXref()).body == {"entity": {"id": None}}
    order = sample_order()
    order["customer"] = None
    assert mapping.apply(order, xref=OfflineXref()).body == {"entity": {"id": "110"}}
