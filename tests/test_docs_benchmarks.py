"""Benchmark figures in the docs come from benchmarks/results/ and nowhere else (issue 15,
finding 11): docs/benchmarks.md and the `<!-- bench:NAME -->` blocks of other pages are
what benchmarks/report.py renders now, and no page quotes a timing, ratio or share near a
peer's name that no result file holds."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# a number with a unit of time, a ratio or a share: 590 ms, 0.55 s, 12.6x, ~27 ms, 100%
FIGURE = re.compile(r"(?<![\w.,])(\d[\d,]*(?:\.\d+)?)\s?(ms|s|us|µs|x|×|%)(?![\w])(?!\s*\d)")
# a paragraph or table row that compares with a peer or reports a benchmark
ABOUT_BENCHMARKS = re.compile(r"MLflow|mlflow|Evidently|evidently|benchmark|faster|slower")


def report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result_numbers() -> dict[str, list[float]]:
    """Every number of the result files, as the values a page may print per unit: a
    time in s, ms or us (by the key's unit), a ratio (or its inverse), a share in %."""
    out: dict[str, list[float]] = {"s": [], "ms": [], "us": [], "x": [], "%": []}

    def add(path: str, v: float) -> None:
        key = path.lower()
        if "seconds" in key or re.search(r"_s(\.|$|_)", key):
            out["s"].append(v), out["ms"].append(v * 1e3), out["us"].append(v * 1e6)
        elif re.search(r"(^|_|\.)ms(\.|$|_)", key):
            out["s"].append(v / 1e3), out["ms"].append(v), out["us"].append(v * 1e3)
        elif re.search(r"(^|_|\.)us(\.|$|_)", key):
            out["ms"].append(v / 1e3), out["us"].append(v)
        if re.search(r"ratio|speedup|_x_|_x$|over|rps", key):
            out["x"] += [v, 1 / v] if v else [v]
        if re.search(r"agreement|share|ratio", key):
            out["%"].append(v * 100)

    def walk(x, path: str) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{path}.{k}")
        elif isinstance(x, list):
            for v in x:
                walk(v, path)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            add(path, float(x))

    for path in RESULTS.glob("*.json"):
        walk(json.loads(path.read_text()), path.stem)
    return out


def in_results(text: str, unit: str, numbers: dict[str, list[float]]) -> bool:
    """Whether the figure ``text`` ``unit`` (as printed, e.g. "0.55", "s") is a result
    value in that unit, rounded to the digits shown."""
    value = float(text.replace(",", ""))
    half = 0.5 * 10 ** -(len(text.split(".")[1]) if "." in text else 0)
    unit = {"×": "x", "µs": "us"}.get(unit, unit)
    return any(abs(c - value) <= half + 1e-9 for c in numbers[unit])


def quoted_figures(text: str) -> list[str]:
    """Figures outside generated blocks, in paragraphs or table rows about benchmarks."""
    text = re.sub(r"<!-- bench:[a-z-]+ -->.*?<!-- /bench -->", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code is not a claim
    chunks = [p for p in re.split(r"\n\s*\n", text) if ABOUT_BENCHMARKS.search(p)]
    # a setting or a target is not a measurement: "every 30 s", "a median under 100 ms"
    setting = re.compile(r"(every|at most|under|below|within|after|target|limit|<)\s*$")
    return [
        m.group(0)
        for c in chunks
        for m in FIGURE.finditer(c)
        if not setting.search(c[max(0, m.start() - 12) : m.start()])
    ]


def unbacked(text: str, numbers: dict[str, list[float]]) -> list[str]:
    return [f for f in quoted_figures(text) if not in_results(*FIGURE.match(f).groups(), numbers)]


def test_benchmarks_page_and_every_block_match_the_results():
    stale = report().stale()
    assert not stale, f"run `python benchmarks/report.py`: {[str(p) for p in stale]}"


def test_blocks_name_known_tables():
    names = set(report().BLOCKS)
    for page in PAGES:
        for name in re.findall(r"<!-- bench:([a-z-]+) -->", page.read_text()):
            assert name in names, f"{page.name}: unknown block {name!r}"


def test_no_page_quotes_a_benchmark_figure_that_is_not_in_the_results():
    numbers = result_numbers()
    bad = {p.name: unbacked(p.read_text(), numbers) for p in PAGES if p.name != "benchmarks.md"}
    assert not {k: v for k, v in bad.items() if v}, bad


def test_a_hand_written_figure_is_caught():
    numbers = result_numbers()
    # a figure no result holds: the first of these that the results do not back
    fake = next(
        f
        for f in (f"{0.5 + k / 100:.2f} s" for k in range(400))
        if unbacked(f"nbops takes {f} against Evidently", numbers)
    )
    page = f"Drift over a million rows takes {fake} with nbops against 9731 s with Evidently.\n"
    assert unbacked(page, numbers) == [fake, "9731 s"]
    generated = report().table("drift")
    assert unbacked(generated, numbers) == []  # what report.py writes always passes


def test_readme_speed_table_is_the_generated_summary():
    text = (ROOT / "README.md").read_text()
    assert "<!-- bench:summary -->" in text
    assert report().table() in text
