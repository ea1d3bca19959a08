"""The core package must import without Prefect, and know nothing of it: Prefect's REST API, state names and
events live in orchestration/; flows/, tasks/, blocks/, workers/ and orchestration/ are the only adapters, and the
core reaches them through entry points (erpsync/run_control.py, the command line's plugin groups)."""

import re
import subprocess
import sys
from pathlib import Path

import erpsync

CORE = Path(erpsync.__file__).parent


def test_no_core_module_imports_prefect():
    offenders = [str(p.relative_to(CORE.parent)) for p in CORE.rglob("*.py")
                 if any(line.strip().startswith(("import prefect", "from prefect"))
                        for line in p.read_text().splitlines())]
    assert offenders == []


# What the receiver process loads of the orchestration side (its run control, the secrets hook, the commands it
# registers): plain HTTP, so a receiver never imports Prefect.
RECEIVER_SIDE = ["orchestration", "orchestration.api", "orchestration.states", "orchestration.runs",
                 "orchestration.webhook_secrets", "orchestration.events", "orchestration.commands"]


def test_core_modules_load_with_prefect_unimportable():
    modules = sorted(
        ".".join(p.relative_to(CORE.parent).with_suffix("").parts)
        # migrations/env.py is a script Alembic runs inside its own context, not a module to import
        for p in CORE.rglob("*.py") if p.name != "__main__.py" and p.relative_to(CORE).parts != ("migrations", "env.py")
    )
    assert_load_without_prefect(modules)


def test_the_receivers_side_of_orchestration_loads_with_prefect_unimportable():
    assert_load_without_prefect(RECEIVER_SIDE)


def assert_load_without_prefect(modules: list[str]) -> None:
    code = (
        "import sys, importlib\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'prefect' or name.startswith('prefect.'):\n"
        "            raise ImportError('prefect is not allowed in the core: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# The adapter packages the core must not import: it finds them through entry points.
ADAPTERS = ("orchestration", "workers", "blocks", "flows", "tasks")
# Prefect's REST paths and event vocabulary: what only orchestration/ may name.
PREFECT_WORDS = ("/deployments/", "deployments/name/", "/flow_runs/", "flow_runs/", "/automations/", "automations/",
                 "set_state", "create_flow_run", "prefect.resource", "prefect.flow-run", "AwaitingRetry")
# Prefect's state types as its API writes them, quoted in code ("CRASHED"): the core uses RunState.
PREFECT_STATE = re.compile(
    r"""["'](?:SCHEDULED|PENDING|RUNNING|COMPLETED|FAILED|CRASHED|CANCELLED|CANCELLING|PAUSED)["']""")


def core_sources():
    return [(str(p.relative_to(CORE.parent)), p.read_text()) for p in CORE.rglob("*.py")]


def test_no_core_module_imports_an_adapter_package():
    pattern = re.compile(rf"^\s*(?:from|import)\s+(?:{'|'.join(ADAPTERS)})(?:\.|\s|$)", re.MULTILINE)
    offenders = [name for name, text in core_sources() if pattern.search(text)]
    assert offenders == []


def test_no_core_module_names_prefects_rest_api_states_or_events():
    sources = core_sources()
    offenders = sorted({f"{name}: {word}" for name, text in sources for word in PREFECT_WORDS if word in text}
                       | {f"{name}: {m.group()}" for name, text in sources for m in PREFECT_STATE.finditer(text)})
    assert offenders == []
