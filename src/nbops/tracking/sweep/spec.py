"""The search space of a sweep: parsing a spec string (``%%track --sweep``) or a dict
(``nbops.sweep``) into a :class:`Space`.

A spec is a string of ``name=expression`` tokens::

    alpha=[0.01,0.1,1] max_depth=range(2,8) lr=loguniform(1e-4,1e-1)

where an expression is a literal (a list is the set of choices, a scalar a single
value), ``range(...)``, ``linspace(...)`` / ``logspace(...)``, or a scipy.stats
distribution with literal arguments. Nothing in a spec is evaluated as code.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any

from ..._errors import SweepError, SweepSpecError


@dataclass
class Space:
    """A parsed search space: name -> list of choices or a scipy.stats frozen
    distribution; ``text`` keeps how each name was written, for the record."""

    values: dict[str, Any]
    text: dict[str, str]

    def distributions(self) -> list[str]:
        """Names whose values are scipy.stats distributions, not lists."""
        return [k for k, v in self.values.items() if is_distribution(v)]


_NAME_EQ = re.compile(r"([A-Za-z_]\w*)\s*=(?!=)")


def _top_level_starts(spec: str) -> list[re.Match]:
    """``name=`` matches that sit outside brackets and quotes."""
    depth, quote, found = 0, "", []
    i = 0
    while i < len(spec):
        ch = spec[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and (i == 0 or spec[i - 1] in " \t\n,;"):
            m = _NAME_EQ.match(spec, i)
            if m:
                found.append(m)
                i = m.end()
                continue
        i += 1
    return found


def parse_space(spec: str) -> Space:
    """Parse ``"alpha=[0.01,0.1,1] max_depth=range(2,8)"`` into a :class:`Space`.
    Raises SweepSpecError whose message points at the bad token."""
    if not spec or not spec.strip():
        raise SweepSpecError(
            "it is empty; write name=values pairs such as 'alpha=[0.1,1] depth=range(2,6)'"
        )
    starts = _top_level_starts(spec)
    head = spec[: starts[0].start()] if starts else spec
    if head.strip(" \t\n,;"):
        s = len(head) - len(head.lstrip())
        raise SweepSpecError(
            f"{head.strip()!r} is not a name=values pair", spec, s, len(head.rstrip())
        )
    values: dict[str, Any] = {}
    text: dict[str, str] = {}
    for i, m in enumerate(starts):
        stop = starts[i + 1].start() if i + 1 < len(starts) else len(spec)
        raw = spec[m.end() : stop]
        expr = raw.strip().rstrip(",;").strip()
        lo = m.end() + (len(raw) - len(raw.lstrip()))
        name = m.group(1)
        if name in values:
            raise SweepSpecError(f"{name!r} is given twice", spec, m.start(), lo + len(expr))
        cut = _trailing_junk(expr)
        if cut is not None:
            junk = expr[cut:].strip()
            at = lo + expr.index(junk, cut)
            raise SweepSpecError(
                f"unexpected {junk!r} after {name}={expr[:cut].strip()}; write each "
                "parameter as name=values, separated by spaces",
                spec,
                at,
                at + len(junk),
            )
        try:
            values[name] = _parse_values(name, expr)
        except SweepSpecError as exc:
            raise SweepSpecError(
                str(exc).removeprefix("bad sweep spec: "),
                spec,
                m.start(),
                max(lo + len(expr), m.end()),
            ) from None
        text[name] = expr
    return Space(values, text)


def _trailing_junk(expr: str) -> int | None:
    """Where a valid expression followed by stray words ends (``[1] junk`` -> 3)."""
    if _parses(expr):
        return None
    for cut in range(len(expr) - 1, 0, -1):
        if expr[cut - 1] in "])" + "0123456789'\"" and expr[cut] == " " and _parses(expr[:cut]):
            return cut
    return None


def _parses(expr: str) -> bool:
    try:
        ast.parse(expr, mode="eval")
    except SyntaxError:
        return False
    return True


def _parse_values(name: str, expr: str) -> Any:
    if not expr:
        raise SweepSpecError(f"{name}= has no values")
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError as exc:
        raise SweepSpecError(f"{name}={expr} is not a valid expression ({exc.msg})") from None
    if isinstance(node, ast.Call):
        return _parse_call(name, expr, node)
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise SweepSpecError(
            f"{name}={expr}: use a literal list, range(...), or a scipy.stats distribution "
            "such as loguniform(1e-4,1e-1)"
        ) from None
    if isinstance(value, (dict, set)):
        raise SweepSpecError(f"{name}={expr}: give the choices as a list")
    return _choices(name, value)


def _choices(name: str, value: Any) -> list:
    if isinstance(value, (list, tuple)):
        if not value:
            raise SweepSpecError(f"{name} has an empty list of values")
        return list(value)
    return [value]


def _parse_call(name: str, expr: str, node: ast.Call) -> Any:
    if not isinstance(node.func, ast.Name):
        raise SweepSpecError(
            f"{name}={expr}: only range(), linspace(), logspace() or a "
            "scipy.stats distribution name can be called"
        )
    fname = node.func.id
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    except (ValueError, TypeError, SyntaxError):
        raise SweepSpecError(f"{name}={expr}: arguments must be literal numbers") from None
    if None in kwargs:
        raise SweepSpecError(f"{name}={expr}: **kwargs are not allowed")
    if fname == "range":
        try:
            values = list(range(*args, **kwargs))
        except TypeError as exc:
            raise SweepSpecError(f"{name}={expr}: {exc}") from None
        return _choices(name, values) if values else _raise_empty(name, expr)
    if fname in ("linspace", "logspace"):
        import numpy as np

        try:
            values = [float(v) for v in getattr(np, fname)(*args, **kwargs)]
        except (TypeError, ValueError) as exc:
            raise SweepSpecError(f"{name}={expr}: {exc}") from None
        return _choices(name, values) if values else _raise_empty(name, expr)
    import scipy.stats as st

    dist = getattr(st, fname, None)
    if not isinstance(dist, (st.rv_continuous, st.rv_discrete)):
        raise SweepSpecError(
            f"{name}={expr}: {fname!r} is not range, linspace, logspace or a scipy.stats "
            "distribution (e.g. loguniform, uniform, randint, norm)"
        )
    try:
        frozen = dist(*args, **kwargs)
        bounds = [float(x) for x in frozen.support()]
    except (TypeError, ValueError) as exc:
        raise SweepSpecError(f"{name}={expr}: {exc}") from None
    if any(math.isnan(b) for b in bounds):
        raise SweepSpecError(f"{name}={expr}: invalid arguments for {fname}")
    return frozen


def _raise_empty(name: str, expr: str):
    raise SweepSpecError(f"{name}={expr} gives no values")


def is_distribution(value: Any) -> bool:
    """A scipy.stats frozen distribution (it can draw samples and has a support)."""
    return hasattr(value, "rvs") and hasattr(value, "support")


def as_space(space: Space | str | dict[str, Any]) -> Space:
    """A Space from a spec string, a dict (lists, ranges, arrays, scipy distributions
    or single values) or a Space."""
    if isinstance(space, Space):
        return space
    if isinstance(space, str):
        return parse_space(space)
    if not isinstance(space, dict) or not space:
        raise SweepError(
            "the search space must be a non-empty dict such as {'alpha': [0.1, 1], "
            "'lr': scipy.stats.loguniform(1e-4, 1e-1)} or a spec string "
            "'alpha=[0.1,1] depth=range(2,6)'"
        )
    values, text = {}, {}
    for name, value in space.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise SweepError(f"search space name {name!r} is not a valid identifier")
        if is_distribution(value):
            values[name] = value
            args = ", ".join(map(repr, getattr(value, "args", ())))
            text[name] = f"{getattr(getattr(value, 'dist', None), 'name', 'dist')}({args})"
        elif isinstance(value, str):
            values[name] = [value]
            text[name] = repr([value])
        else:
            try:
                choices = [plain(v) for v in value] if not isinstance(value, (dict, set)) else None
            except TypeError:
                choices = [plain(value)]
            if choices is None:
                raise SweepError(f"search space {name!r}: give the choices as a list")
            if not choices:
                raise SweepError(f"search space {name!r} has no values")
            values[name] = choices
            text[name] = repr(value) if isinstance(value, range) else repr(choices)
    return Space(values, text)


def plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so values are JSON-able and cell literals."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    return value
