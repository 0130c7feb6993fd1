"""Results by provenance: what scoring functions return while a tracked cell runs.

While a ``%%track`` cell runs, nbops wraps scikit-learn's scoring functions and
records the value of every call the user's code makes, whether or not the result is
bound to a name: inside f-strings, ``print``, helper functions the notebook defines.

What is wrapped (only modules the process has already imported, or imports during
the cell -- nbops never imports scikit-learn itself):

* every function of ``sklearn.metrics`` whose name ends in ``_score``, ``_error``,
  ``_loss`` or ``_corrcoef``, ``d2_*`` and ``classification_report``;
* ``cross_val_score`` and ``cross_validate`` of ``sklearn.model_selection``;
* ``score`` of classifiers, regressors, pipelines and searches;
* ``BaseEstimator._validate_params``, which scikit-learn calls at the start of every
  ``fit``: that is how nbops learns which estimators the cell fitted.

The wrappers are put on the modules, the classes and on names of the user's
namespace that hold an original function, and all of them are put back when the cell
ends. A call is recorded only when its caller is not scikit-learn itself, so the
scores a ``GridSearchCV`` computes inside ``fit`` or ``clf.score`` computes through
``accuracy_score`` are not counted twice. A wrapper that outlives the cell (the cell
ran ``from sklearn.metrics import f1_score``) only calls the original.
"""

from __future__ import annotations

import copy
import functools
import importlib.abc
import importlib.machinery
import os
import re
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import Any

_SCORING = re.compile(r"(_score|_error|_loss|_corrcoef)$|^d2_")
_CV = ("cross_val_score", "cross_validate")
_SCORE_CLASSES = (
    ("sklearn.base", "ClassifierMixin"),
    ("sklearn.base", "RegressorMixin"),
    ("sklearn.pipeline", "Pipeline"),
    ("sklearn.model_selection._search", "BaseSearchCV"),
)
WATCHED = ("sklearn.metrics", "sklearn.model_selection", "sklearn.base", "sklearn.pipeline")
MAX_RECORDS = 2000  # calls recorded per cell; more are counted, not kept

_active: Recorder | None = None
_lock = threading.Lock()
_wrappers: dict[int, Any] = {}  # id(original) -> wrapper, reused cell after cell
_library_dirs: tuple[str, ...] = ()


@dataclass
class Record:
    """One recorded call: ``kind`` is metric, report, cv, score or fit."""

    kind: str
    func: str
    value: Any
    data: str | None = None
    owner: str | None = None
    scoring: str | None = None


@dataclass
class Recorder:
    """Calls recorded during one cell, in order."""

    ns: dict[str, Any]
    records: list[Record] = field(default_factory=list)
    fitted: list[Any] = field(default_factory=list)
    dropped: int = 0

    def name_of(self, value: Any) -> str | None:
        """The user's name for a value, when the namespace holds it under one."""
        if value is None or isinstance(value, (int, float, str, bool)):
            return None
        for key, held in list(self.ns.items()):
            if held is value and not key.startswith("_"):
                return key
        return None


def _from_library(frame: Any) -> bool:
    filename = frame.f_code.co_filename if frame is not None else ""
    return filename.startswith(_library_dirs)


def _set_library_dirs() -> None:
    global _library_dirs
    dirs = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]  # nbops itself
    for name in ("sklearn", "joblib", "numpy", "scipy"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None):
            dirs.append(os.path.dirname(os.path.abspath(module.__file__)))
    _library_dirs = tuple(dirs)


def _wrap(fn: Any, kind: str) -> Any:
    cached = _wrappers.get(id(fn))
    if cached is not None:
        return cached

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        """Call the original; note the result when a tracked cell's code called it."""
        result = fn(*args, **kwargs)
        recorder = _active
        if recorder is not None and not _from_library(sys._getframe(1)):
            _note(recorder, kind, fn, args, kwargs, result)
        return result

    wrapper.__nbops_original__ = fn  # type: ignore[attr-defined]
    _wrappers[id(fn)] = wrapper
    return wrapper


def _wrap_fit_check(fn: Any) -> Any:
    """``_validate_params`` runs first thing in every ``fit``: frame 1 is scikit-learn's
    fit wrapper, frame 2 whoever called ``fit``."""
    cached = _wrappers.get(id(fn))
    if cached is not None:
        return cached

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        """Note the estimator when the cell's code called its ``fit``; then validate."""
        recorder = _active
        if recorder is not None:
            try:
                caller = sys._getframe(2)
            except ValueError:
                caller = None
            if (
                caller is not None
                and not _from_library(caller)
                and len(recorder.fitted) < MAX_RECORDS
                and not any(f is self for f in recorder.fitted)
            ):
                recorder.fitted.append(self)
        return fn(self, *args, **kwargs)

    wrapper.__nbops_original__ = fn  # type: ignore[attr-defined]
    _wrappers[id(fn)] = wrapper
    return wrapper


def _note(recorder: Recorder, kind: str, fn: Any, args: tuple, kwargs: dict, result: Any) -> None:
    if len(recorder.records) >= MAX_RECORDS:
        recorder.dropped += 1
        return
    try:
        name = fn.__name__
        if kind == "score":
            owner = recorder.name_of(args[0]) or type(args[0]).__name__
            data = args[1] if len(args) > 1 else kwargs.get("X")
            recorder.records.append(
                Record("score", name, result, recorder.name_of(data), owner=owner)
            )
            return
        if kind == "cv":
            data = args[2] if len(args) > 2 else kwargs.get("y", kwargs.get("X"))
            scoring = kwargs.get("scoring")
            recorder.records.append(
                Record(
                    "cv",
                    name,
                    result,
                    recorder.name_of(data),
                    scoring=scoring if isinstance(scoring, str) else None,
                )
            )
            return
        y_true = (
            args[0]
            if args
            else next((kwargs[k] for k in ("y_true", "labels_true", "X") if k in kwargs), None)
        )
        if kind == "report" and not isinstance(result, dict):
            report = fn(*args, **{**kwargs, "output_dict": True})
        else:
            report = result
        recorder.records.append(Record(kind, name, report, recorder.name_of(y_true)))
    except Exception:  # noqa: BLE001 - recording must never change what the call returns
        recorder.dropped += 1


# -- patching -------------------------------------------------------------------------


class Patches:
    """Wrappers put in place for one cell; :meth:`restore` puts the originals back."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any, bool]] = []  # (owner, name, old, is_dict)

    def set_attr(self, owner: Any, name: str, new: Any) -> None:
        """Set ``owner.name`` to ``new``, remembering the old value."""
        old = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name)
        if old is None or old is new:
            return
        self._undo.append((owner, name, old, False))
        setattr(owner, name, new)

    def set_item(self, ns: dict, name: str, new: Any) -> None:
        """Set ``ns[name]`` to ``new``, remembering the old value."""
        self._undo.append((ns, name, ns[name], True))
        ns[name] = new

    def restore(self) -> None:
        """Put every original back (a namespace name only where the wrapper still is)."""
        for owner, name, old, is_dict in reversed(self._undo):
            try:
                if is_dict:
                    # only where the cell left our wrapper in place
                    if owner.get(name) is _wrappers.get(id(old)):
                        owner[name] = old
                else:
                    setattr(owner, name, old)
            except Exception:  # noqa: BLE001,S110 - a read-only owner keeps the wrapper
                pass
        self._undo.clear()


def _patch_module(patches: Patches, name: str, module: Any) -> None:
    if name == "sklearn.metrics":
        for attr in dir(module):
            fn = getattr(module, attr, None)
            if not callable(fn) or isinstance(fn, type) or attr.startswith("_"):
                continue
            if attr == "classification_report":
                patches.set_attr(module, attr, _wrap(fn, "report"))
            elif _SCORING.search(attr):
                patches.set_attr(module, attr, _wrap(fn, "metric"))
    elif name == "sklearn.model_selection":
        for attr in _CV:
            fn = getattr(module, attr, None)
            if fn is not None:
                patches.set_attr(module, attr, _wrap(fn, "cv"))
    for mod_name, cls_name in _SCORE_CLASSES:
        if mod_name == name or (mod_name.startswith(name + ".") and mod_name in sys.modules):
            cls = getattr(sys.modules.get(mod_name), cls_name, None)
            attr = cls.__dict__.get("score") if cls is not None else None
            if isinstance(attr, types.FunctionType):
                patches.set_attr(cls, "score", _wrap(attr, "score"))
            elif isinstance(getattr(attr, "fn", None), types.FunctionType):
                # Pipeline.score is an ``available_if`` descriptor around a function
                wrapped = copy.copy(attr)
                wrapped.fn = _wrap(attr.fn, "score")
                patches.set_attr(cls, "score", wrapped)
    if name == "sklearn.base":
        cls = getattr(module, "BaseEstimator", None)
        fn = cls.__dict__.get("_validate_params") if cls is not None else None
        if isinstance(fn, types.FunctionType):
            patches.set_attr(cls, "_validate_params", _wrap_fit_check(fn))


class _PostImport(importlib.abc.MetaPathFinder):
    """Patches a watched module right after the cell imports it."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        """The normal spec of a watched module, with a loader that patches it."""
        if fullname not in WATCHED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader, session = spec.loader, self.session

        class Loader(importlib.abc.Loader):
            """The module's own loader, then the patch."""

            def create_module(self, spec: Any) -> Any:
                """As the module's own loader does."""
                return loader.create_module(spec)

            def exec_module(self, module: Any) -> None:
                """Run the module, then wrap its scoring functions."""
                loader.exec_module(module)
                session.patch(fullname, module)

        spec.loader = Loader()
        return spec


class Session:
    """Recording for one cell: :func:`start` begins it, :meth:`stop` ends it."""

    def __init__(self, ns: dict[str, Any]) -> None:
        self.recorder = Recorder(ns)
        self.patches = Patches()
        self.finder = _PostImport(self)
        self.ns = ns

    def patch(self, name: str, module: Any) -> None:
        """Wrap the scoring callables of a watched module and the namespace names."""
        _set_library_dirs()
        try:
            _patch_module(self.patches, name, module)
            self._patch_namespace()
        except Exception:  # noqa: BLE001,S110 - a library we cannot patch is not recorded
            pass

    def _patch_namespace(self) -> None:
        originals = {id(getattr(w, "__nbops_original__", None)): w for w in _wrappers.values()}
        for key, value in list(self.ns.items()):
            wrapper = originals.get(id(value))
            if wrapper is not None and not key.startswith("_"):
                self.patches.set_item(self.ns, key, wrapper)

    def stop(self) -> Recorder:
        """Put every original back and return what was recorded."""
        global _active
        with _lock:
            if _active is self.recorder:
                _active = None
        try:
            sys.meta_path.remove(self.finder)
        except ValueError:
            pass
        self.patches.restore()
        # names the cell itself imported (``from sklearn.metrics import f1_score``)
        for key, value in list(self.ns.items()):
            original = getattr(value, "__nbops_original__", None)
            if original is not None and _wrappers.get(id(original)) is value:
                self.ns[key] = original
        return self.recorder


def start(ns: dict[str, Any]) -> Session | None:
    """Begin recording scoring calls for a cell that runs in ``ns``; None when another
    cell is being recorded already (a nested run keeps the outer recording)."""
    global _active
    session = Session(ns)
    with _lock:
        if _active is not None:
            return None
        _active = session.recorder
    for name in WATCHED:
        module = sys.modules.get(name)
        if module is not None:
            session.patch(name, module)
    if any(name not in sys.modules for name in WATCHED):
        sys.meta_path.insert(0, session.finder)
    return session
