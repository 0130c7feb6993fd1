"""Promotion gates: rules per model name that a version must pass to enter Staging or
Production. This module owns the rule grammar and where the rules are kept; the checks
themselves are in :mod:`.gate_checks`.

Grammar (one rule per string; case of keywords does not matter)::

    [staging: | production:] RULE          a prefix limits the rule to one stage
    RULE :=  METRIC OP NUMBER               accuracy >= 0.9
          |  METRIC OP production [* F]     accuracy >= production,  rmse <= production * 1.05
          |  stable METRIC over N seeds [of PARAM]: std <= X
          |  quality
          |  no drift vs production
    OP   :=  >=  <=  >  <  ==  !=

``METRIC`` is a metric of the version's run; ``production`` is the same metric of the
run of the version now in Production. A ``stable`` rule re-runs the version's recorded
cell through :func:`nbops.reproduce` with N seeds (see :mod:`.gate_checks` for how the
seed is found). Rules are kept in the store's ``gate_rules`` table, one record per
model name (``{name, rules, updated, who}``), so every kernel, the CLI and CI share them.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .._errors import GateRuleError
from .._util import current_user, utc_now
from ..store import get_store
from .audit import record_event
from .naming import check_name

GATES_TABLE = "gate_rules"
OPS = (">=", "<=", "==", "!=", ">", "<")
GRAMMAR = (
    "a rule is one of: 'accuracy >= 0.9', 'accuracy >= production', "
    "'rmse <= production * 1.05', 'stable accuracy over 5 seeds: std <= 0.01', "
    "'quality', 'no drift vs production' (optionally prefixed 'staging:' or "
    "'production:')"
)
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_]))
    | (?P<op>[<>=!]+)
    | (?P<word>[A-Za-z_][A-Za-z0-9_.\-/]*)
    | (?P<punct>[:*])
    | (?P<other>\S+))""",
    re.VERBOSE,
)


def _fail(text: str, start: int, end: int, why: str) -> GateRuleError:
    caret = " " * start + "^" * max(1, end - start)
    return GateRuleError(
        f"bad gate rule {text!r}: {why}\n    {text}\n    {caret}\n{GRAMMAR}",
        rule=text,
        position=start,
    )


class _Tokens:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[tuple[str, str, int, int]] = []
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            if kind is None:
                continue
            self.items.append((kind, m.group(kind), m.start(kind), m.end(kind)))
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str, int, int] | None:
        k = self.i + offset
        return self.items[k] if k < len(self.items) else None

    def end_pos(self) -> int:
        return len(self.text.rstrip())

    def take(self, expect: str, what: str) -> tuple[str, str, int, int]:
        tok = self.peek()
        if tok is None:
            pos = self.end_pos()
            raise _fail(self.text, pos, pos + 1, f"expected {what} here, the rule ends")
        if tok[0] != expect:
            raise _fail(self.text, tok[2], tok[3], f"expected {what}, found {tok[1]!r}")
        self.i += 1
        return tok

    def word(self, *words: str) -> tuple[str, str, int, int]:
        tok = self.take("word", " or ".join(repr(w) for w in words))
        if tok[1].lower() not in words:
            raise _fail(
                self.text,
                tok[2],
                tok[3],
                f"expected {' or '.join(repr(w) for w in words)}, found {tok[1]!r}",
            )
        return tok

    def number(self, what: str) -> float:
        tok = self.take("num", what)
        value = float(tok[1])
        if not math.isfinite(value):
            raise _fail(self.text, tok[2], tok[3], f"{what} must be a finite number")
        return value

    def op(self) -> str:
        tok = self.take("op", "a comparison (" + " ".join(OPS) + ")")
        if tok[1] not in OPS:
            raise _fail(
                self.text,
                tok[2],
                tok[3],
                f"unknown comparison {tok[1]!r}; use one of {' '.join(OPS)}",
            )
        return tok[1]

    def done(self) -> None:
        tok = self.peek()
        if tok is not None:
            raise _fail(
                self.text,
                tok[2],
                len(self.text.rstrip()),
                f"unexpected {self.text[tok[2] :].strip()!r} after the end of the rule",
            )


def parse_rule(text: Any) -> dict[str, Any]:
    """One rule as plain data: ``{"rule", "stages", "kind", ...}`` where kind is
    ``metric`` (with ``metric``, ``op``, ``baseline`` "number" or "production",
    ``value`` or ``factor``), ``stable`` (``metric``, ``seeds``, ``seed_param``,
    ``op``, ``value``), ``quality`` or ``drift``. Raises GateRuleError whose message
    repeats the rule with a caret under the part that is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise GateRuleError(
            f"a gate rule is a non-empty string, not {text!r}; {GRAMMAR}",
            rule=str(text),
            position=0,
        )
    text = text.strip()
    toks = _Tokens(text)
    bad = next((t for t in toks.items if t[0] == "other"), None)
    if bad is not None:
        raise _fail(text, bad[2], bad[3], f"{bad[1]!r} is not part of the rule grammar")
    stages = ["Staging", "Production"]
    first, second = toks.peek(), toks.peek(1)
    if (
        first
        and first[0] == "word"
        and first[1].lower() in ("staging", "production")
        and second
        and second[1] == ":"
    ):
        stages = [first[1].capitalize()]
        toks.i = 2
    start = toks.i
    rule: dict[str, Any] = {"rule": text, "stages": stages}
    head = toks.peek()
    if head is None:
        raise _fail(text, len(text), len(text) + 1, "the rule is empty after its stage prefix")
    keyword = head[1].lower() if head[0] == "word" else ""
    rest = toks.peek(1)
    if keyword == "quality" and (rest is None or rest[0] != "op"):
        toks.i += 1
        toks.done()
        return {**rule, "kind": "quality"}
    if keyword == "no" and (rest is None or rest[0] != "op"):
        toks.i += 1
        toks.word("drift")
        toks.word("vs")
        toks.word("production")
        toks.done()
        return {**rule, "kind": "drift"}
    if keyword == "stable" and (rest is None or rest[0] != "op"):
        toks.i += 1
        metric = toks.take("word", "the metric name (e.g. accuracy)")[1]
        toks.word("over")
        seeds_tok = toks.peek()
        seeds = toks.number("the number of seeds")
        if seeds != int(seeds) or seeds < 2:
            raise _fail(
                text,
                seeds_tok[2],
                seeds_tok[3],
                "the number of seeds must be a whole number of at least 2",
            )
        toks.word("seeds", "seed")
        seed_param = None
        nxt = toks.peek()
        if nxt is not None and nxt[0] == "word" and nxt[1].lower() == "of":
            toks.i += 1
            seed_param = toks.take("word", "the name of the seed parameter")[1]
        toks.take("punct", "':' before the statistic")
        toks.word("std")
        op = toks.op()
        if op not in ("<=", "<"):
            tok = toks.items[toks.i - 1]
            raise _fail(text, tok[2], tok[3], "a stability limit is 'std <= X' or 'std < X'")
        value = toks.number("the largest allowed standard deviation")
        toks.done()
        return {
            **rule,
            "kind": "stable",
            "metric": metric,
            "seeds": int(seeds),
            "seed_param": seed_param,
            "stat": "std",
            "op": op,
            "value": value,
        }
    toks.i = start
    metric = toks.take("word", "a metric name, 'stable', 'quality' or 'no drift vs production'")
    op = toks.op()
    nxt = toks.peek()
    if nxt is not None and nxt[0] == "word":
        if nxt[1].lower() != "production":
            raise _fail(
                text, nxt[2], nxt[3], f"compare with a number or with 'production', not {nxt[1]!r}"
            )
        toks.i += 1
        factor = 1.0
        star = toks.peek()
        if star is not None and star[1] == "*":
            toks.i += 1
            factor = toks.number("the factor after '*'")
        toks.done()
        return {
            **rule,
            "kind": "metric",
            "metric": metric[1],
            "op": op,
            "baseline": "production",
            "factor": factor,
        }
    value = toks.number("a number or 'production'")
    toks.done()
    return {
        **rule,
        "kind": "metric",
        "metric": metric[1],
        "op": op,
        "baseline": "number",
        "value": value,
    }


# -- where rules are kept -------------------------------------------------------------
def _table():
    return get_store().collection(GATES_TABLE, "name")


def gates(name: str) -> list[str]:
    """The gate rules of model ``name`` (an empty list when it has none)."""
    doc = _table().get(check_name(name))
    return list(doc["rules"]) if doc else []


def set_gates(name: str, rules: list[str] | str, reason: str | None = None) -> list[str]:
    """Replace the gate rules of model ``name`` (the model may have no versions yet).

    Every rule is parsed first, so one bad rule stores nothing. Returns the stored rules;
    the change is an audit-log event (``set_gates``). Raises GateRuleError (pointing at
    the wrong part of the rule) or RegistryError for a bad model name."""
    name = check_name(name)
    if isinstance(rules, str):
        rules = [rules]
    parsed = [parse_rule(r)["rule"] for r in rules]
    unique = list(dict.fromkeys(parsed))
    store = get_store()
    with store.transaction():
        before = gates(name)
        _table().upsert(
            {"name": name, "rules": unique, "updated": utc_now(), "who": current_user()}
        )
        record_event(store, "set_gates", name, None, before, unique, reason)
    return unique


def add_gate(name: str, rule: str, reason: str | None = None) -> list[str]:
    """Add one rule to model ``name``'s gates; returns all its rules. GateRuleError
    for a bad rule."""
    text = parse_rule(rule)["rule"]
    return set_gates(name, [*gates(name), text], reason=reason)


def remove_gate(name: str, rule: str, reason: str | None = None) -> list[str]:
    """Remove one rule (by its text) from model ``name``'s gates; returns the rest.
    Raises GateRuleError naming the rules when there is no such rule."""
    current = gates(name)
    text = rule.strip() if isinstance(rule, str) else rule
    if text not in current:
        raise GateRuleError(
            f"model {name!r} has no gate rule {rule!r}; its rules: {current}",
            rule=str(rule),
            position=0,
        )
    return set_gates(name, [r for r in current if r != text], reason=reason)
