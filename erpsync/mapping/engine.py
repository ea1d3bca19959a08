"""Applying a loaded mapping to one source payload: payload in, ERP record (type, external id, body) out.

Every MappingError raised here starts with ``<mapping name>@<version>:`` and carries the concrete source
path in ``.field``, so a dead-lettered event says which mapping, which version and which field failed.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from erpsync.errors import ConfigError, MappingError, SkipEvent, WithdrawRecord
from erpsync.mapping.config import EachConfig, FieldConfig, MappingConfig
from erpsync.mapping.lookup_tables import LookupTable
from erpsync.mapping.paths import MISSING, FieldPath, positions, read, write
from erpsync.mapping.source_fields import covers, leaf_paths, normalised_shape, shape_text
from erpsync.mapping.transforms import TRANSFORMS, TransformContext
from erpsync.mapping.xref_resolvers import XrefResolver
from erpsync.systems import system

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "text": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "list": (list,),
}
_JSON_NAMES = {str: "text", int: "integer", float: "number", bool: "boolean", dict: "object", list: "list"}


# Where a mapping with a `money:` section finds the computed order (docs/mapping-format.md, "Money").
MONEY_VIEW = "order"


@dataclass(frozen=True)
class ExpectedTotal:
    """The source's own total, which the total NetSuite computes from the body must equal before a push."""

    currency: str
    places: int  # the currency's minor units
    total: Decimal
    total_field: str  # where the source states it, e.g. total_price
    tolerance: Decimal
    # The mapping's money.sign is negative: the target's total must be minus the source's (``total`` is then
    # already negated; the messages say so).
    negated: bool = False


@dataclass(frozen=True)
class MappedRecord:
    """What the ERP connector upserts: ``PUT /record/v1/{record_type}/eid:{external_id}`` with ``body``.

    The body holds plain JSON values only (dict, list, str, int, float, bool, None), so it can be hashed,
    stored and sent as is. The external id travels in the URL, not in the body. ``expected_total`` is set
    when the mapping declares ``money:``; the pipeline checks the body against it before the push.
    """

    record_type: str
    external_id: str
    body: dict[str, Any]
    expected_total: ExpectedTotal | None = None
    # A record of an `each:` mapping: where its element's key is (variants[1].sku) and the key (the SKU), so
    # that a refusal of its push names them.
    key_source: str | None = None
    key: str | None = None
    # The system the record is written to (the mapping's `to:`): whose totals the money check computes.
    target: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Records:
    """What one event maps to: one record, or with ``each:`` one per element, in the list's order.

    ``skipped`` says which elements were left out and why (``variants[2]: ...``), for the ledger's outcome.
    """

    records: tuple[MappedRecord, ...]
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleResult:
    """What one rule did for one value, for ``erpsync mapping preview``."""

    rule: str  # fields[3]
    target: str  # item.items[1].rate
    source: str | None  # line_items[1].price, or None for a constant or template
    value: Any = None  # what was written
    skipped: str | None = None  # why nothing was written


@dataclass(frozen=True)
class Mapping:
    """A validated mapping file with its lookup tables, ready to apply; build it with ``load_mapping``."""

    path: Path
    display: str  # the file as messages name it
    config: MappingConfig = field(repr=False)
    tables: dict[str, LookupTable] = field(repr=False)
    version: str  # short sha256 of the file's bytes and of every lookup table it declares
    # leaf path → read, ignored or unread: the same payload shapes come back with every event of a topic
    _leaf_is_read: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.path.name.removesuffix(".yaml").removesuffix(".yml")

    @property
    def ref(self) -> str:
        """``name@version``, the prefix of every error this mapping raises."""
        return f"{self.name}@{self.version}"

    @property
    def source(self) -> str:
        """The system the events come from (the file's ``from:``)."""
        return self.config.source

    @property
    def target(self) -> str:
        """The system the records are written to (the file's ``to:``)."""
        return self.config.target

    @property
    def topics(self) -> tuple[str, ...]:
        return self.config.all_topics

    @property
    def record_type(self) -> str:
        return self.config.record_type

    @property
    def entity_type(self) -> str:
        return self.config.entity.type

    @property
    def model(self) -> str | None:
        return self.config.model

    def handles(self, source: str, topic: str) -> bool:
        return source == self.source and topic in self.topics

    # -- who and which version --

    def entity_id(self, payload: AnyMapping[str, Any]) -> str:
        """The entity id from the ``entity.id`` template; MappingError naming the field when it is missing."""
        try:
            return self.config.entity.id.render(_object(payload))
        except MappingError as exc:
            raise self._located(exc) from None

    def entity_label(self, payload: AnyMapping[str, Any]) -> str | None:
        """The code staff know the entity by (``entity.label``, e.g. ``#1042``); None when the mapping declares
        none or the payload lacks its field: a label helps find an event and never stops one."""
        if self.config.entity.label is None:
            return None
        try:
            return self.config.entity.label.render(_object(payload))[:100] or None
        except MappingError:
            return None

    def source_version(self, payload: AnyMapping[str, Any]) -> datetime | int | float:
        """The value at ``entity.version``: a tz-aware datetime (from ISO 8601 text) or a number.

        A timestamp without offset is read in ``entity.version``'s ``timezone`` when the mapping gives one.
        """
        spec = self.config.entity.version
        path = spec.field
        try:
            (found,) = read(_object(payload), path)
            value = found.value
            if value is MISSING:
                raise MappingError("required source field is missing", field=found.where)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value
            if not isinstance(value, str):
                raise MappingError(f"a version must be a timestamp or a number, found {_json_name(value)}", field=found.where)
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                raise MappingError("not an ISO 8601 timestamp", field=found.where) from None
            if moment.tzinfo is None or moment.utcoffset() is None:
                if spec.timezone is None:
                    raise MappingError(
                        "timestamp has no UTC offset, so events cannot be ordered"
                        " (entity.version can name its zone: {field: ..., timezone: UTC})",
                        field=found.where,
                    )
                moment = moment.replace(tzinfo=ZoneInfo(spec.timezone))
            return moment
        except MappingError as exc:
            raise self._located(exc) from None

    # -- the record --

    def apply(
        self,
        payload: AnyMapping[str, Any],
        *,
        xref: XrefResolver | None = None,
        trace: list[RuleResult] | None = None,
    ) -> MappedRecord:
        """Map one payload; MappingError (``name@version: path: problem``) names the source path at fault.

        ``xref`` resolves ``erp_lookup`` transforms; ``trace``, when given, receives each rule's result.
        """
        if self.config.each is not None:
            raise ConfigError(f"{self.ref}: maps one record per element of {self.config.each.list_.text}"
                              " (each:); apply_each gives them all")
        try:
            return self._apply(_object(payload), xref, trace)
        except MappingError as exc:
            raise self._located(exc) from None

    def apply_each(self, payload: AnyMapping[str, Any], *, xref: XrefResolver | None = None) -> Records:
        """Every record the payload maps to: ``apply``'s one, or with ``each:`` one per element of the list.

        An element without its key is left out and listed in ``skipped``; an event none of whose elements is
        left raises SkipEvent with those reasons. Errors name the element's source path (``variants[1].sku``).
        """
        each = self.config.each
        if each is None:
            return Records((self.apply(payload, xref=xref),))
        try:
            return self._apply_each(_object(payload), each, xref)
        except MappingError as exc:
            raise self._located(exc) from None

    def _apply_each(self, payload: AnyMapping[str, Any], each: EachConfig, xref: XrefResolver | None) -> Records:
        if each.as_ in payload:
            raise MappingError(f"the payload has a field {each.as_!r} of its own, where each: puts the element",
                               field=each.as_)
        self._gate(payload)
        (found,) = read(payload, each.list_)
        if found.value is MISSING:
            raise MappingError("required source list is missing", field=found.where)
        if not isinstance(found.value, list):
            raise MappingError(f"expected a list, found {_json_name(found.value)}", field=found.where)
        records: list[MappedRecord] = []
        skipped: list[str] = []
        owners: dict[str, str] = {}
        for n, element in enumerate(found.value):
            where = f"{found.where}[{n}]"
            if not isinstance(element, AnyMapping):
                raise MappingError(f"expected an object, found {_json_name(element)}", field=where)
            view = {**payload, each.as_: element}
            (key,) = read(view, each.key)
            if key.value is MISSING or (isinstance(key.value, str) and not key.value.strip()):
                skipped.append(f"{where}: {each.without_key}")
                continue
            if isinstance(key.value, bool) or not isinstance(key.value, (str, int)):
                raise MappingError(f"a key must be text or an integer, found {_json_name(key.value)}",
                                   field=_in_list(key.where, each, where))
            try:
                record = self._apply(view, xref, None)
            except MappingError as exc:
                raise _at_element(exc, each, where) from None
            if record.external_id in owners:
                raise MappingError(f"maps to the external id {record.external_id} of {owners[record.external_id]}"
                                   " as well; each element needs its own", field=where)
            owners[record.external_id] = where
            records.append(dataclasses.replace(record, key_source=_in_list(key.where, each, where),
                                               key=str(key.value).strip()))
        if not records:
            reasons = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")
            raise SkipEvent(f"{found.where}: no element to sync" + (f" ({reasons})" if reasons else " (empty)"))
        return Records(tuple(records), tuple(skipped))

    def _gate(self, payload: AnyMapping[str, Any]) -> None:
        # The source undoing the record comes first: its other rules may read what is no longer there.
        for cancel in self.config.cancel:
            if cancel.when.holds(payload):
                raise WithdrawRecord(f"{cancel.when.paths()[0].text}: {cancel.message}")
        # A skip wins over a refusal: a test order or an unpaid one is never a dead letter.
        for skip in self.config.skip:
            if skip.when.holds(payload):
                raise SkipEvent(f"{skip.when.paths()[0].text}: {skip.message}")
        for reject in self.config.reject:
            if reject.when.holds(payload):
                raise MappingError(reject.message, field=reject.when.paths()[0].text)

    def _apply(self, payload: AnyMapping[str, Any], xref: XrefResolver | None, trace: list[RuleResult] | None) -> MappedRecord:
        external_id = self.config.external_id.render(payload)
        check = system(self.target).check_external_id
        if check is not None:
            try:
                check(external_id)
            except MappingError as exc:
                # The target's own rule, worded by its package: "may hold only letters, digits, '_' and '-' …".
                rule = str(exc).removeprefix(f"{exc.field}: ") if exc.field else str(exc)
                raise MappingError(f"rendered external id {rule}", field="external_id") from None
        if self.config.each is None:  # with each:, the event was gated once, before its elements
            self._gate(payload)
        expected: ExpectedTotal | None = None
        money = self.config.money
        if money is not None:
            from erpsync.order_money import computations

            if MONEY_VIEW in payload:
                raise MappingError(f"the payload has a field {MONEY_VIEW!r} of its own, where the money section puts"
                                   " the computed order", field=MONEY_VIEW)
            assert self.config.model is not None  # the loader refuses money: without model:
            computed = computations()[self.config.model](payload, money)
            negated = money.sign == "negative"
            expected = ExpectedTotal(computed.currency, computed.places, -computed.total if negated else computed.total,
                                     computed.total_field, money.tolerance, negated)
            view = computed.view()
            try:
                body = self._fill({**payload, MONEY_VIEW: view}, xref, trace)
            except MappingError as exc:
                raise _to_source_line(exc, view) from None
        else:
            body = self._fill(payload, xref, trace)
        return MappedRecord(self.record_type, external_id, body, expected, target=self.target)

    def _fill(self, payload: AnyMapping[str, Any], xref: XrefResolver | None,
              trace: list[RuleResult] | None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        spread_later: list[tuple[int, FieldConfig]] = []
        for i, rule in enumerate(self.config.fields):
            if rule.source_field is not None:
                self._map_source(i, rule, rule.source_field, payload, body, xref, trace)
            elif rule.template is not None:
                if self._skipped(i, rule, payload, (), trace):
                    continue
                text = rule.template.render(payload, f"fields[{i}].template")
                value = self._transform(rule, text, f"fields[{i}].template", xref, payload)
                self._write(i, rule, body, (), value, None, trace)
            elif rule.target_field.iterations:
                # A constant for every list element: wait until the source fields have created them all.
                spread_later.append((i, rule))
            elif not self._skipped(i, rule, payload, (), trace):
                value = self._transform(rule, copy.deepcopy(rule.value), f"fields[{i}].value", xref, payload)
                self._write(i, rule, body, (), value, None, trace)
        for i, rule in spread_later:
            for indices in positions(body, rule.target_field):
                if self._skipped(i, rule, payload, indices, trace):
                    continue
                value = self._transform(rule, copy.deepcopy(rule.value), f"fields[{i}].value", xref, payload)
                self._write(i, rule, body, indices, value, None, trace)
        return body

    def _map_source(
        self,
        i: int,
        rule: FieldConfig,
        source: FieldPath,
        payload: AnyMapping[str, Any],
        body: dict[str, Any],
        xref: XrefResolver | None,
        trace: list[RuleResult] | None,
    ) -> None:
        for found in read(payload, source):
            if self._skipped(i, rule, payload, found.indices, trace, found.where):
                continue
            value = found.value
            if value is MISSING:
                if rule.has_default and len(found.indices) == source.iterations:
                    value = copy.deepcopy(rule.default)
                elif rule.required and not rule.has_default:
                    raise MappingError("required source field is missing", field=found.where)
                else:
                    if trace is not None:
                        trace.append(RuleResult(f"fields[{i}]", rule.target_field.text, found.where, skipped="missing"))
                    continue
            elif rule.type is not None and (
                not isinstance(value, _JSON_TYPES[rule.type]) or (isinstance(value, bool) and rule.type != "boolean")
            ):
                raise MappingError(f"expected {rule.type}, found {_json_name(value)}", field=found.where)
            value = self._transform(rule, value, found.where, xref, payload)
            self._write(i, rule, body, found.indices, value, found.where, trace)

    def _skipped(
        self,
        i: int,
        rule: FieldConfig,
        payload: AnyMapping[str, Any],
        indices: tuple[int, ...],
        trace: list[RuleResult] | None,
        where: str | None = None,
    ) -> bool:
        if rule.when is None or rule.when.holds(payload, indices):
            return False
        if trace is not None:
            target = rule.target_field.bound(indices).text
            trace.append(RuleResult(f"fields[{i}]", target, where, skipped="when: condition does not hold"))
        return True

    def _write(
        self,
        i: int,
        rule: FieldConfig,
        body: dict[str, Any],
        indices: tuple[int, ...],
        value: Any,
        where: str | None,
        trace: list[RuleResult] | None,
    ) -> None:
        write(body, rule.target_field, indices, value)
        if trace is not None:
            trace.append(RuleResult(f"fields[{i}]", rule.target_field.bound(indices).text, where, value=value))

    def _transform(
        self, rule: FieldConfig, value: Any, where: str, xref: XrefResolver | None, payload: AnyMapping[str, Any]
    ) -> Any:
        if not rule.transforms:
            return value
        ctx = TransformContext(where, self.tables, xref, self.config.timezone, payload=payload, mapping_path=self.path)
        for ref in rule.transforms:
            value = TRANSFORMS[ref.name].func(value, ref.params, ctx)
        return value

    def _located(self, exc: MappingError) -> MappingError:
        # A copy, so a subclass keeps what it carries for the ledger (erp_lookup's create: keeps the ERP's detail).
        located = copy.copy(exc)
        located.args = (f"{self.ref}: {exc}",)
        return located

    # -- schema drift --

    def read_shapes(self) -> frozenset[tuple[str, ...]]:
        """The source paths any part of the mapping reads, list positions erased (``line_items[].sku``)."""
        paths: list[FieldPath] = [*self.config.external_id.fields, *self.config.entity.id.fields]
        if self.config.entity.label is not None:
            paths.extend(self.config.entity.label.fields)
        if self.config.each is not None:
            paths.append(self.config.each.key)
        paths.append(self.config.entity.version.field)
        shapes: set[tuple[str, ...]] = set()
        for reject in (*self.config.reject, *self.config.skip, *self.config.cancel):
            paths.extend(reject.when.paths())
        if self.config.money is not None and self.config.model is not None:
            from erpsync.order_money import source_reads

            # The money section reads these source fields itself; its view (`order.…`) is no source field.
            paths.extend(FieldPath.parse(p) for p in source_reads().get(self.config.model, ()))
        for rule in self.config.fields:
            if rule.source_field is not None:
                paths.append(rule.source_field)
            if rule.when is not None:
                paths.extend(rule.when.paths())
            if rule.template is not None:
                shapes.update((name,) for name in rule.template.names)  # reads the whole value
        each = self.config.each
        if each is not None:
            # The rules read the element as `variant.…`; in the payload it is `variants[].…`.
            element = (*normalised_shape(each.list_), "[]")
            shapes = {(*element, *s[1:]) if s[0] == each.as_ else s for s in shapes}
            paths = [FieldPath.parse(f"{each.list_.text}[].{p.text.partition('.')[2]}")
                     if p.segments[0].key == each.as_ and len(p.segments) > 1 else p for p in paths]
            if any(p.segments[0].key == each.as_ and len(p.segments) == 1 for p in paths):
                shapes.add(element)
        shapes.update(normalised_shape(p) for p in paths)
        return frozenset(shapes)

    def ignored_shapes(self) -> frozenset[tuple[str, ...]]:
        """The source fields the mapping's ``ignore:`` names: no rule reads them, on purpose."""
        return frozenset(normalised_shape(p) for p in self.config.ignore)

    def unread_fields(self, payload: AnyMapping[str, Any], *, include_ignored: bool = False) -> list[str]:
        """Source paths present in ``payload`` that no rule reads (``line_items[].tax_lines[].rate``), sorted; the
        fields ``ignore:`` names (and everything under them) are left out unless ``include_ignored``.

        Not an error: a report that lets a team see a platform change (a new or renamed field) coming.
        """
        known = self._leaf_is_read
        shapes: tuple[frozenset, frozenset] | None = None  # computed on the first leaf not seen before
        unread = set()
        for leaf in leaf_paths(payload):
            state = known.get(leaf)
            if state is None:
                if shapes is None:
                    shapes = (self.read_shapes(), self.ignored_shapes())
                read_shapes, ignored = shapes
                state = known[leaf] = (
                    "read" if any(covers(r, leaf) for r in read_shapes)
                    else "ignored" if any(covers(i, leaf) for i in ignored)
                    else "unread"
                )
            if state == "unread" or (include_ignored and state == "ignored"):
                unread.add(shape_text(leaf))
        return sorted(unread)


_VIEW_LINE = re.compile(rf"^{MONEY_VIEW}\.lines\[(\d+)\]\.(\w+)$")


def _to_source_line(exc: MappingError, view: dict[str, Any]) -> MappingError:
    """An error at a computed line names the source line it comes from: ``line_items[3].sku``, not
    ``order.lines[2].sku`` (a removed line shifts the positions)."""
    match = _VIEW_LINE.match(exc.field or "")
    if match is None:
        return exc
    n, name = int(match.group(1)), match.group(2)
    source = view["lines"][n].get("source") if n < len(view["lines"]) else None
    if source is None:
        return exc
    text = str(exc).removeprefix(f"{exc.field}: ")
    where = f"{source}.{name}" if name == "sku" else f"{exc.field} ({source})"
    return MappingError(text, field=where)


def _in_list(field: str | None, each: EachConfig, where: str) -> str | None:
    """``variant.sku`` → ``variants[1].sku``: a path of the element view as the source payload spells it."""
    if field is None:
        return None
    if field == each.as_:
        return where
    if field.startswith(f"{each.as_}.") or field.startswith(f"{each.as_}["):
        return where + field[len(each.as_):]
    return field


def _at_element(exc: MappingError, each: EachConfig, where: str) -> MappingError:
    field = _in_list(exc.field, each, where)
    if field == exc.field:
        return exc
    moved = copy.copy(exc)
    moved.args = (f"{field}: {str(exc).removeprefix(f'{exc.field}: ')}",)
    moved.field = field
    return moved


def _object(payload: Any) -> AnyMapping[str, Any]:
    if not isinstance(payload, AnyMapping):
        raise MappingError(f"expected a JSON object, found {_json_name(payload)}", field="(payload)")
    return payload


def _json_name(value: Any) -> str:
    return "null" if value is None else _JSON_NAMES.get(type(value), type(value).__name__)
