"""The ``template:`` escape hatch of a field rule: Jinja2 in a locked-down sandbox, compiled at load time.

Unlike the ``{field}`` key templates of ``external_id`` and ``entity.id`` (erpsync/mapping/templates.py),
a ``template:`` rule is Jinja: ``"Shopify order {{ name }}"``, ``{{ line_items | length }}``,
``{% if note %}…{% endif %}``. The locks, beyond jinja2's ImmutableSandboxedEnvironment:
- names resolve to payload keys only: ``a.b`` and ``a['b']`` read JSON objects and lists, never a Python
  attribute or method (so no ``.__class__``, no ``.format``); no globals (no ``range``, ``lipsum``, …);
- an allow-list of filters (no ``center``/``indent``/``wordwrap``/``format``, which take a width, no ``random``);
- ``*``, ``**`` and ``%`` on text are refused or bounded, and output stops at ``MAX_OUTPUT`` characters;
- StrictUndefined: a missing key is an error naming the rule (use ``default('')`` or ``is defined``);
  a JSON null renders as empty text; autoescape is off (the output is JSON, not HTML).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from erpsync.errors import MappingError

MAX_OUTPUT = 10_000  # characters; an ERP text field is far shorter
MAX_REPEAT = 1_000  # the largest sequence `*` may build

SAFE_FILTERS = frozenset(
    """abs attr batch capitalize count default d dictsort first float groupby int items join last length list
    lower map max min replace reject rejectattr reverse round select selectattr slice sort string sum title
    tojson trim truncate unique upper""".split()
) - {"attr"}  # `attr` reads Python attributes

# Written as `{name}` (the key-template syntax) where Jinja expects `{{ name }}`.
_KEY_TEMPLATE_FIELD = re.compile(r"(?<!\{)\{\s*[A-Za-z_][\w.\[\]]*\s*\}(?!\})")


class _PayloadOnlyEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

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
        if operator_name == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise SecurityError("'**' exponent above 64")
        return {"*": operator.mul, "**": operator.pow, "%": operator.mod}[operator_name](left, right)


def _finalize(value: Any) -> Any:
    return "" if value is None else value


ENVIRONMENT = _PayloadOnlyEnvironment(undefined=StrictUndefined, autoescape=False, finalize=_finalize)
ENVIRONMENT.globals.clear()
ENVIRONMENT.filters = {name: f for name, f in ENVIRONMENT.filters.items() if name in SAFE_FILTERS}


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
        unknown = sorted({f.name for f in tree.find_all(nodes.Filter)} - ENVIRONMENT.filters.keys())
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
        return cls(text, frozenset(meta.find_undeclared_variables(tree)), ENVIRONMENT.from_string(text))

    def render(self, payload: Mapping[str, Any], where: str) -> str:
        """The text, at most MAX_OUTPUT characters; MappingError naming ``where`` (never a value) on failure."""
        out: list[str] = []
        size = 0
        try:
            for chunk in self.compiled.generate(dict(payload)):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise MappingError(f"template output exceeds {MAX_OUTPUT} characters", field=where)
                out.append(chunk)
        except UndefinedError as exc:
            raise MappingError(f"template: {exc.message}", field=where) from None
        except SecurityError as exc:
            raise MappingError(f"template refused: {exc}", field=where) from None
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            # The text of these may quote payload values; the type is enough to find the rule.
            raise MappingError(f"template failed ({type(exc).__name__})", field=where) from None
        return "".join(out)
