"""Runs the corpus notebooks cell by cell in two real kernels, one plain and one with
every code cell under ``%%track``, and says what differs. Used by
tests/test_track_corpus.py (behaviour) and benchmarks/bench_tracking.py (overhead).

Each notebook's metadata ``nbops_corpus`` lists, by hand: ``headline`` (expressions
whose values are the notebook's results: each must be found among the metrics of its
tracked runs), ``min_models`` (models its runs must log), ``search`` (the variable of
a hyperparameter search, whose best params and score must be recorded) and
``not_metrics`` (plot bounds, counts and other numbers that must not be metrics).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent
NOTEBOOKS = sorted(CORPUS.glob("*.ipynb"))

#: names the namespace digest skips: IPython's own and the runner's
_SKIP = "In Out get_ipython exit quit open".split()

DIGEST = r"""
def _nbops_corpus_digest():
    import hashlib, json, pickle, re, types
    def describe(v):
        kind = type(v).__module__ + "." + type(v).__qualname__
        try:
            if kind == "numpy.ndarray":
                body = repr(v.tolist()) if v.dtype == object else v.tobytes()
                return [kind, list(v.shape), str(v.dtype), hashlib.sha256(
                    body.encode() if isinstance(body, str) else body).hexdigest()]
            if hasattr(v, "to_csv"):
                return [kind, list(getattr(v, "shape", ())),
                        hashlib.sha256(v.to_csv().encode()).hexdigest()]
            if hasattr(v, "cv_results_"):  # a fitted search: its results, not its timings
                return [kind, describe(v.cv_results_),
                        describe(getattr(v, "best_estimator_", None))]
            if hasattr(v, "get_params"):
                return [kind, hashlib.sha256(pickle.dumps(v)).hexdigest()]
            if isinstance(v, dict) and len(v) < 200:  # fit and score times vary run to run
                return [kind, {str(k): describe(x) for k, x in v.items()
                               if "time" not in str(k)}]
            if isinstance(v, (list, tuple)) and len(v) < 200:
                return [kind, [describe(x) for x in v]]
        except Exception as exc:
            return [kind, "undescribed", type(exc).__name__]
        if isinstance(v, (types.FunctionType, types.BuiltinFunctionType, type)):
            return [kind, getattr(v, "__module__", None), getattr(v, "__qualname__", None)]
        return [kind, re.sub(r" at 0x[0-9a-fA-F]+", "", repr(v))[:2000]]
    skip = set(SKIP_NAMES)
    return {k: describe(v) for k, v in list(globals().items())
            if not k.startswith("_") and k not in skip
            and not isinstance(v, types.ModuleType)}
import json as _json
print(_json.dumps(_nbops_corpus_digest(), sort_keys=True, default=str))
""".replace("SKIP_NAMES", repr(_SKIP))

RUNS = r"""
import json as _json, nbops as _nbops
_nbops.tracking.background.wait()
_ids = [r["run_id"] for r in _nbops.run_page(limit=500, experiment=EXPERIMENT,
                                               parent="none")["runs"]]
print(_json.dumps([_nbops.get_run(i) for i in _ids], default=str))
"""  # formatted with the experiment name: RUNS.replace("EXPERIMENT", repr(name))


def _clean(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    text = re.sub(r"In\s*\[\d+\]", "In[N]", text)
    text = re.sub(r"[\w/.-]*ipykernel_\d+/\d+\.py", "CELL", text)
    text = re.sub(r"\(\d+\.py, line", "(CELL, line", text)
    text = re.sub(r"(Wall time|CPU times|user|sys|total): [^\n]*", r"\1: T", text)
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def outcome(res: dict) -> dict:
    """What a reader sees of a cell, without execution counts, addresses and times."""
    shown = []
    for kind, content in res["outputs"]:
        if kind == "stream":
            shown.append((content["name"], _clean(content["text"])))
        elif kind in ("execute_result", "display_data"):
            data = content["data"]
            shown.append((kind, sorted(data), _clean(str(data.get("text/plain", "")))))
        elif kind == "error":
            shown.append(
                (
                    "error",
                    content["ename"],
                    _clean(content["evalue"]),
                    [_clean(line) for line in content["traceback"]],
                )
            )
    merged: list = []
    for item in shown:  # streams arrive in chunks that may split differently
        if merged and item[0] in ("stdout", "stderr") and merged[-1][0] == item[0]:
            merged[-1] = (item[0], merged[-1][1] + item[1])
        else:
            merged.append(item)
    return {"status": res["status"], "outputs": merged}


def code_cells(path: Path) -> tuple[list[str], dict[str, Any]]:
    """The code cells of a notebook and its ``nbops_corpus`` metadata."""
    book = json.loads(path.read_text())
    cells = [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in book["cells"]
        if c["cell_type"] == "code"
    ]
    return cells, book["metadata"].get("nbops_corpus", {})


@dataclass
class Comparison:
    """One notebook run plain and tracked: differing cells, the two namespaces, the
    headline values (from the plain kernel), the tracked top-level runs, wall times."""

    name: str
    differences: list[tuple[int, dict, dict]] = field(default_factory=list)
    plain_ns: dict = field(default_factory=dict)
    tracked_ns: dict = field(default_factory=dict)
    headline: dict[str, float] = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)
    plain_s: float = 0.0
    tracked_s: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


def settle(kernel: Any, res: dict) -> dict:
    """After a cell that raised, wait until the kernel stops aborting new requests
    (ipykernel aborts those that arrive right after an error). Returns ``res``."""
    if res["status"] != "ok":
        for _ in range(50):
            if kernel.run("pass")["status"] == "ok":
                break
            time.sleep(0.05)
    return res


def _last_json(res: dict) -> Any:
    assert res["status"] == "ok", res
    return json.loads(res["text"].strip().splitlines()[-1])


def run_notebook(path: Path, plain: Any, tracked: Any, details: bool = True) -> Comparison:
    """Run ``path`` cell by cell in both kernels (after ``%reset -f``)."""
    cells, meta = code_cells(path)
    out = Comparison(path.stem, meta=meta)
    for kernel in (plain, tracked):
        assert kernel.run("%reset -f")["status"] == "ok"
    for i, source in enumerate(cells):
        t0 = time.perf_counter()
        a = plain.run(source)
        t1 = time.perf_counter()
        b = tracked.run(f"%%track -q -e {path.stem}\n{source}")
        t2 = time.perf_counter()
        settle(plain, a)
        settle(tracked, b)
        out.plain_s += t1 - t0
        out.tracked_s += t2 - t1
        pa, pb = outcome(a), outcome(b)
        if pa != pb:
            out.differences.append((i, pa, pb))
    if not details:
        return out
    out.plain_ns = _last_json(plain.run(DIGEST))
    out.tracked_ns = _last_json(tracked.run(DIGEST))
    for expr in meta.get("headline", []):
        out.headline[expr] = _last_json(
            plain.run(f"import json as _j\nprint(_j.dumps(float({expr})))")
        )
    out.runs = _last_json(tracked.run(RUNS.replace("EXPERIMENT", repr(path.stem))))
    return out
