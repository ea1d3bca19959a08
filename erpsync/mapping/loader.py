"""Reading mapping files: YAML → validated config → lookup tables → checks across fields → ``Mapping``; finding the one for a topic."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from erpsync.errors import ConfigError
from erpsync.mapping.config import MappingConfig, describe_errors, did_you_mean
from erpsync.mapping.engine import Mapping
from erpsync.mapping.lookup_tables import LookupTable, confined, read_regular_file
from erpsync.mapping.target_fields import target_field_problems

log = logging.getLogger(__name__)

TEST_SUFFIX = "_test.yaml"  # the sibling case file: mappings/x.yaml → mappings/x_test.yaml
_LEGACY_CASES_SUFFIX = ".cases.yaml"


def display_path(path: Path) -> str:
    """The path relative to the working directory when it is below it (``mappings/x.yaml``), else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# Bounds on a mapping or case file, far above the shipped ones (under 10 KiB and 600 nodes each), checked while
# it is read: PyYAML builds every node before any check of ours could run.
MAX_YAML_BYTES = 1024 * 1024
MAX_YAML_NODES = 20_000  # values once aliases are expanded; about 12 MB and half a second for PyYAML at the cap
MAX_YAML_DEPTH = 64  # PyYAML composes recursively: a few hundred levels is a RecursionError


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` counting values as if every alias were written out, and bounding count and depth.

    An alias (``*a``) shares a node, so nine lines of aliases to aliases stand for a billion values: cheap to
    load, then expanded by whatever walks the value (validation, hashing, the ERP body). Aliases are kept (case
    files and ``yaml.safe_dump`` use them) but each counts for the values it stands for, so a bomb is refused
    while it is read, having cost no more than its text."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._values = 0  # expanded so far
        self._depth = 0
        self._anchored: dict[int, tuple[int, int]] = {}  # id(node) → (expanded values, height)
        self._heights: list[int] = [0]  # height of the deepest child composed so far, per open level

    def _refuse(self, problem: str) -> None:
        raise yaml.composer.ComposerError(None, None, problem, self.peek_event().start_mark)

    def _count(self, values: int, height: int) -> None:
        self._values += values
        if self._values > MAX_YAML_NODES:
            self._refuse(f"more than {MAX_YAML_NODES} values (aliases counted as written out)")
        if self._depth + height > MAX_YAML_DEPTH:
            self._refuse(f"nested more than {MAX_YAML_DEPTH} levels deep (aliases counted as written out)")

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        # Refused here, at the bracket, rather than in compose_node: an open '[' or '{' may start a simple key, so
        # the scanner reads ahead over every bracket opened after it (up to 1,024 characters), and checks each
        # pending one at every token; ten thousand '[' cost seconds before the composer saw the 65th level.
        if self.flow_level >= MAX_YAML_DEPTH:
            raise yaml.scanner.ScannerError(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep",
                                            self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)  # the anchored node, already composed and counted once
            values, height = self._anchored[id(node)]
            self._count(values, height)
            self._heights[-1] = max(self._heights[-1], height)
            return node
        anchor = getattr(self.peek_event(), "anchor", None)
        before = self._values
        self._count(1, 1)
        self._depth += 1
        self._heights.append(0)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            height = 1 + self._heights.pop()
        self._heights[-1] = max(self._heights[-1], height)
        if anchor is not None:
            self._anchored[id(node)] = (self._values - before, height)
        return node


def parse_yaml(content: bytes) -> Any:
    """The YAML document in ``content``, safely and within the bounds above; yaml.YAMLError otherwise."""
    if len(content) > MAX_YAML_BYTES:
        raise yaml.YAMLError(f"{len(content)} bytes, more than the {MAX_YAML_BYTES} a mapping file may hold")
    loader = _BoundedLoader(content)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml(path: Path, display: str) -> tuple[bytes, Any]:
    try:
        content = read_regular_file(path, display, MAX_YAML_BYTES)
    except ValueError as exc:
        raise ConfigError(str(exc).replace(f"cannot read {display}:", f"{display}: cannot read:", 1)) from None
    try:
        return content, parse_yaml(content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{display}: invalid YAML{where}: {problem}") from None


def validate_file(model: type[BaseModel], data: Any, display: str) -> Any:
    """``model.model_validate(data)``, with every error turned into ``file: path: message`` lines."""
    if not isinstance(data, dict):
        raise ConfigError(f"{display}: expected a mapping of keys at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"{display}: {line}" for line in describe_errors(exc.errors())]
        raise ConfigError("\n".join(lines)) from None


def load_mapping(path: str | Path) -> Mapping:
    """Load and fully check a mapping file; raises ConfigError naming the file and the path in it."""
    path = Path(path)
    display = display_path(path)
    content, data = read_yaml(path, display)
    # Checked on the raw data first, so a target field's typo is reported beside the file's other errors.
    targets = target_field_problems(data)
    try:
        config: MappingConfig = validate_file(MappingConfig, data, display)
    except ConfigError as exc:
        if not targets:
            raise
        raise ConfigError("\n".join([str(exc), *(f"{display}: {p}" for p in targets)])) from None

    problems: list[str] = []
    tables: dict[str, LookupTable] = {}
    for name, spec in config.lookups.items():
        try:
            # Messages name the path as written below the mapping's folder; the file read is the resolved one.
            table_path = confined(path.parent, spec.path)
            shown = os.path.normpath(Path(display_path(path.parent)) / spec.path)
            tables[name] = LookupTable.load(name, table_path, shown, spec.key, spec.value)
        except ValueError as exc:
            problems.append(f"lookups.{name}: {exc}")
    problems += targets
    problems += _cross_checks(config)
    problems += _mapping_references(config, path)
    if problems:
        raise ConfigError("\n".join(f"{display}: {p}" for p in problems))

    digest = hashlib.sha256(content)
    for name in sorted(tables):
        digest.update(b"\0" + name.encode() + b"\0" + tables[name].content)
    return Mapping(path=path, display=display, config=config, tables=tables, version=digest.hexdigest()[:12])


def _cross_checks(config: MappingConfig) -> list[str]:
    """What one field cannot see alone: table and model names, two fields writing one place, lists nobody fills."""
    problems: list[str] = []
    for i, rule in enumerate(config.fields):
        chained = isinstance(rule.transform, list)
        for k, ref in enumerate(rule.transforms):
            where = f"fields[{i}].transform[{k}]" if chained else f"fields[{i}].transform"
            for table in sorted(ref.params.tables_used() - set(config.lookups)):
                hint = did_you_mean(table, config.lookups) or " (no lookups: declared)"
                problems.append(f"{where}: unknown lookup table {table!r}{hint}")
    if config.model is not None:
        models = _source_models()
        if models is not None and config.model not in models:
            problems.append(f"model: unknown model {config.model!r}{did_you_mean(config.model, models)}")
    if config.money is not None:
        from erpsync.order_money import computations

        known = computations()
        if config.model is None:
            problems.append(f"money: needs model: (the source's money rules are per model; known: {', '.join(known)})")
        elif config.model not in known:
            problems.append(f"money: model {config.model!r} has no money rules{did_you_mean(config.model, known)}")

    first_at: dict[tuple[str, ...], int] = {}
    for i, rule in enumerate(config.fields):
        shape = rule.target_field.shape
        if shape in first_at and rule.when is not None and config.fields[first_at[shape]].when is not None:
            continue  # alternatives: each rule writes the target under its own condition
        if shape in first_at:
            problems.append(
                f"fields[{i}].target_field: duplicate target {rule.target_field.text!r} (also fields[{first_at[shape]}])"
            )
            continue
        for other, j in first_at.items():
            shorter, longer = sorted((shape, other), key=len)
            if longer[: len(shorter)] == shorter:
                problems.append(
                    f"fields[{i}].target_field: {rule.target_field.text!r} overlaps fields[{j}].target_field"
                    " (one is inside the other)"
                )
                break
        first_at[shape] = i

    filled = {r.target_field.list_prefix() for r in config.fields if r.source_field and r.target_field.iterations}
    for i, rule in enumerate(config.fields):
        if rule.kind == "value" and rule.target_field.iterations:
            if rule.target_field.list_prefix() not in filled:
                problems.append(
                    f"fields[{i}].target_field: no source_field fills the list of {rule.target_field.text!r},"
                    " so a constant has no elements to go to"
                )
    return problems


def _mapping_references(config: MappingConfig, path: Path) -> list[str]:
    """Mappings a transform names (erp_lookup's create:) must be other mapping files in the same folder."""
    own = path.name.removesuffix(".yaml")
    names: dict[str, str] | None = None
    problems: list[str] = []
    for i, rule in enumerate(config.fields):
        for k, ref in enumerate(rule.transforms):
            for name in sorted(ref.params.mappings_used()):
                where = f"fields[{i}].transform[{k}]" if isinstance(rule.transform, list) else f"fields[{i}].transform"
                if names is None:
                    names = {p.name.removesuffix(".yaml"): p.name for p in discover_mappings(path.parent)}
                if name == own:
                    problems.append(f"{where}: a mapping cannot create its own records through itself ({name!r})")
                elif name not in names:
                    hint = did_you_mean(name, set(names) - {own}, show_all=False)
                    problems.append(f"{where}: unknown mapping {name!r}{hint} (a file beside this one, without .yaml)")
    return problems


def _source_models() -> dict | None:
    """erpsync.sources.MODELS, or None while no source package defines it (then the name is not checked)."""
    try:
        from erpsync.systems import MODELS
    except ImportError:
        return None
    return MODELS


def is_mapping_file(path: Path) -> bool:
    return _is_mapping_name(path.name)


def _is_mapping_name(name: str) -> bool:
    return name.endswith(".yaml") and not name.endswith((TEST_SUFFIX, _LEGACY_CASES_SUFFIX))


def discover_mappings(directory: str | Path) -> list[Path]:
    """The mapping files in a folder: ``*.yaml`` except the ``*_test.yaml`` case files beside them."""
    return sorted(p for p in Path(directory).glob("*.yaml") if is_mapping_file(p))


# Loaded mappings by file, valid while the file and its tables keep their size and modification time:
# a retry after an edit sees the edit, and an unchanged folder is not re-parsed for every event.
_LOADED: dict[Path, tuple[tuple, Mapping]] = {}
_LOADED_LOCK = threading.Lock()


def _stamp(path: Path, tables: list[Path]) -> tuple:
    stamps = []
    for p in (path, *tables):
        try:
            st = p.stat()
        except OSError:
            return ()
        stamps.append((st.st_mtime_ns, st.st_size))
    return tuple(stamps)


def load_mapping_cached(path: Path) -> Mapping:
    """``load_mapping``, reusing the last result while neither the file nor its tables changed."""
    key = path.resolve()
    with _LOADED_LOCK:
        cached = _LOADED.get(key)
    if cached is not None:
        stamp, mapping = cached
        if stamp and stamp == _stamp(key, [t.path for t in mapping.tables.values()]):
            return mapping
    mapping = load_mapping(path)
    with _LOADED_LOCK:
        _LOADED[key] = (_stamp(key, [t.path for t in mapping.tables.values()]), mapping)
    return mapping


# find_mapping()'s answers by (folder, source, topic): the stamps of every mapping file of the folder and of the
# tables the answer uses, taken when it was found; those tables' paths; and the answer.
_FOUND: dict[tuple[str, str, str], tuple[tuple, tuple[str, ...], Mapping]] = {}


def _folder_stamp(folder: str, tables: tuple[str, ...]) -> tuple:
    """(name, mtime, size) of each mapping file in ``folder`` and of each table: equal stamps, equal answers."""
    try:
        with os.scandir(folder) as entries:
            files = sorted((entry.name, entry.stat().st_mtime_ns, entry.stat().st_size) for entry in entries
                           if _is_mapping_name(entry.name))
        return (*files, *((os.stat(t).st_mtime_ns, os.stat(t).st_size) for t in tables))
    except OSError:
        return ()  # never equal to a stamp taken when every file was there


def find_mapping(mappings_dir: str | Path, source: str, topic: str) -> Mapping:
    """The one mapping in the folder that handles ``source``/``topic``; ConfigError if none, several, or a file
    that declares this topic is broken. A broken file that declares other topics does not stop this one: a
    typo in the refund mapping must not dead-letter every order.

    Runs for every event, so an answer is reused while no mapping file of the folder and no table they use has
    changed size or modification time (one ``scandir`` and a ``stat`` each); any change, an added or removed
    file included, and the folder is read again. Errors are never reused.
    """
    key = (os.path.abspath(mappings_dir), source, topic)
    cached = _FOUND.get(key)
    if cached is not None and cached[0] == _folder_stamp(key[0], cached[1]):
        return cached[2]
    # The files are stamped before they are read: one changed meanwhile gives a stamp that will not match.
    files = _folder_stamp(key[0], ())
    mapping = _find_mapping(mappings_dir, source, topic)
    if files:  # the answer depends on every mapping file (which handles what) and on this mapping's tables
        tables = tuple(os.path.abspath(table.path) for table in mapping.tables.values())
        with_tables = _folder_stamp(key[0], tables)
        if with_tables[:len(files)] == files:
            _FOUND[key] = (with_tables, tables, mapping)
    return mapping


def _find_mapping(mappings_dir: str | Path, source: str, topic: str) -> Mapping:
    loaded: list[Mapping] = []
    broken: list[str] = []
    for path in discover_mappings(mappings_dir):
        try:
            loaded.append(load_mapping_cached(path))
        except ConfigError as exc:
            declared = _declared_topics(path)
            if not declared or (source, topic) in declared:  # unreadable, or the file meant for this topic
                broken.append(str(exc))
    if broken:
        raise ConfigError("\n".join(broken))
    handling = [m for m in loaded if m.handles(source, topic)]
    if not handling:
        raise ConfigError(f"{display_path(Path(mappings_dir))}: no mapping handles {source} topic {topic!r}")
    if len(handling) > 1:
        names = ", ".join(m.display for m in handling)
        raise ConfigError(f"{source} topic {topic!r} is handled by more than one mapping: {names}")
    return handling[0]


# handled_topics() per folder: the stamps of its mapping files when the answer was computed, and the answer.
_TOPICS: dict[Path, tuple[tuple, frozenset[tuple[str, str]]]] = {}
_REPORTED_BROKEN: set[tuple[Path, tuple]] = set()  # (file, stamp) already logged, so each breakage logs once


def handled_topics(mappings_dir: str | Path) -> set[tuple[str, str]]:
    """Every ``(source, topic)`` some mapping file in the folder handles; never raises.

    For the receiver, which answers 404 to a delivery no mapping wants. Recomputed only when a mapping file
    is added, removed or changed (size and modification time), like ``find_mapping``'s cache.

    A broken file does not take the others down: every valid file counts, and a file that fails to load
    still counts for the ``source`` and ``topic``/``topics`` its YAML declares, if it declares them plainly.
    Its deliveries are then stored, and their runs fail with the file's ConfigError until it is fixed and the
    runs retried, rather than being answered 404 (which a platform counts as a failed delivery and, repeated,
    may answer by removing the subscription). The breakage is logged once per version of the file.
    """
    directory = Path(mappings_dir)
    try:
        key = directory.resolve()
        files = discover_mappings(directory)
    except OSError:
        return set()
    stamp = tuple((p.name, _stamp(p, [])) for p in files)
    with _LOADED_LOCK:
        cached = _TOPICS.get(key)
    if cached is not None and cached[0] == stamp:
        return set(cached[1])
    topics: set[tuple[str, str]] = set()
    for path, (_, file_stamp) in zip(files, stamp):
        try:
            mapping = load_mapping_cached(path)
        except ConfigError as exc:
            topics |= _declared_topics(path)
            with _LOADED_LOCK:
                first_time = (path, file_stamp) not in _REPORTED_BROKEN
                _REPORTED_BROKEN.add((path, file_stamp))
            if first_time:
                log.warning("mapping file does not load; its declared topics are still accepted: %s", exc)
            continue
        topics |= {(mapping.source, topic) for topic in mapping.topics}
    with _LOADED_LOCK:
        _TOPICS[key] = (stamp, frozenset(topics))
    return topics


def _declared_topics(path: Path) -> set[tuple[str, str]]:
    """The (source, topic) pairs a broken file's YAML states as plain text, if it can be read that far."""
    try:
        data = parse_yaml(read_regular_file(path, str(path), MAX_YAML_BYTES))
    except (ValueError, yaml.YAMLError):
        return set()
    if not isinstance(data, dict):
        return set()
    source = data.get("from", data.get("source"))  # `source:` is the older name of `from:`
    if not isinstance(source, str):
        return set()
    raw = data.get("topics", [data.get("topic")])
    if not isinstance(raw, list):
        return set()
    return {(source, t) for t in raw if isinstance(t, str) and t}
