"""No external system is named outside its own package: the core reaches systems only through the registry.

"Named" means in code, not in prose: an import of ``erpsync.systems.<name>``, an identifier that contains a
system's name (``NetSuiteClient``, ``shopify_signature``), or a string that is a system's name or a model of it
(``"shopify"``, ``"shopify.order"``), which would route by name. Docstrings, comments and messages may still say
"NetSuite" when they describe it. ``erpsync/systems/__init__.py`` is the one place that lists the systems (and
a migration may name the system existing rows were written to).
"""

from __future__ import annotations

import ast
from pathlib import Path

import erpsync
from erpsync.systems import SYSTEMS

CORE = Path(erpsync.__file__).parent
NAMES = sorted(SYSTEMS)


def _owner(path: Path) -> str | None:
    """The system whose package holds ``path``, if any."""
    parts = path.relative_to(CORE).parts
    return parts[1] if len(parts) > 2 and parts[0] == "systems" else None


def _mentions(text: str) -> set[str]:
    lowered = text.lower()
    return {name for name in NAMES if name in lowered}


def _code_names(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [(node.lineno, f"import {m}") for m in modules if m.startswith("erpsync.systems.")]
            found += [(node.lineno, f"import {a.name}") for a in node.names if _mentions(a.name)]
        elif isinstance(node, ast.Name) and _mentions(node.id):
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and _mentions(node.attr):
            found.append((node.lineno, node.attr))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _mentions(node.name):
            found.append((node.lineno, node.name))
        elif isinstance(node, ast.arg) and _mentions(node.arg):
            found.append((node.lineno, node.arg))
        elif isinstance(node, ast.keyword) and node.arg and _mentions(node.arg):
            found.append((node.lineno, node.arg))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
              and any(node.value == n or node.value.startswith(f"{n}.") or node.value.startswith(f"{n}-")
                      for n in NAMES)):
            found.append((node.lineno, repr(node.value)))
    return found


def test_no_system_is_named_outside_its_package():
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        # The registry lists the systems; a migration is history, and names the system its rows were written to.
        if path == CORE / "systems" / "__init__.py" or path.is_relative_to(CORE / "migrations"):
            continue
        owner = _owner(path)
        for line, name in _code_names(ast.parse(path.read_text())):
            others = _mentions(name) - {owner}
            if name.startswith("import erpsync.systems.") and owner is not None and f"systems.{owner}" in name:
                continue
            if others or name.startswith("import erpsync.systems."):
                offenders.append(f"{path.relative_to(CORE.parent)}:{line}: {name}")
    assert offenders == [], "\n".join(offenders)


def test_the_check_finds_a_system_named_in_code():
    tree = ast.parse('from erpsync.systems.netsuite.client import NetSuiteClient\nx = "shopify"\n')
    assert {name for _, name in _code_names(tree)} == {
        "import erpsync.systems.netsuite.client", "import NetSuiteClient", "'shopify'"}


def test_the_product_never_imports_the_development_package():
    """The stand-ins, the stack and the demo (erpsync_dev/) are for development; a deployment may not ship them."""
    repo = CORE.parent
    offenders = []
    for package in ("erpsync", "orchestration", "flows", "tasks", "blocks", "workers"):
        for path in sorted((repo / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                offenders += [f"{path.relative_to(repo)}:{node.lineno}: {n}" for n in names
                              if n == "erpsync_dev" or n.startswith("erpsync_dev.")]
    assert offenders == [], "\n".join(offenders)
