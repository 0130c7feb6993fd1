"""``%%track`` and ``%nbops``: parse the options, hand the work to the library.

A ``%%track`` cell is run by IPython itself, so it behaves exactly as the same cell
without the ``%%track`` line: an input transformer (first of IPython's cleanup
transformers) turns ``%%track [options]\n<body>`` into ``<body>``, and the
``pre_run_cell`` / ``post_run_cell`` events start and end the run around it
(:class:`nbops.tracking.cell.TrackedCell`). IPython's compiler, ``__future__``
flags, AST transformers, interactivity, top-level ``await``, display hook and
tracebacks all apply unchanged. Only a sweep, ``%%track?`` and options that do not
parse go through the cell magic itself.
"""

from __future__ import annotations

import html
import re
import shlex
from dataclasses import replace
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

    def __init__(
        self,
        run: Any,
        counts: dict[str, int],
        status: str | None = None,
        seconds: float | None = None,
    ) -> None:
        self.run, self.counts = run, counts
        self.status = status or run.status
        self.seconds = seconds if seconds is not None else getattr(run, "duration", 0)

    def _parts(self) -> tuple[str, str]:
        c = self.counts
        detail = (
            f"{c.get('params', 0)} params, {c.get('metrics', 0)} metrics, "
            f"{c.get('artifacts', 0)} artifacts, {c.get('datasets', 0)} datasets"
        )
        if c.get("models"):
            detail += f", {c['models']} model{'s' if c['models'] > 1 else ''}"
        return detail, f"{self.seconds:.3f} s"

    def __repr__(self) -> str:
        detail, took = self._parts()
        return f"nbops: run {self.run.run_id} {self.status} in {took} · {detail}"

    def _repr_html_(self) -> str:
        detail, took = self._parts()
        color = {"FINISHED": "#1a7f37", "FAILED": "#cf222e", "KILLED": "#9a6700"}.get(
            self.status, "#57606a"
        )
        return (
            f'<div class="nbops-summary" style="font:12px monospace;color:#57606a">'
            f"nbops · run <b>{html.escape(self.run.run_id)}</b> "
            f'<span style="color:{color}">{self.status}</span> '
            f"{html.escape(self.run.name)} · {took} · {detail}</div>"
        )


def _sweep_requested(args: Any, line: str) -> bool:
    """True for a sweep; the sweep-only options without --sweep are a UsageError."""
    if "--maximize" in line.split() and "--minimize" in line.split():
        raise UsageError("give either --maximize or --minimize, not both")
    if args.sweep is not None:
        return True
    extra = [
        f"--{k}" for k in ("search", "trials", "objective", "seed") if getattr(args, k) is not None
    ]
    if args.mode is not None:
        extra.append("--maximize" if args.mode == "max" else "--minimize")
    if extra:
        raise UsageError(f'{", ".join(extra)} only apply to a sweep; add --sweep "name=[...]"')
    return False


def _options(args: Any) -> Any:
    from .tracking.cell import TrackOptions

    return TrackOptions(
        name=_unquote(args.name),
        experiment=_unquote(args.experiment),
        tags=_key_values([_unquote(t) for t in args.tag or []], "--tag"),
        params=_names(args.params),
        metrics=_names(args.metrics),
        artifacts=_unquote(args.artifacts),
        model=_unquote(args.model),
        quiet=args.quiet,
    )


_TRACK_LINE = re.compile(r"%%track(?:[ \t]+(.*))?\n?$", re.S)


_last_parsed: tuple[str, Any] = ("", None)


def plain_track(raw_cell: str) -> tuple[Any, int] | None:
    """(TrackOptions, index of the body's first line) of a ``%%track`` cell that IPython
    can run itself; None for any other cell, a sweep, or options that do not parse
    (the cell magic then runs and reports them). The transformer and the
    ``pre_run_cell`` event ask about the same cell: the last answer is kept."""
    global _last_parsed
    if _last_parsed[0] == raw_cell and _last_parsed[1] is not None:
        options, first = _last_parsed[1]
        return replace(
            options,
            tags=dict(options.tags),
            params=list(options.params),
            metrics=list(options.metrics),
        ), first
    found = _parse_track(raw_cell)
    _last_parsed = (raw_cell, found)
    return found


def _parse_track(raw_cell: str) -> tuple[Any, int] | None:
    lines = raw_cell.splitlines(keepends=True)
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    match = _TRACK_LINE.match(lines[i]) if i < len(lines) else None
    if match is None:
        return None
    line = (match.group(1) or "").strip()
    try:
        args = parse_argstring(NbopsMagics.track, line)
        if _sweep_requested(args, line):
            return None
        return _options(args), i + 1
    except (UsageError, SystemExit, ValueError):
        return None


def track_transformer(lines: list[str]) -> list[str]:
    """IPython input transformer: a plain ``%%track`` cell becomes its body."""
    if not lines or "%%track" not in "".join(lines[:8]):
        return lines
    found = plain_track("".join(lines))
    return lines if found is None else lines[found[1] :]


class CellHooks:
    """Starts a tracked cell's run on ``pre_run_cell`` and ends it on ``post_run_cell``."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.open: list[Any] = []  # one entry per running cell (None: not tracked)

    def pre_run_cell(self, info: Any = None) -> None:
        """Start the run of a plain ``%%track`` cell (any other cell: nothing)."""
        raw = getattr(info, "raw_cell", None) or ""
        found = plain_track(raw) if "%%track" in raw else None
        if found is None:
            self.open.append(None)
            return
        from .tracking.cell import TrackedCell

        options, first = found
        body = "".join(raw.splitlines(keepends=True)[first:])
        code = getattr(info, "transformed_cell", None)
        self.open.append(TrackedCell(body, options, shell=self.shell, code=code))

    def post_run_cell(self, result: Any = None) -> None:
        """Record and end the run of the cell that just ran; show its summary line."""
        if not self.open:
            return
        cell = self.open.pop()
        if cell is None:
            return
        error = getattr(result, "error_before_exec", None) or getattr(result, "error_in_exec", None)
        done = cell.finish(error, getattr(result, "result", None))
        if done.run is not None and not cell.options.quiet:
            from IPython.display import display

            display(Summary(done.run, done.counts, done.status, done.seconds))


@magics_class
class NbopsMagics(Magics):
    """``%%track`` and ``%nbops``: thin wrappers that parse options and call the API."""

    @magic_arguments()
    @argument("--name", "-n", help="run name")
    @argument("--experiment", "-e", help="experiment the run belongs to")
    @argument("--tag", "-t", action="append", metavar="KEY=VALUE", help="tag (repeatable)")
    @argument("--params", metavar="A,B", help="also record these names as params")
    @argument("--metrics", metavar="X,Y", help="also record these names as metrics")
    @argument("--artifacts", metavar="GLOB", help="record files matching GLOB that the cell writes")
    @argument("--model", metavar="VAR", help="record this variable as the run's model")
    @argument("--quiet", "-q", action="store_true", help="no summary line after the cell")
    @argument(
        "--sweep",
        metavar="SPEC",
        help="run the cell once per trial over SPEC, e.g. "
        '"alpha=[0.01,0.1,1] depth=range(2,8) lr=loguniform(1e-4,1e-1)"',
    )
    @argument("--search", choices=("grid", "random", "bayes"), help="sweep search (grid)")
    @argument("--trials", type=int, metavar="N", help="number of sweep trials")
    @argument("--objective", metavar="METRIC", help="metric the sweep optimises")
    @argument(
        "--maximize",
        dest="mode",
        action="store_const",
        const="max",
        help="the sweep maximises the objective",
    )
    @argument(
        "--minimize",
        dest="mode",
        action="store_const",
        const="min",
        help="the sweep minimises the objective",
    )
    @argument("--seed", type=int, help="random seed of a random or bayes sweep")
    @cell_magic
    def track(self, line: str, cell: str) -> Any:
        """Run the cell as a tracked run: params, metrics, artifacts, datasets, code and
        environment are recorded in the nbops store. The cell behaves as it would
        untracked."""
        __tracebackhide__ = True
        from .tracking.cell import run_tracked_cell

        args = parse_argstring(self.track, line)
        options = _options(args)
        if _sweep_requested(args, line):
            return self._sweep(cell, args, options)
        result = run_tracked_cell(cell, options, shell=self.shell)
        if result.run is not None and not options.quiet:
            self._show_after_cell(Summary(result.run, result.counts, result.status, result.seconds))
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
        result = sweep_cell(
            cell,
            space,
            options,
            shell=self.shell,
            search=args.search or "grid",
            trials=args.trials,
            objective=_unquote(args.objective),
            mode=args.mode,
            seed=args.seed,
            progress=not options.quiet,
        )
        if not options.quiet:
            self._show_after_cell(result)

    def _show_after_cell(self, summary: Summary) -> None:
        # shown once the cell's own output (its Out[] value) is displayed
        from IPython.display import display

        events = self.shell.events

        def show(*_: Any) -> None:
            """Show the summary once, then stop listening."""
            events.unregister("post_run_cell", show)
            display(summary)

        events.register("post_run_cell", show)

    @line_magic
    def nbops(self, line: str) -> Any:
        """``%nbops runs [--experiment E]`` table of runs · ``%nbops show RUN_ID`` ·
        ``%nbops flush`` wait for model files still being written ·
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
        if words[0] == "flush":
            from .tracking import background

            left = background.pending()
            background.wait()
            return f"nbops: {left} background write{'s' if left != 1 else ''} finished"
        if words[0] == "store":
            return nbops.set_store(words[1]) if len(words) > 1 else nbops.get_store_path()
        raise UsageError(f"unknown %nbops command {words[0]!r}; use runs, show, flush or store")


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%track`` / ``%nbops``, the ``%%track`` input transformer and the
    events that bracket a tracked cell (once, however often it is loaded)."""
    ipython.register_magics(NbopsMagics)
    cleanup = ipython.input_transformers_cleanup
    if track_transformer not in cleanup:
        cleanup.insert(0, track_transformer)
    if getattr(ipython, "_nbops_hooks", None) is None:
        hooks = CellHooks(ipython)
        ipython.events.register("pre_run_cell", hooks.pre_run_cell)
        ipython.events.register("post_run_cell", hooks.post_run_cell)
        ipython._nbops_hooks = hooks


def unload_ipython_extension(ipython: Any) -> None:
    """Take the transformer and the events away again (the magics stay registered)."""
    if track_transformer in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(track_transformer)
    hooks = getattr(ipython, "_nbops_hooks", None)
    if hooks is not None:
        ipython.events.unregister("pre_run_cell", hooks.pre_run_cell)
        ipython.events.unregister("post_run_cell", hooks.post_run_cell)
        ipython._nbops_hooks = None
