"""The service's JSON-lines logs: ``logs/predictions.jsonl`` and ``logs/feedback.jsonl``.

Each line is one JSON object. A prediction line is ``{"id": "<request id>-<row>",
"request_id", "ts" (seconds since the epoch), "version", "latency_ms", "inputs":
{column: value}, "prediction"}``; a feedback line is ``{"id", "label", "ts"}``.

Requests only append to an in-memory list; a background thread writes the lines every
0.2 s (and on shutdown). When the file reaches ``max_bytes`` it is rotated: ``name.1``
is the newest old file, ``name.<keep-1>`` the oldest. Several worker processes
(``serve.py --workers N``) write one file: each write and rotation holds an exclusive
``flock`` on ``name.lock``, and each batch is one ``write`` to a file opened for
appending, so lines never interleave.
"""

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .codec import dumps

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process writes the log
    fcntl = None  # type: ignore[assignment]


class JsonLog:
    """An append-only JSON-lines file, rotated by size, written by a background thread."""

    def __init__(self, path: Path, max_bytes: int, keep: int = 5, interval: float = 0.2):
        self.path, self.max_bytes, self.keep, self.interval = path, max_bytes, keep, interval
        self._buf: list[Any] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread (creates the folder)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name=f"log-{self.path.name}", daemon=True)
        self._thread.start()

    def append(self, item: dict | Callable[[], Iterator[bytes]]) -> None:
        """Queue a record (a dict), or a callable yielding rendered lines."""
        self._buf.append(item)  # list.append is atomic under the GIL

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def close(self) -> None:
        """Stop the writer thread and write what is queued."""
        self._stop.set()
        self.flush()

    def flush(self) -> None:
        """Write the queued lines now; rotate when the file is full."""
        with self._lock:
            if not self._buf:
                return
            items, self._buf = self._buf, []
            data = b"".join(self._render(items))
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_name(self.path.name + ".lock"), "ab") as lock:
                if fcntl is not None:
                    fcntl.flock(lock, fcntl.LOCK_EX)
                with open(self.path, "ab") as fh:
                    fh.write(data)
                    size = fh.tell()
                if size >= self.max_bytes:
                    self._rotate()

    def _render(self, items: list[Any]) -> Iterator[bytes]:
        for item in items:
            if isinstance(item, dict):
                yield dumps(item) + b"\n"
            else:
                yield from item()

    def _rotate(self) -> None:
        for k in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{k}")
            if older.exists():
                if k == self.keep - 1:
                    older.unlink()
                else:
                    os.replace(older, self.path.with_name(f"{self.path.name}.{k + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))


def prediction_records(
    rid: str,
    ts: float,
    version: str,
    cols: list[str],
    rows: list[list[Any]],
    preds: list[Any],
    latency_ms: float,
) -> Callable[[], Iterator[bytes]]:
    """The log lines of one scored request, rendered later by the writer thread."""

    def render() -> Iterator[bytes]:
        for i, (row, pred) in enumerate(zip(rows, preds, strict=False)):
            yield (
                dumps(
                    {
                        "id": f"{rid}-{i}",
                        "request_id": rid,
                        "ts": ts,
                        "version": version,
                        "latency_ms": latency_ms,
                        "inputs": dict(zip(cols, row, strict=False)),
                        "prediction": pred,
                    }
                )
                + b"\n"
            )

    return render
