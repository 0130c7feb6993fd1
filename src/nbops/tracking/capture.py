"""What a tracked cell is made of: AST analysis of its source, the namespace diff,
and the environment and git state it ran in.

Everything here is cheap enough to run on every cell: the environment is cached
per process (only newly imported packages are looked up), git is read from the
``.git`` folder directly and its dirty flag is cached by the index's mtime.
"""

from __future__ import annotations

import ast
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# -- cell source analysis -------------------------------------------------------------

MAX_LITERAL_ITEMS = 50
#: a literal longer than this (characters of its repr) is recorded as digest + length
MAX_LITERAL_CHARS = 1000


@dataclass
class CellAnalysis:
    """Names a cell binds to literals (params), binds otherwise, and reads."""

    literals: dict[str, Any] = field(default_factory=dict)
    assigned: set[str] = field(default_factory=set)
    loop_vars: set[str] = field(default_factory=set)
    loaded: set[str] = field(default_factory=set)


def long_literal(value: Any, text: str) -> dict[str, Any]:
    """How a literal too long to keep whole is recorded: its sha256 and length."""
    import hashlib

    return {
        "sha256": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
        "length": len(value) if isinstance(value, (str, list, dict)) else len(text),
        "type": type(value).__name__,
    }


def _small_literal(node: ast.AST) -> tuple[bool, Any]:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    if isinstance(value, (set, bytes, complex)):
        return False, None
    value = list(value) if isinstance(value, tuple) else value
    if isinstance(value, str) and len(value) > MAX_LITERAL_CHARS:
        return True, long_literal(value, value)
    if isinstance(value, (list, dict)):
        text = repr(value)
        if len(value) > MAX_LITERAL_ITEMS or len(text) > MAX_LITERAL_CHARS:
            return True, long_literal(value, text)
    return True, value


def _names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _names(elt)]
    if isinstance(target, ast.Starred):
        return _names(target.value)
    return []


def analyse_cell(source: str) -> CellAnalysis:
    """Parse a cell (already transformed to plain Python). A syntax error gives an
    empty analysis: the cell itself will raise it when run."""
    result = CellAnalysis()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return result

    for node in tree.body:  # top-level literal assignments are the cell's params
        targets: list[ast.AST] = []
        value = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name):
                ok, literal = _small_literal(value)
                if ok:
                    result.literals[target.id] = literal
            elif (
                isinstance(target, (ast.Tuple, ast.List))
                and isinstance(value, (ast.Tuple, ast.List))
                and len(target.elts) == len(value.elts)
            ):
                for t, v in zip(target.elts, value.elts, strict=True):
                    if isinstance(t, ast.Name):
                        ok, literal = _small_literal(v)
                        if ok:
                            result.literals[t.id] = literal

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            result.assigned.add(node.name)
        elif isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                result.assigned.add(node.id)
            elif isinstance(node.ctx, ast.Load):
                result.loaded.add(node.id)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            result.loop_vars.update(_names(node.target))
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    result.loop_vars.update(_names(item.optional_vars))
        elif isinstance(node, ast.comprehension):
            result.loop_vars.update(_names(node.target))
    # a literal that is later rebound (x = 1; x = f(x)) is not a param
    rebound = _rebound_after_literal(tree, set(result.literals))
    for name in rebound:
        result.literals.pop(name, None)
    return result


def _rebound_after_literal(tree: ast.Module, names: set[str]) -> set[str]:
    counts: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id in names:
            counts[node.id] = counts.get(node.id, 0) + 1
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            counts[node.target.id] = counts.get(node.target.id, 0) + 1
    return {n for n, c in counts.items() if c > 1}


# -- values --------------------------------------------------------------------------


def is_data(value: Any) -> bool:
    """A pandas DataFrame / Series or a numpy array, checked without importing them."""
    module = type(value).__module__
    if module.startswith("pandas"):
        return type(value).__name__ in ("DataFrame", "Series")
    return module == "numpy" and type(value).__name__ == "ndarray"


def namespace_snapshot(ns: dict[str, Any]) -> dict[str, int]:
    """id() of every user-visible value, to see what a cell rebinds."""
    return {k: id(v) for k, v in ns.items() if not k.startswith("_")}


def changed_names(before: dict[str, int], ns: dict[str, Any]) -> set[str]:
    """User-visible names bound to another object than in the snapshot ``before``."""
    return {k for k, v in ns.items() if not k.startswith("_") and before.get(k) != id(v)}


# -- files ---------------------------------------------------------------------------


def glob_mtimes(pattern: str | None, root: Path | None = None) -> dict[str, float]:
    """path -> mtime (ns) of the files matching the comma-separated globs."""
    if not pattern:
        return {}
    root = root or Path.cwd()
    out: dict[str, float] = {}
    for pat in pattern.split(","):
        pat = pat.strip()
        if not pat:
            continue
        matches = (
            Path(pat).parent.glob(Path(pat).name) if Path(pat).is_absolute() else root.glob(pat)
        )
        for path in matches:
            try:
                if path.is_file():
                    out[str(path)] = path.stat().st_mtime_ns
            except OSError:
                continue
    return out


def new_or_modified(before: dict[str, float], after: dict[str, float]) -> list[str]:
    """Paths in ``after`` that are new or have another mtime than ``before``."""
    return sorted(p for p, m in after.items() if before.get(p) != m)


# -- environment ---------------------------------------------------------------------

_versions: dict[str, str | None] = {}
_stdlib = set(getattr(sys, "stdlib_module_names", ()))


def _version_of(name: str, module: Any) -> str | None:
    with warnings.catch_warnings():  # some packages deprecate __version__ itself
        warnings.simplefilter("ignore")
        version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        try:
            return dist_version(name)
        except PackageNotFoundError:
            return None
    except Exception:  # noqa: BLE001 - a broken dist must not break tracking
        return None


_env_cache: tuple[int, dict[str, Any]] | None = None


def env_info() -> dict[str, Any]:
    """Python, platform and versions of imported top-level packages. Cached: looked up
    again only when modules were imported since the last call, and then only the new
    packages; no subprocess."""
    global _env_cache
    if _env_cache is not None and _env_cache[0] == len(sys.modules):
        return {**_env_cache[1], "packages": dict(_env_cache[1]["packages"])}
    for name, module in list(sys.modules.items()):
        if "." in name or name in _versions or name.startswith("_") or name in _stdlib:
            continue
        _versions[name] = _version_of(name, module) if module is not None else None
    info = {
        "python": platform.python_version(),
        "platform": _platform(),
        "packages": {k: v for k, v in sorted(_versions.items()) if v},
    }
    _env_cache = (len(sys.modules), info)
    return {**info, "packages": dict(info["packages"])}


def _platform() -> str:
    global _platform_name
    if _platform_name is None:
        _platform_name = platform.platform(terse=True)
    return _platform_name


_platform_name: str | None = None


# -- git -----------------------------------------------------------------------------

_git_cache: dict[str, tuple[tuple, dict[str, Any]]] = {}


_git_dirs: dict[Path, tuple[float, Path | None]] = {}


def _find_git_dir(start: Path) -> Path | None:
    cached = _git_dirs.get(start)
    if cached and time.monotonic() - cached[0] < 10:
        return cached[1]
    found = _search_git_dir(start)
    _git_dirs[start] = (time.monotonic(), found)
    return found


def _search_git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():  # worktree / submodule: "gitdir: path"
            text = candidate.read_text().strip()
            if text.startswith("gitdir:"):
                return (folder / text[7:].strip()).resolve()
    return None


def _read_head(git_dir: Path) -> tuple[str | None, str | None]:
    head = (git_dir / "HEAD").read_text().strip()
    if not head.startswith("ref:"):
        return head, None
    ref = head[4:].strip()
    branch = ref.removeprefix("refs/heads/")
    common = git_dir
    if (git_dir / "commondir").is_file():
        common = (git_dir / (git_dir / "commondir").read_text().strip()).resolve()
    for base in (git_dir, common):
        ref_file = base / ref
        if ref_file.is_file():
            return ref_file.read_text().strip(), branch
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0], branch
    return None, branch  # a branch with no commit yet


def git_info(cwd: Path | None = None) -> dict[str, Any]:
    """Commit, branch and dirty flag of the repository around ``cwd`` ({} outside git).

    The commit and branch are read from files; the dirty flag needs `git status`,
    which runs only when HEAD or the index changed or 30 s passed."""
    cwd = (cwd or Path.cwd()).resolve()
    recent = _git_recent.get(str(cwd))
    if recent and time.monotonic() - recent[0] < GIT_RECHECK_SECONDS:
        return dict(recent[1])
    info = _git_info(cwd)
    _git_recent[str(cwd)] = (time.monotonic(), info)
    return dict(info)


#: git state is read again at most this often per folder (cells run back to back)
GIT_RECHECK_SECONDS = 1.0
_git_recent: dict[str, tuple[float, dict[str, Any]]] = {}


def _git_info(cwd: Path) -> dict[str, Any]:
    try:
        git_dir = _find_git_dir(cwd)
        if git_dir is None:
            return {}
        commit, branch = _read_head(git_dir)
        index = git_dir / "index"
        index_mtime = index.stat().st_mtime_ns if index.exists() else 0
    except OSError:
        return {}
    key = (commit, branch, index_mtime, int(time.monotonic() // 30))
    cached = _git_cache.get(str(git_dir))
    if cached and cached[0] == key:
        return dict(cached[1])
    info: dict[str, Any] = {"git_commit": commit, "git_branch": branch, "git_dirty": None}
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=git_dir.parent,
            capture_output=True,
            text=True,
            timeout=5,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
        if out.returncode == 0:
            info["git_dirty"] = bool(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    _git_cache[str(git_dir)] = (key, info)
    return dict(info)


def notebook_path(shell: Any = None) -> str | None:
    """The notebook file of the running kernel, when the front end tells us."""
    ns = getattr(shell, "user_ns", {}) if shell is not None else {}
    for key in ("__vsc_ipynb_file__", "__session__"):
        value = ns.get(key)
        if isinstance(value, str) and value.endswith(".ipynb"):
            return value
    value = os.environ.get("JPY_SESSION_NAME")
    if value and value.endswith(".ipynb"):
        return value
    return None
