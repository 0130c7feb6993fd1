"""``nbops demo``: execute the example notebooks in a real kernel, one store for all.

Every demo starts from a fresh store (``OUTPUT/store``): a store left by an earlier demo
is moved aside to ``OUTPUT/store.previous`` (replacing an older one there), so running
the demo twice gives the same runs and registry versions, not twice as many. Each
notebook's kernel is shut down when its notebook ends, so nothing prints after the demo.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ._errors import NbopsError

STORE = "store"
PREVIOUS = "store.previous"


def example_folder() -> Path:
    """The project's example_notebooks/ folder. Raises NbopsError when it is not found."""
    for candidate in (
        Path(__file__).resolve().parents[2] / "example_notebooks",
        Path.cwd() / "example_notebooks",
    ):
        if candidate.is_dir():
            return candidate
    raise NbopsError(
        "cannot find example_notebooks/; run `nbops demo` from the nbops checkout "
        "or pass --notebooks FOLDER"
    )


def fresh_store(output: Path) -> tuple[Path, Path | None]:
    """The demo store ``output/store``, emptied: an existing one is moved to
    ``output/store.previous``. Returns (store, where the old one went or None)."""
    store = output / STORE
    if not store.exists():
        return store, None
    previous = output / PREVIOUS
    if previous.is_dir():
        shutil.rmtree(previous)
    elif previous.exists():
        previous.unlink()
    store.rename(previous)
    return store, previous


def run_demo(output: Path, notebooks: Path | None = None, timeout: int = 600) -> int:
    """Execute every ``*.ipynb`` in ``notebooks`` in order, printing one progress line
    each; executed copies and a fresh demo store go to ``output`` (an earlier demo
    store is moved aside, and the move is said). Returns a process exit code (0 when
    all ran). Raises NbopsError when there are no notebooks."""
    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    folder = notebooks or example_folder()
    paths = sorted(folder.glob("*.ipynb"))
    if not paths:
        raise NbopsError(f"no notebooks in {folder}; pass --notebooks FOLDER")
    output = output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    store, previous = fresh_store(output)
    if previous is not None:
        print(f"starting from a fresh demo store; the previous one is now {previous}")
    os.environ["NBOPS_STORE"] = str(store)  # the kernels inherit it
    failed = 0
    with tempfile.TemporaryDirectory(prefix="nbops-demo-") as sockets:
        for i, path in enumerate(paths, 1):
            t0 = time.perf_counter()
            print(f"[{i}/{len(paths)}] {path.name} ...", end=" ", flush=True)
            nb = nbformat.read(path, as_version=4)
            # IPC transport: a local kernel needs no TCP ports (and prints no warning)
            km = KernelManager(
                kernel_name="python3", transport="ipc", ip=str(Path(sockets) / path.stem)
            )
            client = NotebookClient(
                nb, km=km, timeout=timeout, resources={"metadata": {"path": str(output)}}
            )
            try:
                client.execute()
                print(f"ok ({time.perf_counter() - t0:.1f} s)", flush=True)
            except CellExecutionError as exc:
                failed += 1
                print("FAILED", flush=True)
                print(str(exc)[-2000:], file=sys.stderr)
            finally:
                # nbclient leaves a kernel it did not start running; shut it down now,
                # or it prints "Parent appears to have exited" after the demo is over
                if km.has_kernel:
                    km.shutdown_kernel(now=False)
            nbformat.write(nb, output / path.name)
    return 1 if failed else 0
