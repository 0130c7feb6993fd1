"""``nbops.reproduce(run_id)``: re-run a recorded cell with its recorded params in the
current kernel, as a new run tagged ``reproduced_from=<id>``, and say what differs.

The recorded params are put back in place of the cell's own literal assignments (as a
sweep trial does); a swept name the cell never assigned is set before the cell runs.
Then the metrics of both runs are compared, and a warning names every way the
conditions differ from the original: code, git commit, input data, package versions.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import NbopsError, ReproduceWarning
from . import capture

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Reproduction:
    """The outcome of :func:`reproduce`."""

    original_id: str
    run_id: str | None
    status: str
    metrics: pd.DataFrame
    differences: list[str] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def matches(self) -> bool:
        """True when the run finished and every original metric came out the same."""
        return (
            self.status == "FINISHED" and bool(self.metrics["same"].all())
            if len(self.metrics)
            else self.status == "FINISHED"
        )

    def _lines(self) -> list[str]:
        head = (
            f"nbops: run {self.run_id} reproduced {self.original_id} "
            f"({self.status}); metrics {'match' if self.matches else 'differ'}"
        )
        return [head, *[f"  ! {d}" for d in self.differences]]

    def __repr__(self) -> str:
        return "\n".join(self._lines()) + "\n" + self.metrics.to_string(index=False)

    def _repr_html_(self) -> str:
        import html

        lines = "<br>".join(html.escape(line) for line in self._lines())
        return (
            f'<div class="nbops-reproduce" style="font:12px monospace">{lines}</div>'
            + self.metrics.to_html(index=False)
        )


def _swept_names(doc: dict[str, Any]) -> set[str]:
    from ..store import get_store

    parent_id = doc.get("parent_id")
    if not parent_id:
        return set()
    try:
        parent = get_store().get_run(parent_id)
    except NbopsError:
        return set()
    return set((parent.get("sweep") or {}).get("space") or {})


def _close(a: Any, b: Any, rtol: float) -> bool:
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    if math.isnan(fa) and math.isnan(fb):
        return True
    return math.isclose(fa, fb, rel_tol=rtol, abs_tol=rtol * 1e-3)


def compare_metrics(
    original: dict[str, Any], new: dict[str, Any], rtol: float = 1e-9
) -> pd.DataFrame:
    """Metric, original, reproduced, difference (reproduced - original), same."""
    import pandas as pd

    rows = []
    for key in sorted(set(original) | set(new)):
        a, b = original.get(key), new.get(key)
        diff = None
        if a is not None and b is not None:
            try:
                diff = float(b) - float(a)
            except (TypeError, ValueError):
                diff = None
        rows.append(
            {
                "metric": key,
                "original": a,
                "reproduced": b,
                "difference": diff,
                "same": a is not None and b is not None and _close(a, b, rtol),
            }
        )
    return pd.DataFrame(rows, columns=["metric", "original", "reproduced", "difference", "same"])


def condition_differences(original: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Sentences naming how ``new`` ran under other conditions than ``original``:
    cell source, git commit / uncommitted changes, input dataset digests, python and
    package versions (of packages both runs imported)."""
    out = []
    code_a, code_b = original.get("code") or {}, new.get("code") or {}
    if (code_a.get("source") or "") != (code_b.get("source") or ""):
        out.append("the cell source differs from the recorded one")
    if code_a.get("git_commit") and code_a.get("git_commit") != code_b.get("git_commit"):
        out.append(
            f"git commit is {str(code_b.get('git_commit'))[:10]}, the original ran "
            f"at {str(code_a.get('git_commit'))[:10]}"
        )
    elif code_b.get("git_dirty") and not code_a.get("git_dirty"):
        out.append("the git work tree has uncommitted changes; the original's was clean")
    ins_a, ins_b = set(original.get("inputs") or []), set(new.get("inputs") or [])
    if ins_a != ins_b:
        out.append(
            f"input data differ: {len(ins_a - ins_b)} dataset digest(s) of the original "
            f"were not used ({', '.join(sorted(d[:12] for d in ins_a - ins_b)) or 'none'}), "
            f"{len(ins_b - ins_a)} new ({', '.join(sorted(d[:12] for d in ins_b - ins_a)) or 'none'})"
        )
    env_a, env_b = original.get("env") or {}, new.get("env") or {}
    if env_a.get("python") and env_b.get("python") and env_a["python"] != env_b["python"]:
        out.append(f"python {env_b['python']} (original: {env_a['python']})")
    pk_a, pk_b = env_a.get("packages") or {}, env_b.get("packages") or {}
    changed = [
        f"{n} {pk_b[n]} (original {pk_a[n]})"
        for n in sorted(set(pk_a) & set(pk_b))
        if pk_a[n] and pk_b[n] and pk_a[n] != pk_b[n]
    ]
    if changed:
        out.append("package versions differ: " + ", ".join(changed))
    return out


def reproduce(
    run_id: str,
    source: str | None = None,
    name: str | None = None,
    rtol: float = 1e-9,
    shell: Any = None,
    params: dict[str, Any] | None = None,
    namespace: dict[str, Any] | None = None,
) -> Reproduction:
    """Re-run the cell of run ``run_id`` with its recorded params in this kernel's
    namespace, as a new run tagged ``reproduced_from=<run_id>``.

    ``source`` runs other code instead (then the code counts as a difference). ``params``
    replaces recorded params (a name the cell never assigns is set before it runs), e.g.
    another seed; ``namespace`` runs the cell in that dict instead of the kernel's own
    (the promotion gates and ``nbops.retrain`` pass a copy with new data). Returns a
    :class:`Reproduction` with the metric comparison; warns (ReproduceWarning) naming
    every difference in code, git commit, input data or package versions. If the cell
    raises, the new run is FAILED and the exception is re-raised. Raises
    RunNotFoundError for an unknown id and NbopsError for a run with no recorded cell.
    """
    __tracebackhide__ = True
    from .api import get_run
    from .cell import TrackOptions, run_tracked_cell

    original = get_run(run_id)
    recorded = (original.get("code") or {}).get("source")
    if source is None:
        source = recorded
    if not source:
        raise NbopsError(
            f"run {run_id} has no recorded cell source (it was not a %%track cell), so it "
            "cannot be re-run; pass the code with reproduce(run_id, source=...)"
        )
    if (original.get("code") or {}).get("function"):
        raise NbopsError(
            f"run {run_id} was a trial of nbops.sweep over the function "
            f"{original['code']['function']!r}; call that function with its params "
            f"{original.get('params')} instead"
        )
    if shell is None:
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:  # plain Python: run in __main__'s namespace
            shell = None
    user_ns = None if shell is not None else vars(__import__("__main__"))
    if namespace is not None:
        user_ns = namespace

    code = shell.transform_cell(source) if shell is not None else source
    literals = set(capture.analyse_cell(code).literals)
    recorded_params = original.get("params") or {}
    overrides = {k: v for k, v in recorded_params.items() if k in literals | _swept_names(original)}
    overrides.update(params or {})
    options = TrackOptions(
        name=name or f"{original.get('name')}-reproduced",
        experiment=original.get("experiment"),
        tags={"reproduced_from": run_id},
        overrides=overrides,
        quiet=True,
    )
    result = run_tracked_cell(source, options, shell=shell, user_ns=user_ns)
    if result.run is None:
        raise NbopsError(
            f"could not record the reproduction of run {run_id}; see the warning above"
        )
    new = get_run(result.run.run_id)
    differences = condition_differences(
        {**original, "code": {**(original.get("code") or {}), "source": recorded}}, new
    )
    metrics = compare_metrics(original.get("metrics") or {}, new.get("metrics") or {}, rtol)
    out = Reproduction(run_id, new["run_id"], new["status"], metrics, differences, result.error)
    if differences:
        warnings.warn(
            f"nbops: run {new['run_id']} reproduces {run_id} under other "
            "conditions: " + "; ".join(differences),
            ReproduceWarning,
            stacklevel=2,
        )
    if result.error is not None:
        raise result.error
    return out
