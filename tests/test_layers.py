"""The house rules, checked on the source: layers, no cycles, small modules, no privates.

The layer contract lives in pyproject.toml ([tool.importlinter]); ``lint-imports`` checks
it here, so the test command fails on an upward import. The proof that it would: the same
check on a copy of the package with one upward import added must break.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dolmen"
MAX_LINES = 500


def lint_imports(cwd: Path, package_parent: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(package_parent))
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command;"
         " sys.exit(lint_imports_command())", "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def test_the_import_contracts_are_kept():
    done = lint_imports(ROOT, ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" not in done.stdout.lower().replace("0 broken", "")


def test_an_upward_import_breaks_the_layer_contract(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "dolmen", ignore=shutil.ignore_patterns("_native*", "*.so"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    codec = copy / "dolmen" / "runtime" / "codec.py"
    codec.write_text(codec.read_text() + "\nfrom dolmen.client import Client  # upward\n")
    done = lint_imports(tmp_path, copy)
    assert done.returncode != 0
    assert "dolmen.runtime is not allowed to import dolmen.client" in done.stdout
    assert "dolmen.runtime.codec -> dolmen.client" in done.stdout


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "_native" not in p.parts)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_the_size_limit(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: two concepts?"


def private_uses(path: Path) -> list[str]:
    """Private names of other modules used here: ``from dolmen.x import _name``, and
    ``something._name`` where ``_name`` is not one this module defines itself (on
    ``self``, as a function, a class attribute or a module global). So a module may use
    its own privates on any object (a handle reading its client's), never another's."""
    tree = ast.parse(path.read_text())
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            own.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.arg):
            own.add(node.arg)
    outside = {"os", "sys"}  # os._exit and the like are those modules' public API
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dolmen"):
            found += [
                f"line {node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if _private(alias.name)
            ]
        elif (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and node.attr not in own
            and not (isinstance(node.value, ast.Name) and node.value.id in outside)
        ):
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_module_uses_another_modules_private_names():
    offenders = {str(p.relative_to(ROOT)): uses for p in modules() if (uses := private_uses(p))}
    assert offenders == {}
