"""The house rules of docs/architecture.md, checked on the source: layers and cycles
(import-linter), one place for errors, docstrings on the public API, module size, and
the public face."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import nbops

SRC = Path(nbops.__file__).resolve().parent
# modules allowed over 500 lines, each for a reason given in docs/architecture.md
LONG_MODULES: dict[str, str] = {}
# the service runtime is copied into exports and imports nothing from nbops, so its
# own errors live with it
OWN_ERRORS = {"serving/runtime"}


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "labextension" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a dev dependency: pip install -e .[dev]"
    res = subprocess.run([exe], capture_output=True, text=True, cwd=SRC.parents[1])
    assert res.returncode == 0, res.stdout[-4000:]


def test_every_error_class_lives_in_errors_module():
    stray = []
    for path in _modules():
        rel = _rel(path)
        if rel == "_errors.py" or any(rel.startswith(p) for p in OWN_ERRORS):
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Warning")):
                stray.append(f"{rel}:{node.lineno} {node.name}")
    assert not stray, "move these to nbops/_errors.py and export them: " + ", ".join(stray)


def test_every_error_class_is_exported():
    from nbops import _errors

    for name, obj in vars(_errors).items():
        if (
            isinstance(obj, type)
            and issubclass(obj, (Exception, Warning))
            and obj.__module__ == _errors.__name__
        ):
            assert getattr(nbops, name) is obj, f"nbops.{name} is not exported"
            assert name in nbops.__all__


def test_every_public_function_has_a_docstring():
    missing = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in tree.body:
            nodes = [node]
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                nodes += [
                    n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                ]
            for n in nodes:
                if (
                    isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    and not n.name.startswith("_")
                    and ast.get_docstring(n) is None
                ):
                    missing.append(f"{_rel(path)}:{n.lineno} {n.name}")
    assert not missing, f"{len(missing)} public functions lack a docstring: {missing[:40]}"


def test_no_module_is_over_500_lines_without_a_reason():
    long = {_rel(p): n for p in _modules() if (n := len(p.read_text().splitlines())) > 500}
    unexplained = {k: v for k, v in long.items() if k not in LONG_MODULES}
    assert not unexplained, f"split these by job (or say why in architecture.md): {unexplained}"


def test_every_public_name_resolves_and_is_documented():
    for name in nbops.__all__:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            obj = getattr(nbops, name)
        if callable(obj) and not name.startswith("__"):
            assert (getattr(obj, "__doc__", None) or "").strip(), f"nbops.{name} has no docstring"


def test_public_functions_have_one_name():
    seen: dict[int, str] = {}
    twins = []
    for name in nbops.__all__:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            obj = getattr(nbops, name)
        if not callable(obj) or isinstance(obj, type(nbops)):
            continue
        if id(obj) in seen:
            twins.append((seen[id(obj)], name))
        seen[id(obj)] = name
    assert not twins, f"one name per function: {twins}"


@pytest.mark.parametrize("old", sorted(getattr(nbops, "_DEPRECATED", {})))
def test_old_names_still_work_with_a_deprecation_warning(old):
    with pytest.warns(DeprecationWarning, match=old):
        obj = getattr(nbops, old)
    assert callable(obj)
