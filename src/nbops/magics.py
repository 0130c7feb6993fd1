"""``%%track`` and ``%nbops``: parse the options, hand the work to the library."""

from __future__ import annotations

import html
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring


def _key_values(pairs: list[str] | None, option: str) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} expects key=value, got {pair!r}")
        out[key] = value
    return out


def _unquote(text: str | None) -> str | None:
    # magic_arguments keeps the quotes around a value ('out/*.png'); the shell would not
    if text and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (_unquote(text) or "").split(",") if n.strip()]


class Summary:
    """The one-line summary shown after a tracked cell (HTML in a notebook)."""

    def __init__(self, run: Any, counts: dict[str, int]) -> None:
        self.run, self.counts = run, counts

    def _parts(self) -> tuple[str, str]:
        c = self.counts
        detail = (f"{c.get('params', 0)} params, {c.get('metrics', 0)} metrics, "
                  f"{c.get('artifacts', 0)} artifacts, {c.get('datasets', 0)} datasets")
        return detail, f"{getattr(self.run, 'duration', 0):.3f} s"

    def __repr__(self) -> str:
        detail, took = self._parts()
        return f"nbops: run {self.run.run_id} {self.run.status} in {took} · {detail}"

    def _repr_html_(self) -> str:
        detail, took = self._parts()
        color = {"FINISHED": "#1a7f37", "FAILED": "#cf222e", "KILLED": "#9a6700"}.get(
            self.run.status, "#57606a")
        return (
            f'<div class="nbops-summary" style="font:12px monospace;color:#57606a">'
            f'nbops · run <b>{html.escape(self.run.run_id)}</b> '
            f'<span style="color:{color}">{self.run.status}</span> '
            f'{html.escape(self.run.name)} · {took} · {detail}</div>'
        )


def _sweep_requested(args: Any, line: str) -> bool:
    """True for a sweep; the sweep-only options without --sweep are a UsageError."""
    if "--maximize" in line.split() and "--minimize" in line.split():
        raise UsageError("give either --maximize or --minimize, not both")
    if args.sweep is not None:
        return True
    extra = [f"--{k}" for k in ("search", "trials", "objective", "seed")
             if getattr(args, k) is not None]
    if args.mode is not None:
        extra.append("--maximize" if args.mode == "max" else "--minimize")
    if extra:
        raise UsageError(f"{', '.join(extra)} only apply to a sweep; add --sweep \"name=[...]\"")
    return False


@magics_class
class NbopsMagics(Magics):
    @magic_arguments()
    @argument("--name", "-n", help="run name")
    @argument("--experiment", "-e", help="experiment the run belongs to")
    @argument("--tag", "-t", action="append", metavar="KEY=VALUE", help="tag (repeatable)")
    @argument("--params", metavar="A,B", help="also record these names as params")
    @argument("--metrics", metavar="X,Y", help="also record these names as metrics")
    @argument("--artifacts", metavar="GLOB", help="record files matching GLOB that the cell writes")
    @argument("--model", metavar="VAR", help="record this variable as the run's model")
    @argument("--quiet", "-q", action="store_true", help="no summary line after the cell")
    @argument("--sweep", metavar="SPEC", help="run the cell once per trial over SPEC, e.g. "
              "\"alpha=[0.01,0.1,1] depth=range(2,8) lr=loguniform(1e-4,1e-1)\"")
    @argument("--search", choices=("grid", "random", "bayes"), help="sweep search (grid)")
    @argument("--trials", type=int, metavar="N", help="number of sweep trials")
    @argument("--objective", metavar="METRIC", help="metric the sweep optimises")
    @argument("--maximize", dest="mode", action="store_const", const="max",
              help="the sweep maximises the objective")
    @argument("--minimize", dest="mode", action="store_const", const="min",
              help="the sweep minimises the objective")
    @argument("--seed", type=int, help="random seed of a random or bayes sweep")
    @cell_magic
    def track(self, line: str, cell: str) -> Any:
        """Run the cell as a tracked run: params, metrics, artifacts, datasets, code and
        environment are recorded in the nbops store. The cell behaves as it would
        untracked."""
        __tracebackhide__ = True
        from .tracking.cell import TrackOptions, run_tracked_cell

        args = parse_argstring(self.track, line)
        options = TrackOptions(
            name=_unquote(args.name),
            experiment=_unquote(args.experiment),
            tags=_key_values([_unquote(t) for t in args.tag or []], "--tag"),
            params=_names(args.params),
            metrics=_names(args.metrics),
            artifacts=_unquote(args.artifacts),
            model=_unquote(args.model),
            quiet=args.quiet,
        )
        if _sweep_requested(args, line):
            return self._sweep(cell, args, options)
        result = run_tracked_cell(cell, options, shell=self.shell)
        if result.run is not None and not options.quiet:
            self._show_after_cell(Summary(result.run, result.counts))
        if result.error is not None:
            raise result.error
        return result.value

    def _sweep(self, cell: str, args: Any, options: Any) -> None:
        __tracebackhide__ = True
        from .tracking.sweep import SweepSpecError, parse_space, sweep_cell

        try:
            space = parse_space(_unquote(args.sweep) or "")
        except SweepSpecError as exc:
            raise UsageError(f"--sweep: {exc}") from None
        result = sweep_cell(cell, space, options, shell=self.shell, search=args.search or "grid",
                            trials=args.trials, objective=_unquote(args.objective),
                            mode=args.mode, seed=args.seed, progress=not options.quiet)
        if not options.quiet:
            self._show_after_cell(result)

    def _show_after_cell(self, summary: Summary) -> None:
        # shown once the cell's own output (its Out[] value) is displayed
        from IPython.display import display

        events = self.shell.events

        def show(*_: Any) -> None:
            events.unregister("post_run_cell", show)
            display(summary)

        events.register("post_run_cell", show)

    @line_magic
    def nbops(self, line: str) -> Any:
        """``%nbops runs [--experiment E]`` table of runs · ``%nbops show RUN_ID`` ·
        ``%nbops store [PATH]`` show or switch the store."""
        import nbops

        words = shlex.split(line)
        if not words or words[0] in ("runs", "ls"):
            experiment = None
            if "--experiment" in words:
                i = words.index("--experiment")
                if i + 1 >= len(words):
                    raise UsageError("--experiment needs a name")
                experiment = words[i + 1]
            return nbops.runs(experiment=experiment)
        if words[0] == "show":
            if len(words) != 2:
                raise UsageError("usage: %nbops show RUN_ID")
            return nbops.get_run(words[1])
        if words[0] == "store":
            return nbops.set_store(words[1]) if len(words) > 1 else nbops.get_store_path()
        raise UsageError(f"unknown %nbops command {words[0]!r}; use runs, show or store")


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(NbopsMagics)


def unload_ipython_extension(ipython: Any) -> None:
    pass
