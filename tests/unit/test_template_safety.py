"""A hostile ``template:`` rule is refused, at load or at render, quickly and without blowing memory.

The threat is a mapping file written by someone who should not be trusted with code, or by mistake:
Jinja runs in jinja2's immutable sandbox with the payload-only lookups, filter allow-list and bounds of
erpsync/mapping/jinja_template.py. Each case here must end in a ConfigError (load) or a MappingError
(render) within TIME_LIMIT seconds and PEAK_MEMORY bytes of Python allocations.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from erpsync.errors import ConfigError, MappingError
from erpsync.mapping import load_mapping
from erpsync.mapping.jinja_template import MAX_OUTPUT, MAX_STEPS, MAX_VALUE

TIME_LIMIT = 3.0  # seconds, generous for a loaded CI machine; each case takes well under one
PEAK_MEMORY = 64 * 1024 * 1024

# Large enough for a loop over it to be a real attack: 10,000 elements is the receiver's cap on JSON values.
PAYLOAD: dict[str, Any] = {"id": 7, "name": "#7", "items": list(range(5_000)), "text": "a" * 1_000}

AT_RENDER = [
    # Attribute walking: names resolve to payload keys only, so every step past the payload is undefined.
    ("class of a string", "{{ name.__class__ }}"),
    ("mro to subclasses", "{{ ''.__class__.__mro__[1].__subclasses__() }}"),
    ("template globals", "{{ self.__init__.__globals__ }}"),
    ("cycler globals", "{{ cycler.__init__.__globals__.os.popen('id').read() }}"),
    ("lipsum globals", "{{ lipsum.__globals__['os'] }}"),
    ("item syntax", "{{ name['__class__']['__mro__'] }}"),
    ("map attribute", "{{ items | map(attribute='__class__') | first }}"),
    ("format method", "{{ '{0.__class__}'.format(name) }}"),
    ("a dict method", "{{ text.upper() }}"),
    ("string formatting", "{{ '%s' % name }}"),
    # Huge loops: no range(), and every iteration counts against MAX_STEPS.
    ("range a billion", "{% for i in range(10**9) %}x{% endfor %}"),
    ("nested loops over the payload", "{% for a in items %}{% for b in items %}{% endfor %}{% endfor %}"),
    ("three nested loops over text",
     "{% for a in text %}{% for b in text %}{% for c in text %}{% endfor %}{% endfor %}{% endfor %}"),
    ("a filter in a loop", "{% for a in items %}{% set b = items | sort %}{% endfor %}"),
    ("slice into a billion parts", "{{ items | slice(10**9) | list | length }}"),
    # Huge values: repetition, concatenation, replacement, numbers.
    ("string times a billion", "{{ 'a' * 10**9 }}"),
    ("repetition twice", "{{ 'a' * 999 * 999 }}"),
    ("list times a billion", "{{ [1] * 10**9 }}"),
    ("doubling by ~", "{% set a = text ~ text %}{% set b = a ~ a %}{% set c = b ~ b %}{% set d = c ~ c %}"
                      "{% set e = d ~ d %}{% set f = e ~ e %}{% set g = f ~ f %}{{ g | length }}"),
    ("doubling by +", "{% set a = text + text %}{% set b = a + a %}{% set c = b + b %}{% set d = c + c %}"
                      "{% set e = d + d %}{% set f = e + e %}{% set g = f + f %}{{ g | length }}"),
    ("replace squared", "{{ text | replace('a', text) | replace('a', text) | length }}"),
    ("join with a long separator", "{{ items | join(text) | length }}"),
    ("power tower", "{{ ((10 ** 64) ** 64) ** 64 }}"),
    ("squaring a big number", "{% set x = ('9' * 999) | int %}{{ x * x * x * x }}"),
    ("output past the cap", "{% for a in items %}{{ text }}{% endfor %}"),
]

AT_LOAD = [
    ("recursive macro", "{% macro m(n) %}{{ m(n) }}{{ m(n) }}{% endmacro %}{{ m(1) }}"),
    ("recursive loop", "{% for x in items recursive %}{{ loop(items) }}{% endfor %}"),
    ("set block", "{% set x %}{% for a in items %}{{ text }}{% endfor %}{% endset %}{{ x | length }}"),
    ("filter block", "{% filter upper %}{% for a in items %}{{ text }}{% endfor %}{% endfilter %}"),
    ("call block", "{% call x() %}y{% endcall %}"),
    ("include", "{% include 'other.txt' %}"),
    ("import", "{% import 'other.txt' as other %}"),
    ("extends", "{% extends 'base.txt' %}"),
    ("a filter outside the allow-list", "{{ name | center(10**9) }}"),
    ("the attr filter", "{{ name | attr('__class__') }}"),
    ("the bounded helpers by name", "{{ items | _erpsync_bounded_iter }}"),
    ("key-template syntax", "{name.__class__}"),
]


def write_mapping(folder: Path, template: str) -> Path:
    config = {
        "source": "shopify",
        "topic": "orders/create",
        "entity": {"type": "order", "id": "{id}", "version": "updated_at"},
        "record_type": "salesOrder",
        "external_id": "o-{id}",
        "fields": [{"template": template, "target_field": "memo"}],
    }
    path = folder / "hostile.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def refusal(path: Path) -> tuple[type[Exception], str, float, int]:
    """Load the mapping and apply it once; what was raised, how long it took, the peak of Python allocations."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        load_mapping(path).apply(PAYLOAD)
    except (ConfigError, MappingError) as exc:
        raised: tuple[type[Exception], str] = (type(exc), str(exc))
    else:
        raised = (type(None), "")  # type: ignore[assignment]
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return raised[0], raised[1], elapsed, peak


@pytest.mark.parametrize("template", [t for _, t in AT_RENDER], ids=[n for n, _ in AT_RENDER])
def test_refused_at_render(tmp_path: Path, template: str) -> None:
    kind, message, elapsed, peak = refusal(write_mapping(tmp_path, template))
    assert kind is MappingError, f"not refused: {template}"
    assert "fields[0].template: template" in message
    assert elapsed < TIME_LIMIT and peak < PEAK_MEMORY, (elapsed, peak)


@pytest.mark.parametrize("template", [t for _, t in AT_LOAD], ids=[n for n, _ in AT_LOAD])
def test_refused_at_load(tmp_path: Path, template: str) -> None:
    kind, message, elapsed, peak = refusal(write_mapping(tmp_path, template))
    assert kind is ConfigError, f"not refused at load: {template}"
    assert "hostile.yaml: fields[0].template:" in message
    assert elapsed < TIME_LIMIT and peak < PEAK_MEMORY, (elapsed, peak)


def test_the_refusals_say_which_bound(tmp_path: Path) -> None:
    def message(template: str) -> str:
        return refusal(write_mapping(tmp_path, template))[1]

    assert f"more than {MAX_STEPS} steps" in message(dict(AT_RENDER)["nested loops over the payload"])
    assert f"more than {MAX_VALUE} characters" in message(dict(AT_RENDER)["doubling by ~"])
    assert f"exceeds {MAX_OUTPUT} characters" in message(dict(AT_RENDER)["output past the cap"])
    assert "macros are not available" in message(dict(AT_LOAD)["recursive macro"])
    assert "'range' is undefined" in message(dict(AT_RENDER)["range a billion"])


def test_ordinary_templates_still_work(tmp_path: Path) -> None:
    template = ("Order {{ name }}{% if text is defined %} ({{ items | length }} lines, {{ items[:3] | join('/') }}"
                "{{ ' ~ ' ~ (items | sum) }}){% endif %}{% for i in items[:2] %} #{{ i + 1 }}{% endfor %}")
    record = load_mapping(write_mapping(tmp_path, template)).apply(PAYLOAD)
    assert record.body["memo"] == "Order #7 (5000 lines, 0/1/2 ~ 12497500) #1 #2"


def test_a_refusal_does_not_quote_the_payload(tmp_path: Path) -> None:
    # A key read from a payload value: the "missing key" is customer data, and the message must not carry it.
    mapping = load_mapping(write_mapping(tmp_path, "{{ customer[name] }} {{ customer.nickname }}"))
    with pytest.raises(MappingError) as caught:
        mapping.apply({**PAYLOAD, "name": "Jane Doe", "customer": {"id": 1}})
    assert "Jane Doe" not in str(caught.value) and "has no attribute '<value>'" in str(caught.value)
    with pytest.raises(MappingError, match="has no attribute 'nickname'"):  # the template's own words stay
        mapping.apply({**PAYLOAD, "name": "id", "customer": {"id": 1}})
