"""A hostile ``template:`` rule or mapping file is refused, at load or at render, quickly and without blowing memory.

The threat is a mapping file written by someone who should not be trusted with code, or by mistake:
Jinja runs in jinja2's immutable sandbox with the payload-only lookups, filter allow-list and bounds of
erpsync/mapping/jinja_sandbox.py, and YAML is read with the bounds of erpsync/mapping/loader.py. Each case
here must end in a ConfigError (load) or a MappingError (render) within TIME_LIMIT seconds and PEAK_MEMORY
bytes: measured in this process (Python's allocations, CPU time), and enforced in a child process that the
kernel stops at PEAK_MEMORY more address space (RLIMIT_AS) and TIME_LIMIT more seconds of CPU (RLIMIT_CPU).
A limit found only after the cost is paid fails there, where tracemalloc would merely report it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from erpsync.errors import ConfigError, MappingError
from erpsync.mapping import load_mapping
from erpsync.mapping.jinja_sandbox import MAX_OUTPUT, MAX_STEPS, MAX_VALUE
from erpsync.mapping.loader import MAX_YAML_DEPTH, parse_yaml

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

# The cases of issue 16: each ended in a MappingError, but only after the cost was paid (the figures then).
BIG = "{% set a = items | join(',') %}{% set b = a ~ a ~ a ~ a %}"  # ~96,000 characters, under MAX_VALUE
PAID_BEFORE_REFUSED = [
    ("tojson with a huge indent", "{{ [1] | tojson(indent=100000000) }}"),  # 558 MB
    ("tojson of a nested list with a huge indent", "{{ [[[[1]]]] | tojson(indent=30000000) }}"),  # 1.27 GB, 10 s
    ("batch padded to ten million", "{{ [1] | batch(10000000,'x') | first }}"),  # 226 MB
    ("replace of the empty string", "{% set a = items | join %}{{ a | replace('', a) | length }}"),  # 461 MB
    ("sum of lists", "{{ ([items] * 999) | sum(start=[]) | length }}"),  # minutes
    ("round up to ten million places", "{{ 1.5 | round(10000000, 'ceil') }}"),  # 12 s
    # One large value shared by every element of a list costs nothing, until it is written out.
    ("join of a shared value", BIG + "{{ ([b] * 999) | join | length }}"),
    ("join of a lazy sequence", BIG + "{{ ([b] * 999) | select | join | length }}"),
    ("tojson of a shared value", BIG + "{{ ([b] * 999) | tojson | length }}"),
    ("tojson of shared lists", BIG + "{% set l = [b] * 999 %}{{ ([l] * 999) | tojson | length }}"),
    ("string of a shared value", BIG + "{{ ([b] * 999) | string | length }}"),
    ("upper of a shared value", BIG + "{{ ([b] * 999) | upper | length }}"),
    ("output of a shared value", BIG + "{{ [b] * 999 }}"),
    ("~ of a shared value", BIG + "{{ (([b] * 999) ~ '') | length }}"),
    ("sort lowercasing a shared value", BIG + "{{ ([b] * 999) | sort | length }}"),
    ("sort by a shared attribute", BIG + "{% set d = {'k': b} %}{{ ([d] * 999) | sort(attribute='k') | length }}"),
    ("replace by a shared value", BIG + "{{ b | replace(',', [b] * 999) | length }}"),
]
AT_RENDER += PAID_BEFORE_REFUSED

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


# Mapping files whose YAML alone is the attack: refused while they are read.
_LAUGHS = "".join(f"      l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]\n" for n in range(1, 10))
HOSTILE_YAML = [
    ("alias bomb in a value constant", """source: shopify
topic: orders/create
entity: {type: order, id: "{id}", version: updated_at}
record_type: salesOrder
external_id: o-{id}
fields:
  - target_field: memo
    value:
      l0: &l0 lol
""" + _LAUGHS),  # nine lines standing for 9 ** 9 (387 million) values
    ("nesting ten thousand deep", "source: shopify\nfields: " + "[" * 10_000 + "]" * 10_000 + "\n"),
    ("a million values", "source: shopify\nfields: [" + "1," * 1_000_000 + "]\n"),
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
    """Load the mapping and apply it once; what was raised, its CPU time, the peak of Python allocations.

    CPU time rather than wall time: on a loaded two-core CI machine a case's wall time grew threefold."""
    tracemalloc.start()
    started = time.process_time()
    try:
        load_mapping(path).apply(PAYLOAD)
    except (ConfigError, MappingError) as exc:
        raised: tuple[type[Exception], str] = (type(exc), str(exc))
    else:
        raised = (type(None), "")  # type: ignore[assignment]
    finally:
        elapsed = time.process_time() - started
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


@pytest.mark.parametrize("opening", ["[", "{a: "])
def test_flow_nesting_is_refused_at_the_bracket_past_the_bound(opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    deepest = MAX_YAML_DEPTH - 1  # collections around a scalar: MAX_YAML_DEPTH values deep, the most allowed
    parse_yaml((opening * deepest + "1" + closing * deepest).encode())
    with pytest.raises(yaml.YAMLError, match=f"nested more than {MAX_YAML_DEPTH} levels deep") as refused:
        parse_yaml((opening * 10_000 + "1" + closing * 10_000).encode())
    # The scanner stops at the first bracket past the bound, not the composer after the scanner read ahead.
    assert isinstance(refused.value, yaml.scanner.ScannerError), type(refused.value)
    assert refused.value.problem_mark.column == len(opening) * MAX_YAML_DEPTH


@pytest.mark.parametrize("text", [t for _, t in HOSTILE_YAML], ids=[n for n, _ in HOSTILE_YAML])
def test_hostile_yaml_is_refused_while_read(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    kind, message, elapsed, peak = refusal(path)
    assert kind is ConfigError and "hostile.yaml: " in message, message
    assert elapsed < TIME_LIMIT and peak < PEAK_MEMORY, (elapsed, peak)


# -- the same cases under the kernel's limits --------------------------------------------------------------------

# Runs in a child process: imports once, warms up, then forks once per case. Each fork sets RLIMIT_AS to its
# address space now + PEAK_MEMORY and RLIMIT_CPU to its CPU time now + TIME_LIMIT, loads and applies the
# mapping, and writes one JSON line: what was raised, and the CPU seconds it took.
_CHILD = r"""
import json, os, resource, signal, sys
from erpsync.errors import ConfigError, MappingError
from erpsync.mapping import load_mapping

limit_bytes, limit_seconds = int(sys.argv[1]), float(sys.argv[2])
payload = json.loads(open(sys.argv[3]).read())
load_mapping(sys.argv[4]).apply(payload)  # warm-up: every lazy import and cache, before any limit

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

def address_space():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

for path in sys.argv[5:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (address_space() + limit_bytes, hard))
        started = cpu()
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU, (int(started + limit_seconds) + 1, hard))
        try:
            load_mapping(path).apply(payload)
            outcome = {"raised": None, "message": ""}
        except (ConfigError, MappingError) as exc:
            outcome = {"raised": type(exc).__name__, "message": str(exc)}
        except MemoryError:
            outcome = {"raised": "MemoryError", "message": ""}
        outcome["cpu_seconds"] = cpu() - started
        os.write(write, json.dumps(outcome).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        text = answer.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        text = json.dumps({"raised": "killed by " + signal.Signals(os.WTERMSIG(status)).name, "message": ""})
    print(json.dumps({"path": path, **json.loads(text or '{"raised": "no answer", "message": ""}')}), flush=True)
"""


@cache
def _under_limits(folder: str) -> dict[str, dict[str, Any]]:
    """Every hostile case of this module, each in a forked child under the limits; outcome by case name."""
    root = Path(folder)
    cases: dict[str, Path] = {}
    for i, (name, template) in enumerate([*AT_RENDER, *AT_LOAD]):
        case = root / f"case{i}"
        case.mkdir()
        cases[name] = write_mapping(case, template)
    for i, (name, text) in enumerate(HOSTILE_YAML):
        cases[name] = root / f"yaml{i}.yaml"
        cases[name].write_text(text)
    warm = root / "warm"
    warm.mkdir()
    (root / "payload.json").write_text(json.dumps(PAYLOAD))
    argv = [sys.executable, "-c", _CHILD, str(PEAK_MEMORY), str(TIME_LIMIT), str(root / "payload.json"),
            str(write_mapping(warm, "{{ name }} {{ items | tojson | length }}")), *map(str, cases.values())]
    # Wall time is only a backstop for a case the CPU limit cannot see (one that sleeps or blocks).
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60 + 10 * len(cases))
    assert done.returncode == 0, done.stderr[-2000:]
    by_path = {line["path"]: line for line in map(json.loads, done.stdout.splitlines())}
    return {name: by_path[str(path)] for name, path in cases.items()}


@pytest.fixture(scope="module")
def under_limits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return _under_limits(str(tmp_path_factory.mktemp("hostile")))


EXPECTED_UNDER_LIMITS = (
    [(name, "MappingError") for name, _ in AT_RENDER]
    + [(name, "ConfigError") for name, _ in AT_LOAD]
    + [(name, "ConfigError") for name, _ in HOSTILE_YAML]
)


@pytest.mark.parametrize(("name", "raised"), EXPECTED_UNDER_LIMITS, ids=[n for n, _ in EXPECTED_UNDER_LIMITS])
def test_refused_within_the_limits_in_a_child_process(
    under_limits: dict[str, dict[str, Any]], name: str, raised: str
) -> None:
    outcome = under_limits[name]
    assert outcome["raised"] == raised, outcome
    assert outcome["cpu_seconds"] < TIME_LIMIT, outcome


def test_the_child_process_limits_do_stop_a_case_that_pays_the_cost(tmp_path: Path) -> None:
    # The harness itself: a cost paid before any check (a YAML file far over the limits, read as the loader
    # read it before issue 16) must come back as MemoryError or a kill, not as a refusal.
    script = tmp_path / "costly.py"
    script.write_text("import yaml\n" "def load_mapping(path):\n"
                      "    class Paid:\n" "        def apply(self, payload):\n"
                      "            return yaml.safe_load(open(path).read())\n" "    return Paid()\n")
    child = _CHILD.replace("from erpsync.mapping import load_mapping", "from costly import load_mapping")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("[" + "[1, 2, 3, 4, 5, 6, 7, 8]," * 200_000 + "]")
    warm = tmp_path / "warm.yaml"
    warm.write_text("a: 1")
    (tmp_path / "payload.json").write_text("{}")
    done = subprocess.run([sys.executable, "-c", child, str(PEAK_MEMORY), str(TIME_LIMIT),
                           str(tmp_path / "payload.json"), str(warm), str(bomb)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    (outcome,) = map(json.loads, done.stdout.splitlines())
    assert outcome["raised"] in {"MemoryError", "killed by SIGXCPU", "killed by SIGKILL"}, outcome
