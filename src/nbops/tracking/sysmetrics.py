"""System metrics of long tracked cells: CPU, memory and, with an NVIDIA GPU, GPU use.

A cell that runs longer than ``$NBOPS_SYSMETRICS_AFTER`` seconds (default 2) gets
step metrics sampled every ``$NBOPS_SYSMETRICS_EVERY`` seconds (default 1) while it
runs: ``system.cpu_percent`` (this process, 100 = one core), ``system.memory_mb``
(resident memory of this process) and, when ``nvidia-ml-py`` is installed
(``pip install 'nbops[gpu]'``) and a GPU is present, ``system.gpu_percent`` and
``system.gpu_memory_mb`` per device (``system.gpu0_percent`` ...).

One idle daemon thread per process waits for a cell to pass the threshold; a short
cell only arms and disarms it: nothing is imported, sampled or started for it.
``NBOPS_SYSMETRICS=0`` turns it off.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

_thread: threading.Thread | None = None
_cond = threading.Condition()
_current: Watch | None = None


def _seconds(name: str, default: float) -> float:
    try:
        return max(float(os.environ.get(name, default)), 0.05)
    except ValueError:
        return default


class Watch:
    """The system-metrics watch of one cell's run; :meth:`stop` when the cell ends."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.t0 = time.monotonic()
        self.after = _seconds("NBOPS_SYSMETRICS_AFTER", 2.0)
        self.every = _seconds("NBOPS_SYSMETRICS_EVERY", 1.0)
        self.stopped = False
        self.samples = 0
        self._lock = threading.Lock()  # held while a sample is logged

    def stop(self) -> None:
        """Stop sampling; returns once no sample is being written. The sampler is not
        woken: it finds the watch stopped at its next due time."""
        global _current
        with _cond:
            self.stopped = True
            if _current is self:
                _current = None
        with self._lock:
            pass


class _Sampler:
    """Reads CPU, memory and GPU use; built on the first long cell."""

    def __init__(self) -> None:
        try:
            import psutil

            self.proc = psutil.Process()
            self.proc.cpu_percent(None)  # the first call only starts the interval
        except Exception:  # noqa: BLE001 - without psutil, from /proc and os.times
            self.proc = None
        self._cpu = (time.monotonic(), sum(os.times()[:2]))
        self.gpus = _gpu_handles()

    def sample(self) -> dict[str, float]:
        """One reading: metric name -> value."""
        out: dict[str, float] = {}
        if self.proc is not None:
            out["system.cpu_percent"] = float(self.proc.cpu_percent(None))
            out["system.memory_mb"] = self.proc.memory_info().rss / 2**20
        else:
            now, cpu = time.monotonic(), sum(os.times()[:2])
            t0, c0 = self._cpu
            self._cpu = (now, cpu)
            out["system.cpu_percent"] = 100.0 * (cpu - c0) / max(now - t0, 1e-9)
            try:
                with open("/proc/self/statm") as fh:
                    out["system.memory_mb"] = (
                        int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
                    )
            except (OSError, ValueError, IndexError):
                pass
        for i, handle in enumerate(self.gpus):
            try:
                import pynvml

                util = pynvml.nvmlDeviceGetUtilizationRates(handle)
                mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:  # noqa: BLE001,S112 - a GPU that stops answering is skipped
                continue
            tag = "gpu" if len(self.gpus) == 1 else f"gpu{i}"
            out[f"system.{tag}_percent"] = float(util.gpu)
            out[f"system.{tag}_memory_mb"] = mem.used / 2**20
        return out


def _gpu_handles() -> list[Any]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - no driver, no device: no GPU metrics
        return []


_sampler: _Sampler | None = None


_idle = False  # the sampler waits for a watch with no due time: arming must wake it
_waking_at = 0.0  # else it wakes at this monotonic time


def _loop() -> None:
    global _sampler, _idle, _waking_at
    while True:
        with _cond:
            while _current is None:
                _idle = True
                _cond.wait()
            _idle = False
            watch = _current
            due = watch.t0 + watch.after + watch.samples * watch.every
            delay = due - time.monotonic()
            if delay > 0:
                _waking_at = due
                _cond.wait(delay)
                continue
        with watch._lock:
            if watch.stopped:
                continue
            try:
                if _sampler is None:
                    _sampler = _Sampler()
                values = _sampler.sample()
                watch.run.log_metrics(values, step=watch.samples)
            except Exception:  # noqa: BLE001 - sampling must never touch the cell
                watch.stopped = True
            watch.samples += 1


def watch(run: Any) -> Watch | None:
    """Arm the system-metrics watch for a cell's run (None when turned off)."""
    global _thread, _current
    if os.environ.get("NBOPS_SYSMETRICS", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    w = Watch(run)
    with _cond:
        _current = w
        if _thread is None:
            _thread = threading.Thread(target=_loop, name="nbops-sysmetrics", daemon=True)
            _thread.start()
        elif _idle or w.t0 + w.after < _waking_at:
            _cond.notify()  # else it wakes before this watch is due and re-reads _current
    return w
