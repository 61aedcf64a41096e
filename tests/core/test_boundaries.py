"""The core stays Qt-free: nothing under model_core imports Qt, pyqtgraph or qtawesome."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "model_core"
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qtawesome", "mdn_gui")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_core_module_imports_qt():
    offenders = {str(p.relative_to(CORE)): sorted(_imports(p) & set(FORBIDDEN))
                 for p in CORE.rglob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}


def test_importing_the_whole_core_loads_no_qt():
    modules = sorted(".".join(p.relative_to(CORE.parent).with_suffix("").parts)
                     for p in CORE.rglob("*.py") if p.name != "__main__.py")
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=CORE.parent, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
