"""The ``template:`` escape hatch of a field rule: Jinja2 in a locked-down sandbox, compiled at load time.

Unlike the ``{field}`` key templates of ``external_id`` and ``entity.id`` (erpsync/mapping/key_templates.py),
a ``template:`` rule is Jinja: ``"Shopify order {{ name }}"``, ``{{ line_items | length }}``,
``{% if note %}…{% endif %}``. The locks, beyond jinja2's ImmutableSandboxedEnvironment:
- names resolve to payload keys only: ``a.b`` and ``a['b']`` read JSON objects and lists, never a Python
  attribute or method (so no ``.__class__``, no ``.format``); no globals (no ``range``, ``lipsum``, …);
- an allow-list of filters (no ``center``/``indent``/``wordwrap``/``format``, which take a width, no ``random``);
- ``*``, ``**`` and ``%`` on text are refused or bounded, and output stops at ``MAX_OUTPUT`` characters;
- work is bounded, not only output: every loop iteration and every element a filter goes through counts
  against ``MAX_STEPS`` per render; a value built on the way (``~``, ``+``, a filter's result) holds at most
  ``MAX_VALUE`` characters or elements, and a whole number at most ``MAX_INT_BITS`` bits;
- sizes are checked before the cost is paid, not after: a filter's arguments are checked before it runs
  (``tojson``'s indent, ``batch``'s and ``slice``'s counts, ``round``'s precision, ``sum``'s start), and what it
  would write is predicted from its input (``replace``, ``join``, ``tojson``, the text filters). A list may
  hold the same large value many times over (``[big] * 999``) at no cost, so text made of a value is
  predicted from the value written out (``_written_size``), never from its length;
- what could escape those counts is refused at load: macros and call blocks (recursion), ``recursive``
  loops, ``{% set %}…{% endset %}`` and ``{% filter %}`` blocks (output built aside from the bounded
  stream), and include/import/extends;
- StrictUndefined: a missing key is an error naming the rule (use ``default('')`` or ``is defined``);
  a JSON null renders as empty text; autoescape is off (the output is JSON, not HTML).
"""

from __future__ import annotations

import functools
import inspect
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.filters import make_attrgetter
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from erpsync.errors import MappingError

MAX_OUTPUT = 10_000  # characters; an ERP text field is far shorter
MAX_REPEAT = 1_000  # the largest sequence `*` may build
MAX_VALUE = 100_000  # characters or elements of any value built on the way to the output
MAX_STEPS = 100_000  # loop iterations plus elements filters go through, per render (a payload holds ≤ 10,000 values)
MAX_INT_BITS = 4_096  # whole numbers beyond this are refused before they are computed
MAX_KEYED = 1_048_576  # characters a sort, unique, min, max or groupby may go through (a payload is ≤ 1 MiB)
MAX_INDENT = 8  # tojson's indent
MAX_PRECISION = 32  # round's digits: ceil and floor compute 10 ** precision

SAFE_FILTERS = frozenset(
    """abs attr batch capitalize count default d dictsort first float groupby int items join last length list
    lower map max min replace reject rejectattr reverse round select selectattr slice sort string sum title
    tojson trim truncate unique upper""".split()
) - {"attr"}  # `attr` reads Python attributes

# Written as `{name}` (the key-template syntax) where Jinja expects `{{ name }}`.
_KEY_TEMPLATE_FIELD = re.compile(r"(?<!\{)\{\s*[A-Za-z_][\w.\[\]]*\s*\}(?!\})")


class _PayloadOnlyEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+", "-"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self.getitem(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Mapping) and isinstance(argument, str):
            if argument in obj:
                return obj[argument]
        elif isinstance(obj, Sequence) and not isinstance(obj, str) and isinstance(argument, int):
            if -len(obj) <= argument < len(obj):
                return obj[argument]
        return self.undefined(obj=obj, name=argument)

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "%" and isinstance(left, str):
            raise SecurityError("'%' formatting is not available in templates")
        if operator_name == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and len(seq) * count > MAX_REPEAT:
                    raise SecurityError(f"'*' would build more than {MAX_REPEAT} elements")
            if _whole(left) and _whole(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise SecurityError(f"'*' would build a number above {MAX_INT_BITS} bits")
        if operator_name == "**" and isinstance(right, (int, float)):
            if abs(right) > 64:
                raise SecurityError("'**' exponent above 64")
            if _whole(left) and abs(left).bit_length() * abs(right) > MAX_INT_BITS:
                raise SecurityError(f"'**' would build a number above {MAX_INT_BITS} bits")
        if operator_name == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            if len(left) + len(right) > MAX_VALUE:
                raise SecurityError(f"'+' would build more than {MAX_VALUE} characters or elements")
        operation = {"*": operator.mul, "**": operator.pow, "%": operator.mod, "+": operator.add, "-": operator.sub}
        return _bounded(operation[operator_name](left, right))


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# The work a render may still do; set by JinjaTemplate.render, spent by loops and filters.
_STEPS_LEFT: ContextVar[list[int] | None] = ContextVar("jinja_steps_left", default=None)


def _spend(steps: int) -> None:
    left = _STEPS_LEFT.get()
    if left is None:
        raise SecurityError("templates render only through JinjaTemplate.render")
    left[0] -= steps
    if left[0] < 0:
        raise SecurityError(f"template does more than {MAX_STEPS} steps of work (loop iterations, filtered elements)")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, tuple, dict)) else 0


def _counted(items: Iterator[Any]) -> Iterator[Any]:
    for item in items:
        _spend(1)
        yield item


def _bounded(value: Any) -> Any:
    """``value`` if within the size limits; a lazy sequence is counted element by element as it is consumed."""
    if isinstance(value, (str, list, tuple, dict)) and len(value) > MAX_VALUE:
        raise SecurityError(f"a value of more than {MAX_VALUE} characters or elements")
    if _whole(value) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError(f"a number above {MAX_INT_BITS} bits")
    if isinstance(value, Iterator):
        return _counted(value)
    return value


def _written_size(value: Any, limit: int, indent: int = 0) -> int:
    """About how many characters ``str(value)`` or ``tojson(value, indent)`` writes, counted until past ``limit``.

    Walks the value as it would be written, so a part shared many times counts each time; every part visited
    is a step of the render's budget, and the walk stops once the count passes ``limit``, so it never costs
    more than the text it predicts would. Quotes and separators are counted; escapes are not."""
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack and total <= limit:
        item, depth = stack.pop()
        _spend(1)
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, (Mapping, list, tuple)):
            parts = len(item) * (2 if isinstance(item, Mapping) else 1)
            total += 2 + 2 * parts
            if indent:  # a line per part, one level deeper than the brackets, which get lines of their own
                total += parts + 1 + (parts * (depth + 1) + depth) * indent
            if total > limit:
                break
            children = [*item.keys(), *item.values()] if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)
        elif _whole(item):
            total += item.bit_length() // 3 + 2
        else:
            total += 24  # a float, a decimal, a bool, None, an undefined name
    return total


def _refuse_text_over(value: Any, limit: int, what: str) -> None:
    if not isinstance(value, str) and _written_size(value, limit) > limit:
        raise SecurityError(f"{what} would write more than {limit} characters")


def _materialised(value: Any) -> Any:
    """A lazy sequence (``map``, ``select``, ``batch``…) as a list, so its size can be predicted; each element
    is counted as it is consumed."""
    return list(value) if isinstance(value, Iterator) else value


# Checks run on a filter's arguments before it runs: (filter, bound arguments) → None, or SecurityError.
def _guard_text(parameter: str) -> Callable[[str, dict[str, Any]], None]:
    def guard(name: str, arguments: dict[str, Any]) -> None:
        _refuse_text_over(arguments[parameter], MAX_VALUE, f"'{name}'")

    return guard


def _guard_replace(name: str, arguments: dict[str, Any]) -> None:
    for key in ("s", "old", "new"):
        _refuse_text_over(arguments[key], MAX_VALUE, "'replace'")
    text, old, new, count = (str(arguments["s"]), str(arguments["old"]), str(arguments["new"]),
                             arguments["count"])
    found = text.count(old) if old else len(text) + 1  # '' is found between every two characters
    if _whole(count) and count >= 0:
        found = min(found, count)
    if len(text) + found * (len(new) - len(old)) > MAX_VALUE:
        raise SecurityError(f"'replace' would write more than {MAX_VALUE} characters")


def _guard_join(name: str, arguments: dict[str, Any]) -> None:
    arguments["value"] = values = _materialised(arguments["value"])
    _refuse_text_over(arguments["d"], MAX_VALUE, "'join'")
    if not isinstance(values, (str, list, tuple, Mapping)):
        return  # not iterable: join raises its own error
    if arguments["attribute"] is not None:
        getter = make_attrgetter(ENVIRONMENT, arguments["attribute"])
        values = [getter(v) for v in values]
    total = max(0, len(values) - 1) * len(str(arguments["d"]))
    for item in values:
        total += len(item) if isinstance(item, str) else _written_size(item, MAX_VALUE)
        if total > MAX_VALUE:
            raise SecurityError(f"'join' would write more than {MAX_VALUE} characters")


def _guard_tojson(name: str, arguments: dict[str, Any]) -> None:
    indent = arguments["indent"]
    if indent is not None and not (
        (_whole(indent) and 0 <= indent <= MAX_INDENT) or (isinstance(indent, str) and len(indent) <= MAX_INDENT)
    ):
        raise SecurityError(f"'tojson' indent must be at most {MAX_INDENT}")
    width = len(indent) if isinstance(indent, str) else (indent or 0)
    if _written_size(arguments["value"], MAX_VALUE, width) > MAX_VALUE:
        raise SecurityError(f"'tojson' would write more than {MAX_VALUE} characters")


def _guard_count(parameter: str) -> Callable[[str, dict[str, Any]], None]:
    def guard(name: str, arguments: dict[str, Any]) -> None:
        count = arguments[parameter]
        if not _whole(count) or count > MAX_VALUE:  # batch pads its last list to this size
            raise SecurityError(f"'{name}' takes a whole number up to {MAX_VALUE}")

    return guard


def _guard_sum(name: str, arguments: dict[str, Any]) -> None:
    # Adding lists copies the total so far at every step: a few thousand lists take minutes.
    if not isinstance(arguments["start"], (int, float, Decimal)):
        raise SecurityError("'sum' adds numbers only (start must be a number)")


def _guard_round(name: str, arguments: dict[str, Any]) -> None:
    precision = arguments["precision"]
    if not _whole(precision) or abs(precision) > MAX_PRECISION:
        raise SecurityError(f"'round' precision must be a whole number up to {MAX_PRECISION}")


def _guard_keyed(name: str, arguments: dict[str, Any]) -> None:
    # Without case_sensitive=True these build a lowercased copy of every key before comparing.
    arguments["value"] = value = _materialised(arguments["value"])
    if _written_size(value, MAX_KEYED) > MAX_KEYED:
        raise SecurityError(f"'{name}' would go through more than {MAX_KEYED} characters")


_GUARDS: dict[str, Callable[[str, dict[str, Any]], None]] = {
    "string": _guard_text("s"), "upper": _guard_text("s"), "lower": _guard_text("s"),
    "title": _guard_text("s"), "capitalize": _guard_text("s"), "trim": _guard_text("value"),
    "truncate": _guard_text("s"), "replace": _guard_replace, "join": _guard_join, "tojson": _guard_tojson,
    "batch": _guard_count("linecount"), "slice": _guard_count("slices"), "sum": _guard_sum, "round": _guard_round,
    "sort": _guard_keyed, "unique": _guard_keyed, "min": _guard_keyed, "max": _guard_keyed,
    "groupby": _guard_keyed, "dictsort": _guard_keyed,
}


def _bounded_filter(func: Any, name: str) -> Any:
    """``func`` charged for the elements it goes through, its arguments checked by its guard before it runs,
    its result bounded (wraps keep jinja's pass_* marks)."""
    guard = _GUARDS.get(name)
    signature = inspect.signature(func)

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        _spend(1 + sum(_size(a) for a in args))
        if guard is not None:
            bound = signature.bind(*args, **kwargs)  # TypeError for wrong arguments, as the filter would raise
            bound.apply_defaults()
            guard(name, bound.arguments)  # may replace a lazy sequence by the list it consumed
            args, kwargs = bound.args, bound.kwargs
        return _bounded(func(*args, **kwargs))

    return run


def _bounded_iter(value: Any) -> Any:
    """A ``{% for %}`` loop's sequence, each iteration counted (installed on every loop at load)."""
    if not isinstance(value, (str, list, tuple, dict, Iterator)):
        return value  # an undefined name or a number: the loop raises its own error
    return _counted(iter(value))


def _bounded_concat(parts: list[Any]) -> str:
    """``a ~ b``, refused before it builds more than MAX_VALUE characters (installed on every ``~`` at load)."""
    out: list[str] = []
    size = 0
    for part in parts:
        _refuse_text_over(part, MAX_VALUE - size, "'~'")
        text = str(part)
        size += len(text)
        if size > MAX_VALUE:
            raise SecurityError(f"'~' would build more than {MAX_VALUE} characters")
        out.append(text)
    return "".join(out)


# Statements refused at load, with the reason: each can do work or build output outside the bounded stream.
_REFUSED_NODES: dict[type[nodes.Node], str] = {
    nodes.Macro: "macros are not available in templates",
    nodes.CallBlock: "call blocks are not available in templates",
    nodes.Include: "include is not available in templates",
    nodes.Import: "import is not available in templates",
    nodes.FromImport: "import is not available in templates",
    nodes.Extends: "extends is not available in templates",
    nodes.AssignBlock: "{% set %}…{% endset %} blocks are not available in templates (use {% set x = … %})",
    nodes.FilterBlock: "{% filter %} blocks are not available in templates (use {{ … | filter }})",
}
_ITER_FILTER = "_erpsync_bounded_iter"
_CONCAT_FILTER = "_erpsync_bounded_concat"


def _harden(tree: nodes.Template) -> nodes.Template:
    """Refuse the statements above; route every loop's sequence and every ``~`` through the bounded helpers."""
    for node in tree.find_all(nodes.Stmt):
        for kind, reason in _REFUSED_NODES.items():
            if isinstance(node, kind):
                raise ValueError(reason)
        if isinstance(node, nodes.For) and node.recursive:
            raise ValueError("recursive loops are not available in templates")
    for loop in list(tree.find_all(nodes.For)):
        loop.iter = nodes.Filter(loop.iter, _ITER_FILTER, [], [], None, None, lineno=loop.lineno)
    for concat in list(tree.find_all(nodes.Concat)):
        joined = nodes.List(list(concat.nodes), lineno=concat.lineno)
        concat.nodes = [nodes.Filter(joined, _CONCAT_FILTER, [], [], None, None, lineno=concat.lineno)]
    tree.set_environment(ENVIRONMENT)
    return tree


def _finalize(value: Any) -> Any:
    """What ``{{ value }}`` writes; a list or object is refused before it is turned into more text than the
    output may hold."""
    if value is None:
        return ""
    _refuse_text_over(value, MAX_OUTPUT, "'{{ … }}'")
    return value


ENVIRONMENT = _PayloadOnlyEnvironment(undefined=StrictUndefined, autoescape=False, finalize=_finalize)
ENVIRONMENT.globals.clear()
ENVIRONMENT.filters = {
    name: _bounded_filter(f, name) for name, f in ENVIRONMENT.filters.items() if name in SAFE_FILTERS
}
ENVIRONMENT.filters[_ITER_FILTER] = _bounded_iter
ENVIRONMENT.filters[_CONCAT_FILTER] = _bounded_concat


def _without_values(message: str, payload: Any, source: str) -> str:
    """``message`` with payload text replaced: ``customer[name]`` would name a value as the missing key.

    Text the template itself spells (``customer.nope``) is the author's, and stays."""
    texts: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, str) and len(value) >= 3:
            texts.add(value)
        elif isinstance(value, Mapping):
            for key, child in value.items():
                collect(key)
                collect(child)
        elif isinstance(value, (list, tuple)):
            for child in value:
                collect(child)

    collect(payload)
    for text in sorted(texts, key=len, reverse=True):
        if text in message and text not in source:
            message = message.replace(text, "<value>")
    return message


@dataclass(frozen=True)
class JinjaTemplate:
    text: str
    names: frozenset[str] = field(repr=False)  # the top-level payload keys it reads
    compiled: Any = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: object) -> JinjaTemplate:
        if isinstance(text, JinjaTemplate):
            return text
        if not isinstance(text, str) or not text:
            raise ValueError("expected a Jinja template such as 'Shopify order {{ name }}'")
        try:
            tree = ENVIRONMENT.parse(text)
        except TemplateSyntaxError as exc:
            raise ValueError(f"bad Jinja template (line {exc.lineno}): {exc.message}") from None
        unknown = sorted({f.name for f in tree.find_all(nodes.Filter)} - SAFE_FILTERS)
        if unknown:
            raise ValueError(
                f"filter(s) not available in templates: {', '.join(unknown)} (allowed: {', '.join(sorted(SAFE_FILTERS))})"
            )
        match = _KEY_TEMPLATE_FIELD.search(text)
        if match:
            inner = match.group(0).strip("{} ")
            raise ValueError(
                f"{match.group(0)!r} is key-template syntax; a template: rule is Jinja, write {{{{ {inner} }}}}"
            )
        names = frozenset(meta.find_undeclared_variables(tree))
        return cls(text, names, ENVIRONMENT.from_string(_harden(tree)))

    def render(self, payload: Mapping[str, Any], where: str) -> str:
        """The text, at most MAX_OUTPUT characters; MappingError naming ``where`` (never a value) on failure."""
        out: list[str] = []
        size = 0
        budget = _STEPS_LEFT.set([MAX_STEPS])
        try:
            for chunk in self.compiled.generate(dict(payload)):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise MappingError(f"template output exceeds {MAX_OUTPUT} characters", field=where)
                out.append(chunk)
        except UndefinedError as exc:
            raise MappingError(f"template: {_without_values(exc.message or '', payload, self.text)}", field=where) from None
        except SecurityError as exc:
            raise MappingError(f"template refused: {exc}", field=where) from None
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            # The text of these may quote payload values; the type is enough to find the rule.
            raise MappingError(f"template failed ({type(exc).__name__})", field=where) from None
        except RecursionError:
            raise MappingError("template failed (nested too deeply)", field=where) from None
        finally:
            _STEPS_LEFT.reset(budget)
        return "".join(out)
