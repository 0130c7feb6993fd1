"""``nbops demo``: execute the example notebooks in a real kernel, one store for all."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from ._errors import NbopsError


def example_folder() -> Path:
    for candidate in (Path(__file__).resolve().parents[2] / "example_notebooks",
                      Path.cwd() / "example_notebooks"):
        if candidate.is_dir():
            return candidate
    raise NbopsError(
        "cannot find example_notebooks/; run `nbops demo` from the nbops checkout "
        "or pass --notebooks FOLDER"
    )


def run_demo(output: Path, notebooks: Path | None = None, timeout: int = 600) -> int:
    """Execute every ``*.ipynb`` in ``notebooks`` in order; executed copies and the demo
    store go to ``output``. Returns a process exit code (0 when all ran)."""
    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    folder = notebooks or example_folder()
    paths = sorted(folder.glob("*.ipynb"))
    if not paths:
        raise NbopsError(f"no notebooks in {folder}")
    output = output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    store = output / "store"
    os.environ["NBOPS_STORE"] = str(store)  # the kernels inherit it
    failed = 0
    sockets = tempfile.TemporaryDirectory(prefix="nbops-demo-")
    for path in paths:
        t0 = time.perf_counter()
        print(f"running {path.name} ...", end=" ", flush=True)
        nb = nbformat.read(path, as_version=4)
        # IPC transport: a local kernel needs no TCP ports (and prints no warning about them)
        km = KernelManager(kernel_name="python3", transport="ipc",
                           ip=str(Path(sockets.name) / path.stem))
        client = NotebookClient(nb, km=km, timeout=timeout,
                                resources={"metadata": {"path": str(output)}})
        try:
            client.execute()
            print(f"ok ({time.perf_counter() - t0:.1f} s)")
        except CellExecutionError as exc:
            failed += 1
            print("FAILED")
            print(str(exc)[-2000:], file=sys.stderr)
        nbformat.write(nb, output / path.name)
    sockets.cleanup()

    import nbops

    nbops.set_store(store)
    frame = nbops.runs()
    cols = [c for c in ("run_id", "name", "experiment", "status", "duration") if c in frame]
    # the metrics most runs share, not the first few alphabetically
    metric_cols = sorted((c for c in frame.columns if c.startswith("metrics.")),
                         key=lambda c: -frame[c].notna().sum())[:3]
    print()
    print(frame[cols + metric_cols].head(20).to_string(index=False) if len(frame) else "no runs")
    print(f"\n{len(frame)} runs recorded.")
    print(f"Executed notebooks: {output}")
    print(f"Store:              {store}")
    print(f"Browse it with:     NBOPS_STORE={store} nbops runs")
    return 1 if failed else 0
