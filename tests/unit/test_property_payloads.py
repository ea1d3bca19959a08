"""Hypothesis: on any JSON payload, models raise only InvalidPayload (naming no input text) and mappings only errors of ours.

Payloads come three ways: arbitrary JSON; the shipped case inputs with a few values replaced by arbitrary JSON,
edge values or removed, which reaches the deep rules (lines, lookups, dates) random JSON rarely gets past; and a
deterministic sweep setting every place of every inline case input to every edge value. Text the generator
invents starts with MARK, so a model message that echoed input would show it.

Sizes (CI-friendly, about 20 s): EXAMPLES per mapping and per model, TRANSFORM_EXAMPLES_TRIED per documented
transform example, and EDGE_SWEEP_SIZE sweep payloads (at least EDGE_SWEEP_AT_LEAST).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erpsync.errors import InvalidPayload, MappingError, SkipEvent
from erpsync.mapping import InMemoryXref, Mapping, discover_mappings, load_mapping
from erpsync.mapping.cases import load_cases
from erpsync.mapping.config import TransformRef
from erpsync.mapping.money_check import check_total
from erpsync.mapping.transforms import TRANSFORMS, TransformContext
from erpsync.systems import MODELS

EXAMPLES = 200  # inputs tried per property and per mapping or model; docs/SECURITY.md cites this number
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
TRANSFORM_EXAMPLES_TRIED = 100  # per documented example of each transform (there are many)
MARK = "\u00a7"  # "§": no message of ours contains it

REPO = Path(__file__).parents[2]
MAPPINGS = [load_mapping(path) for path in discover_mappings(REPO / "mappings")]


def seeds(mapping: Mapping) -> list[Any]:
    """The mapping's case inputs: realistic payloads to mutate."""
    out: list[Any] = []
    for case in load_cases(mapping.path):
        if case.input is not None:
            out.append(case.input)
        elif case.input_file is not None and (mapping.path.parent / case.input_file).exists():
            out.append(json.loads((mapping.path.parent / case.input_file).read_text(encoding="utf-8")))
    return out


def field_names() -> list[str]:
    """Every key the seeds use, so generated objects often hit names a rule or model reads."""
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            names.update(value)
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    for mapping in MAPPINGS:
        walk(seeds(mapping))
    return sorted(names)


PLAUSIBLE_TEXT = [
    "", " ", "0", "-1", "1.5", "12.50", "1e999999", "-0", "NaN", "Infinity", "9" * 40, "USD", "usd",
    "2024-05-02T10:15:00-04:00", "2024-05-02T14:15:00", "2024-05-02", "2024-13-45T99:99:99", "order.created",
    "CABLE-USBC-1M", "IPOD2008PINK", "paid", "success", "refund", "ord_1", "a|b", "\x00",
    "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "9999-12-31", "2024-05-02T10:15:00+23:59",
]
# Edge values tried at every place of every inline case input (EDGE_SWEEP below), not left to chance.
EDGE_VALUES: list[Any] = [
    *PLAUSIBLE_TEXT, None, True, False, 0, -1, 1, 2**53 + 1, 10**400, 1.5, -0.0, 1e308, float("nan"), float("inf"),
    [], {}, [None], {"": None},
]
marked_text = st.text(max_size=20).map(lambda s: MARK + s)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(PLAUSIBLE_TEXT),
    marked_text,
)
keys = st.one_of(st.sampled_from(field_names()), st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=6)),
    max_leaves=25,
)


def places(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every (container path, key or index) in a JSON value."""
    out: list[tuple] = []
    if isinstance(value, dict):
        for key, child in value.items():
            out.append((*prefix, key))
            out += places(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out.append((*prefix, index))
            out += places(child, (*prefix, index))
    return out


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> Any:
    """``seed`` with one to four values replaced by arbitrary JSON, removed, or turned into another type."""
    payload = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 4))):
        spots = places(payload)
        if not spots:
            break
        *parent_path, last = draw(st.sampled_from(spots))
        parent = payload
        for step in parent_path:
            parent = parent[step]
        action = draw(st.sampled_from(["edge", "edge", "replace", "replace", "remove", "wrap"]))
        if action == "edge":
            parent[last] = copy.deepcopy(draw(st.sampled_from(EDGE_VALUES)))
        elif action == "remove":
            del parent[last]
        elif action == "wrap":
            parent[last] = draw(st.sampled_from([[parent[last]], {"value": parent[last]}, str(parent[last])]))
        else:
            parent[last] = draw(json_values)
    return payload


def payloads_for(mapping: Mapping) -> st.SearchStrategy[Any]:
    mapping_seeds = seeds(mapping)
    from_seeds = st.sampled_from(mapping_seeds).flatmap(mutated) if mapping_seeds else st.nothing()
    return st.one_of(json_values, from_seeds, from_seeds)


def exercise(mapping: Mapping, payload: Any) -> None:
    """What the pipeline does with a payload: model, entity, version, record, drift report."""
    if mapping.model is not None:
        try:
            MODELS[mapping.model](payload)
        except InvalidPayload:
            pass
    for step in (
        lambda: mapping.entity_id(payload),
        lambda: mapping.source_version(payload),
        lambda: [check_total(record) for record in mapping.apply_each(payload, xref=InMemoryXref({})).records],
        lambda: mapping.unread_fields(payload) if isinstance(payload, dict) else None,
    ):
        try:
            step()
        except MappingError as exc:
            assert exc.field, f"a MappingError without a field: {exc}"
        except SkipEvent as exc:  # a `skip:` rule held: the pipeline records it as skipped, with the reason
            assert str(exc), "a skip without a reason"


@pytest.mark.parametrize("mapping", MAPPINGS, ids=lambda m: m.name)
def test_mapping_raises_only_its_own_errors(mapping: Mapping) -> None:
    @PROPERTY_SETTINGS
    @given(payload=payloads_for(mapping))
    def run(payload: Any) -> None:
        exercise(mapping, payload)

    run()


def edge_sweep(mapping: Mapping) -> list[Any]:
    """Each inline case input with one place set to each edge value."""
    out: list[Any] = []
    for case in load_cases(mapping.path):
        if case.input is None:
            continue
        for spot in places(case.input):
            for edge in EDGE_VALUES:
                payload = copy.deepcopy(case.input)
                *parent_path, last = spot
                parent = payload
                for step in parent_path:
                    parent = parent[step]
                parent[last] = copy.deepcopy(edge)
                out.append(payload)
    return out


EDGE_SWEEP = {mapping.name: edge_sweep(mapping) for mapping in MAPPINGS}
EDGE_SWEEP_SIZE = sum(len(payloads) for payloads in EDGE_SWEEP.values())  # payloads the sweep tries in all
EDGE_SWEEP_AT_LEAST = 29_000  # what docs/SECURITY.md may cite; grows with the shipped cases


@pytest.mark.parametrize("mapping", MAPPINGS, ids=lambda m: m.name)
def test_mapping_on_every_edge_value_at_every_place(mapping: Mapping) -> None:
    for payload in EDGE_SWEEP[mapping.name]:
        exercise(mapping, payload)


TRANSFORM_EXAMPLES = [
    (name, n, example["transform"])
    for name, spec in sorted(TRANSFORMS.items())
    for n, example in enumerate(spec.examples)
]


@pytest.mark.parametrize(("name", "n", "transform"), TRANSFORM_EXAMPLES, ids=[f"{t[0]}-{t[1]}" for t in TRANSFORM_EXAMPLES])
def test_transform_raises_only_mapping_errors(name: str, n: int, transform: Any) -> None:
    """Every transform, with the parameters of each of its documented examples, on any JSON value and zone."""
    ref = TransformRef.model_validate(transform)
    tables = {k: v for m in MAPPINGS for k, v in m.tables.items()}

    @settings(max_examples=TRANSFORM_EXAMPLES_TRIED, deadline=None, database=None)
    @given(value=st.one_of(json_values, st.sampled_from(EDGE_VALUES)),
           zone=st.sampled_from([None, "UTC", "Pacific/Kiritimati", "Etc/GMT+12"]))
    def run(value: Any, zone: str | None) -> None:
        ctx = TransformContext("line_items[0].x", tables, InMemoryXref({}), zone)
        try:
            TRANSFORMS[ref.name].func(copy.deepcopy(value), ref.params, ctx)
        except MappingError as exc:
            assert exc.field == "line_items[0].x"

    run()


def model_seeds(name: str) -> list[Any]:
    return [s for m in MAPPINGS if m.model == name for s in seeds(m)]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_raises_only_invalid_payload_and_never_echoes_input(name: str) -> None:
    parse = MODELS[name]
    known = model_seeds(name)
    from_seeds = st.sampled_from(known).flatmap(mutated) if known else st.nothing()

    @PROPERTY_SETTINGS
    @given(payload=st.one_of(json_values, from_seeds, from_seeds))
    def run(payload: Any) -> None:
        try:
            parse(payload)
        except InvalidPayload as exc:
            assert MARK not in str(exc) and MARK not in (exc.field or ""), str(exc)

    run()


def test_the_sweep_is_as_large_as_documented() -> None:
    assert EDGE_SWEEP_SIZE >= EDGE_SWEEP_AT_LEAST


def test_every_shipped_mapping_and_model_is_covered() -> None:
    names = {m.name for m in MAPPINGS}
    assert {"woocommerce_order_to_netsuite_sales_order", "standard_order_to_netsuite_sales_order",
            "shopify_order_to_netsuite_sales_order"} <= names
    assert {"woocommerce.order", "standard.order", "shopify.order"} <= set(MODELS)
