"""The core package must import without Prefect: flows/, tasks/ and blocks/ are the only adapters."""

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


def test_core_modules_load_with_prefect_unimportable():
    modules = sorted(
        ".".join(p.relative_to(CORE.parent).with_suffix("").parts)
        for p in CORE.rglob("*.py") if p.name != "__main__.py"
    )
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
